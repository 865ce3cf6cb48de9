package loader

// Fuzz targets for the parsers of untrusted input: run one at a time with
//
//	go test -run XXX -fuzz FuzzSafetensorsHeader -fuzztime 2m ./loader/
//
// (likewise FuzzPickle, FuzzZipDirectory, FuzzManifest; FuzzZipDirectory's
// new inputs take the whole default minute to minimize, so give it
// -fuzzminimizetime 1s to spend its time fuzzing). Seeds are built
// here, plus the data.pkl of the tiny model's VAE checkpoint in testdata/.

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenFile finds a file below the test data ($HARMONY_GOLDEN, else
// testdata/ at the module root; the loader/golden package cannot be
// imported here: it imports the loader).
func goldenFile(parts ...string) string {
	d := os.Getenv("HARMONY_GOLDEN")
	if wd, err := os.Getwd(); d == "" && err == nil {
		for r := wd; ; r = filepath.Dir(r) {
			if _, err := os.Stat(filepath.Join(r, "go.mod")); err == nil {
				d = filepath.Join(r, "testdata")
				break
			}
			if filepath.Dir(r) == r {
				break
			}
		}
	}
	if d == "" {
		return ""
	}
	p := filepath.Join(append([]string{d}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func seedCheckpoint(t testing.TB) ([]byte, []byte) {
	tensors, storages, _ := testCheckpoint()
	sm := map[string]tStorage{}
	for _, s := range storages {
		sm[s.key] = s
	}
	pkl := torchPickle(tensors, sm, true)
	return pkl, torchZip(t, "archive", pkl, storages, zip.Store)
}

func FuzzSafetensorsHeader(f *testing.F) {
	f.Add(st(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"k":"v"}}  `, 16))
	f.Add(st(`{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`, 16))
	f.Add(st(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[2,2]}}`, 2))
	f.Add(st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadSafetensorsHeader(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		var end int64
		for _, ti := range h.Tensors {
			if ti.Offset < h.DataBase || ti.Offset+ti.Size > int64(len(data)) || ti.Size != ti.Bytes() {
				t.Fatalf("record %v outside the file or mis-sized", ti)
			}
			if ti.Size > 0 && ti.Offset < end {
				t.Fatalf("record %v overlaps", ti)
			}
			end = max(end, ti.Offset+ti.Size)
		}
	})
}

func FuzzPickle(f *testing.F) {
	pkl, _ := seedCheckpoint(f)
	f.Add(pkl)
	tensors, storages, _ := testCheckpoint()
	sm := map[string]tStorage{}
	for _, s := range storages {
		sm[s.key] = s
	}
	f.Add(torchPickle(tensors[:2], sm, false))
	f.Add([]byte("\x80\x02}X\x0a\x00\x00\x00state_dict}s."))
	if p := goldenFile("blipdiffusion-tiny-bin", "vae", "diffusion_pytorch_model.bin"); p != "" {
		if zr, err := zip.OpenReader(p); err == nil {
			for _, e := range zr.File {
				if strings.HasSuffix(e.Name, "/data.pkl") {
					r, _ := e.Open()
					b, _ := io.ReadAll(r)
					r.Close()
					f.Add(b)
				}
			}
			zr.Close()
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseTorchPickle(data, "fuzz")
		if err != nil {
			return
		}
		for _, e := range entries {
			if tt, ok := e.val.(*torchTensor); ok && len(tt.shape) != len(tt.strides) {
				t.Fatalf("tensor %q: rank mismatch", e.name)
			}
		}
	})
}

func FuzzZipDirectory(f *testing.F) {
	_, z := seedCheckpoint(f)
	f.Add(z)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a/data.pkl", Method: zip.Deflate})
	w.Write([]byte("\x80\x02}."))
	zw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		zd, err := readZipDir(r, int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		for i, e := range zd.entries {
			if e.offset < 0 || e.next > int64(len(data)) || e.offset >= e.next {
				t.Fatalf("entry %q spans [%d, %d) of %d bytes", e.name, e.offset, e.next, len(data))
			}
			if i < 16 {
				readZipEntry(r, &zd.entries[i], "fuzz", 1<<20)
			}
		}
		tf, err := ReadTorchZip(r, int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		// Stream every storage through its entry sink, as the loader does.
		for _, e := range tf.storages() {
			if e.checkStored("fuzz", "") != nil {
				continue
			}
			s := newEntrySink(e, "fuzz")
			s.subs = append(s.subs, entrySub{begin: 0, end: e.csize, sink: discard{}})
			if s.write(data[e.offset:e.next]) == nil {
				s.close()
			}
		}
	})
}

type discard struct{}

func (discard) write([]byte) error { return nil }
func (discard) close() error       { return nil }

func FuzzManifest(f *testing.F) {
	const sha = "0000000000000000000000000000000000000000000000000000000000000000"
	f.Add([]byte(`{"format":"harmony-pack","version":1,"alignment":256,
		"model_index":{"_class_name":"X","unet":["diffusers","UNet2DConditionModel"],"tokenizer":["transformers","CLIPTokenizer"]},
		"configs":{"unet":{"in_channels":4}},"files":[{"path":"tokenizer/vocab.json","bytes":2,"sha256":"` + sha + `"}],
		"tensors":[{"name":"a.weight","component":"unet","dtype":"F16","shape":[2,2],"shard":0,"offset":0,"bytes":8},
		{"name":"a.bias","component":"unet","dtype":"F32","shape":[2],"shard":0,"offset":256,"bytes":8}],
		"shards":[{"file":"shard-00000.bin","bytes":264,"sha256":"` + sha + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data, "fuzz")
		if err != nil {
			return
		}
		for _, ti := range m.Tensors {
			sh := m.Shards[ti.Shard]
			if ti.Offset < 0 || ti.Offset+ti.Bytes > sh.Bytes || ti.Offset%int64(m.Alignment) != 0 {
				t.Fatalf("tensor %s outside shard", ti.Name)
			}
		}
	})
}
