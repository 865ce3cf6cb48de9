// torch.go reads PyTorch zip checkpoints written by torch.save (torch ≥ 1.6;
// docs/blipdiffusion.md §12.6): <root>/data.pkl, a pickle of the state dict
// whose tensors point at storages by key, and <root>/data/<key>, each
// storage's raw little-endian bytes, stored uncompressed.
package loader

import (
	"bytes"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"strings"
)

// TorchFile is a parsed torch.save checkpoint.
type TorchFile struct {
	Name string // file name used in errors
	// Tensors in state-dict order. Entry names the storage's zip entry and
	// Offset/Size are relative to that entry's data.
	Tensors []TensorInfo
	dir     *zipDir
}

// maxRank bounds tensor ranks so that span arithmetic cannot overflow.
const maxRank = 16

// ReadTorchZip reads the directory and the pickle of a torch.save
// checkpoint of the given size: three or four small reads, none of the
// tensor data.
func ReadTorchZip(r io.ReaderAt, size int64, name string) (*TorchFile, error) {
	z, err := readZipDir(r, size, name)
	if err != nil {
		return nil, err
	}
	var root string
	for _, e := range z.entries {
		if dir, ok := strings.CutSuffix(e.name, "/data.pkl"); ok && !strings.Contains(dir, "/") {
			if root != "" {
				return nil, formatErr(name, "", "two data.pkl entries (%s and %s)", root, dir)
			}
			root = dir
		}
	}
	if root == "" {
		return nil, formatErr(name, "", "no <root>/data.pkl entry: not a torch.save zip checkpoint")
	}
	if e := z.find(root + "/byteorder"); e != nil {
		bo, err := readZipEntry(r, e, name, 16)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(bo)); s != "little" {
			return nil, formatErr(name, "", "byte order %q: only little-endian checkpoints are supported", s)
		}
	}
	pkl, err := readZipEntry(r, z.find(root+"/data.pkl"), name, MaxPickle)
	if err != nil {
		return nil, err
	}
	entries, err := parseTorchPickle(pkl, name)
	if err != nil {
		return nil, err
	}
	return torchTensors(entries, z, root, name)
}

// torchTensors checks each pickled tensor against its storage entry.
func torchTensors(entries []pickleEntry, z *zipDir, root, name string) (*TorchFile, error) {
	f := &TorchFile{Name: name, dir: z}
	storageType := map[string]DType{}
	for _, pe := range entries {
		var t *torchTensor
		switch v := pe.val.(type) {
		case *torchTensor:
			t = v
		case *pyObject:
			if strings.HasPrefix(v.callable.module, "torch") {
				return nil, formatErr(name, pe.name, "tensor rebuilt by %s.%s, which the reader does not support", v.callable.module, v.callable.name)
			}
			continue
		default:
			continue // non-tensor state (a step counter, a config string)
		}
		st := t.storage
		if dt, ok := storageType[st.key]; ok && dt != st.dtype {
			return nil, formatErr(name, pe.name, "storage %s is %s here and %s elsewhere", st.key, st.dtype, dt)
		}
		storageType[st.key] = st.dtype
		entry := root + "/data/" + st.key
		e := z.find(entry)
		if e == nil {
			return nil, formatErr(name, pe.name, "zip entry %q of its storage is missing", entry)
		}
		es := int64(st.dtype.Size())
		if st.numel*es != e.usize {
			return nil, formatErr(name, pe.name, "storage %q holds %d bytes, the pickle says %d %s elements", entry, e.usize, st.numel, st.dtype)
		}
		if len(t.shape) > maxRank {
			return nil, formatErr(name, pe.name, "rank %d exceeds %d", len(t.shape), maxRank)
		}
		numel, span := int64(1), int64(1)
		contiguous := true
		want := int64(1)
		for i := len(t.shape) - 1; i >= 0; i-- {
			d, s := int64(t.shape[i]), int64(t.strides[i])
			if d != 0 && numel > math.MaxInt64/8/d {
				return nil, formatErr(name, pe.name, "shape %v overflows", t.shape)
			}
			numel *= d
			if d > 1 {
				if s != want {
					contiguous = false
				}
				span += (d - 1) * s
			}
			want *= d
		}
		if numel == 0 {
			span = 0
		}
		if span > st.numel || t.offset > st.numel-span {
			return nil, formatErr(name, pe.name, "shape %v, stride %v at offset %d reach past its %d-element storage", t.shape, t.strides, t.offset, st.numel)
		}
		ti := TensorInfo{
			Name: pe.name, DType: st.dtype, Shape: t.shape, File: name, Entry: entry,
			Offset: t.offset * es, Size: span * es,
		}
		if !contiguous {
			ti.Strides = t.strides
		}
		f.Tensors = append(f.Tensors, ti)
	}
	return f, nil
}

// Find returns the tensor named name, or nil.
func (f *TorchFile) Find(name string) *TensorInfo {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// Resolve turns entry-relative offsets into absolute file offsets by
// reading each used entry's local header (one small read per storage: fine
// for local files; the streaming loader does not need it).
func (f *TorchFile) Resolve(r io.ReaderAt) ([]TensorInfo, error) {
	base := map[string]int64{}
	out := make([]TensorInfo, len(f.Tensors))
	for i, t := range f.Tensors {
		b, ok := base[t.Entry]
		if !ok {
			e := f.dir.find(t.Entry)
			if err := e.checkStored(f.Name, t.Name); err != nil {
				return nil, err
			}
			hdr := make([]byte, zipLocalLen)
			if err := readFullAt(r, hdr, e.offset); err != nil {
				return nil, err
			}
			n, err := e.localHeaderLen(hdr, f.Name)
			if err != nil {
				return nil, err
			}
			b = e.offset + int64(n)
			base[t.Entry] = b
		}
		t.Offset += b
		t.Entry = ""
		out[i] = t
	}
	return out, nil
}

// storages groups the tensors by storage entry, in file order.
func (f *TorchFile) storages() []*zipEntry {
	seen := map[string]bool{}
	var out []*zipEntry
	for _, t := range f.Tensors {
		if !seen[t.Entry] {
			seen[t.Entry] = true
			out = append(out, f.dir.find(t.Entry))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].offset < out[j].offset })
	return out
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
