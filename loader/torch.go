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

// The pickle machine (pickle.go) calls back into this file for what is
// specific to torch: persistent-id storages and the tensor rebuild calls.

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

// torchStorage is a persistent id ("storage", <torch.XStorage>, key,
// location, numel): a zip entry data/<key> of numel elements.
type torchStorage struct {
	dtype DType
	key   string
	numel int64
}

// torchTensor is _rebuild_tensor_v2(storage, offset, size, stride, …).
type torchTensor struct {
	storage *torchStorage
	offset  int64 // in elements
	shape   []int
	strides []int
}

// storageTypes maps torch's legacy storage classes to element types.
var storageTypes = map[string]DType{
	"FloatStorage":    F32,
	"HalfStorage":     F16,
	"BFloat16Storage": BF16,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"DoubleStorage":   F64,
	"ByteStorage":     U8,
	"CharStorage":     I8,
	"BoolStorage":     BOOL,
}

// call models the few callables a state dict uses.
func (m *unpickler) call(g pyGlobal, args pyTuple) (any, error) {
	switch g.module + "." + g.name {
	case "collections.OrderedDict", "builtins.dict", "__builtin__.dict":
		d := &pyDict{}
		if len(args) == 1 {
			l, ok := args[0].(*pyList)
			if !ok {
				return nil, m.errf("%s.%s of a %s", g.module, g.name, pyType(args[0]))
			}
			for _, it := range l.items {
				kv, ok := it.(pyTuple)
				if !ok || len(kv) != 2 {
					return nil, m.errf("%s.%s item is not a pair", g.module, g.name)
				}
				d.keys, d.vals = append(d.keys, kv[0]), append(d.vals, kv[1])
			}
		}
		return d, nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(args) < 4 {
			return nil, m.errf("%s with %d arguments", g.name, len(args))
		}
		st, ok := args[0].(*torchStorage)
		if !ok {
			return nil, m.errf("%s of a %s, not a storage", g.name, pyType(args[0]))
		}
		off, ok := args[1].(int64)
		if !ok || off < 0 {
			return nil, m.errf("%s: bad storage offset", g.name)
		}
		shape, err := m.ints(args[2], "size")
		if err != nil {
			return nil, err
		}
		strides, err := m.ints(args[3], "stride")
		if err != nil {
			return nil, err
		}
		if len(shape) != len(strides) {
			return nil, m.errf("%s: size %v and stride %v differ in rank", g.name, shape, strides)
		}
		return &torchTensor{storage: st, offset: off, shape: shape, strides: strides}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, m.errf("%s without arguments", g.name)
		}
		return args[0], nil
	}
	if m.refused == "" && forbidden(g) {
		m.refused = g.module + "." + g.name
	}
	return &pyObject{callable: g}, nil
}

// ints converts a tuple of small non-negative integers (a size or stride).
func (m *unpickler) ints(v any, what string) ([]int, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, m.errf("tensor %s is a %s, not a tuple", what, pyType(v))
	}
	out := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, m.errf("bad tensor %s entry", what)
		}
		out[i] = int(n)
	}
	return out, nil
}

// storage decodes a persistent id.
func (m *unpickler) storage(pid any) (*torchStorage, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) < 5 {
		return nil, m.errf("persistent id is a %s, not a storage tuple", pyType(pid))
	}
	if s, _ := t[0].(string); s != "storage" {
		return nil, m.errf("persistent id is not a storage")
	}
	g, ok := t[1].(pyGlobal)
	if !ok || g.module != "torch" {
		return nil, m.errf("storage type is a %s", pyType(t[1]))
	}
	dt, ok := storageTypes[g.name]
	if !ok {
		return nil, m.errf("unsupported storage type torch.%s", g.name)
	}
	key, ok := t[2].(string)
	if !ok || key == "" || strings.ContainsAny(key, "/\\") || key == "." || key == ".." {
		return nil, m.errf("bad storage key")
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 || numel > math.MaxInt64/8 {
		return nil, m.errf("bad storage size")
	}
	return &torchStorage{dtype: dt, key: key, numel: numel}, nil
}
