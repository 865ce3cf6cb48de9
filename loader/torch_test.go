package loader

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// testCheckpoint covers every storage type the engine converts, offsets,
// shared storages, transposed (strided) tensors, parameters and an int64
// buffer.
func testCheckpoint() ([]tTensor, []tStorage, map[string][]float32) {
	f := make([]float32, 12)
	for i := range f {
		f[i] = float32(i) + 0.125*float32(i%3) - 3
	}
	h := make([]byte, 12)
	hv := []float32{1.5, -2, 0.333, 65504, -0.0001, 7}
	for i, v := range hv {
		binary.LittleEndian.PutUint16(h[2*i:], float16.Fromfloat32(v).Bits())
	}
	bf := make([]byte, 8)
	bv := []float32{1, -2.5, 3.75, 1e20}
	for i, v := range bv {
		binary.LittleEndian.PutUint16(bf[2*i:], uint16(math.Float32bits(v)>>16))
		bv[i] = math.Float32frombits(math.Float32bits(v) &^ 0xffff) // what bf16 holds
	}
	ids := make([]byte, 24)
	for i := range 3 {
		binary.LittleEndian.PutUint64(ids[8*i:], uint64(i))
	}
	storages := []tStorage{
		{key: "0", typ: "FloatStorage", data: f32bytes(f...), size: 12},
		{key: "1", typ: "HalfStorage", data: h, size: 6},
		{key: "2", typ: "BFloat16Storage", data: bf, size: 4},
		{key: "3", typ: "LongStorage", data: ids, size: 3},
	}
	tensors := []tTensor{
		{name: "a.weight", key: "0", shape: []int{3, 4}, stride: []int{4, 1}},
		{name: "b.weight", key: "0", offset: 2, shape: []int{2, 3}, stride: []int{3, 1}},
		{name: "t.weight", key: "0", shape: []int{4, 3}, stride: []int{1, 4}},
		{name: "p.weight", key: "0", offset: 4, shape: []int{2, 2}, stride: []int{4, 1}, param: true},
		{name: "h.weight", key: "1", shape: []int{2, 3}, stride: []int{3, 1}},
		{name: "bf.bias", key: "2", shape: []int{4}, stride: []int{1}},
		{name: "scalar", key: "0", offset: 11, shape: []int{}, stride: []int{}},
		{name: "emb.position_ids", key: "3", shape: []int{1, 3}, stride: []int{3, 1}},
	}
	h32 := make([]float32, 6)
	for i, v := range hv {
		h32[i] = float16.Fromfloat32(v).Float32()
	}
	want := map[string][]float32{
		"a.weight": f,
		"b.weight": f[2:8],
		"t.weight": {f[0], f[4], f[8], f[1], f[5], f[9], f[2], f[6], f[10], f[3], f[7], f[11]},
		"p.weight": {f[4], f[5], f[8], f[9]},
		"h.weight": h32,
		"bf.bias":  bv,
		"scalar":   {f[11]},
	}
	return tensors, storages, want
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTorchZip(t *testing.T) {
	tensors, storages, want := testCheckpoint()
	sm := map[string]tStorage{}
	for _, s := range storages {
		sm[s.key] = s
	}
	for _, ordered := range []bool{false, true} {
		for _, prec := range []Precision{PrecisionF32, PrecisionF16} {
			data := torchZip(t, "archive", torchPickle(tensors, sm, ordered), storages, zip.Store)
			dir := writeTemp(t, "pytorch_model.bin", data)
			tf, err := ReadTorchZip(bytes.NewReader(data), int64(len(data)), "pytorch_model.bin")
			if err != nil {
				t.Fatal(err)
			}
			if len(tf.Tensors) != len(tensors) {
				t.Fatalf("%d tensors, want %d", len(tf.Tensors), len(tensors))
			}
			if tf.Find("t.weight").Strides == nil || tf.Find("p.weight").Strides == nil || tf.Find("b.weight").Strides != nil {
				t.Fatalf("contiguity misread: %+v", tf.Tensors)
			}
			// Resolved offsets point at the storage bytes in the file.
			abs, err := tf.Resolve(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range abs {
				if ti.Name == "b.weight" && !bytes.Equal(data[ti.Offset:ti.Offset+ti.Size], sm["0"].data[8:32]) {
					t.Fatalf("resolved offset of b.weight is wrong")
				}
			}

			b := cpu.New()
			w, err := LoadFile(context.Background(), NewDirSource(dir), "pytorch_model.bin", "m", b, &Options{Precision: prec})
			if err != nil {
				t.Fatal(err)
			}
			if w.Has("emb.position_ids") {
				t.Fatal("position_ids should be skipped")
			}
			for name, wv := range want {
				x, err := w.Get(name)
				if err != nil {
					t.Fatal(err)
				}
				ti := tf.Find(name)
				if !slices.Equal(x.Shape, ti.Shape) || x.DType != StorageType(prec, name, ti.Shape) {
					t.Fatalf("%s: %v, want %v", name, x, ti.Shape)
				}
				got, _ := b.Read(context.Background(), x)
				for i := range wv {
					e := wv[i]
					if x.DType == tensor.F16 {
						e = float16.Fromfloat32(e).Float32()
					}
					if got[i] != e {
						t.Fatalf("ordered=%v %s %s[%d] = %g, want %g", ordered, prec, name, i, got[i], e)
					}
				}
			}
		}
	}
}

func TestTorchZipErrors(t *testing.T) {
	tensors, storages, _ := testCheckpoint()
	sm := map[string]tStorage{}
	for _, s := range storages {
		sm[s.key] = s
	}
	good := torchZip(t, "archive", torchPickle(tensors, sm, false), storages, zip.Store)
	corrupt := bytes.Clone(good)
	i := bytes.Index(corrupt, sm["1"].data)
	corrupt[i+3] ^= 0x40
	big := map[string]tStorage{}
	for k, v := range sm {
		big[k] = v
	}
	s13 := sm["0"]
	s13.size = 13
	big["0"] = s13
	past := slices.Clone(tensors)
	past[0].offset = 10
	bigEndian := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, e := range []struct{ n, d string }{{"archive/data.pkl", string(torchPickle(tensors, sm, false))}, {"archive/byteorder", "big"}} {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: e.n, Method: zip.Store})
			w.Write([]byte(e.d))
		}
		zw.Close()
		return buf.Bytes()
	}
	cases := []struct {
		name   string
		data   []byte
		tensor string // tensor the error must name
		msg    string
	}{
		{"compressed", torchZip(t, "archive", torchPickle(tensors, sm, false), storages, zip.Deflate), "a.weight", "compressed"},
		{"missing entry", torchZip(t, "archive", torchPickle(tensors, sm, false), storages[:1], zip.Store), "h.weight", "missing"},
		{"truncated", good[:len(good)/2], "", "no end of central directory"},
		{"not a zip", []byte("PK\x03\x04 but nothing else"), "", "zip"},
		{"storage size", torchZip(t, "archive", torchPickle(tensors, big, false), storages, zip.Store), "a.weight", "holds 48 bytes"},
		{"past storage", torchZip(t, "archive", torchPickle(past, sm, false), storages, zip.Store), "a.weight", "reach past"},
		{"no pickle", noPickle(t, storages), "", "no <root>/data.pkl"},
		{"corrupt data", corrupt, "h.weight", "CRC-32"},
		{"big endian", bigEndian(), "", "byte order"},
		{"bad pickle", torchZip(t, "archive", []byte{0x80, 2, '}', 0xff}, storages, zip.Store), "", "unsupported opcode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTemp(t, "pytorch_model.bin", c.data)
			_, err := LoadFile(context.Background(), NewDirSource(dir), "pytorch_model.bin", "m", cpu.New(), nil)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FormatError", err)
			}
			if fe.Tensor != c.tensor || !strings.Contains(fe.Msg, c.msg) || !strings.HasSuffix(fe.File, "pytorch_model.bin") {
				t.Fatalf("got %q (tensor %q), want tensor %q and %q", err, fe.Tensor, c.tensor, c.msg)
			}
		})
	}
}

func TestPickle(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		err  string // "" for success
	}{
		{"empty dict", []byte{0x80, 2, '}', '.'}, ""},
		{"state_dict wrapper", []byte("\x80\x02}X\x0a\x00\x00\x00state_dict}s."), ""},
		{"not a dict", []byte{0x80, 2, 'K', 1, '.'}, "not a state dict"},
		{"no stop", []byte{0x80, 2, '}'}, "no STOP"},
		{"underflow", []byte{0x80, 2, 's', '.'}, "underflow"},
		{"pop below mark", []byte{0x80, 2, 'K', 1, '(', '0', '.'}, "underflow"},
		{"bad memo", []byte{0x80, 2, 'h', 5, '.'}, "never stored"},
		{"long string", []byte{0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f, '.'}, "runs past"},
		{"huge long", []byte{0x80, 2, 0x8b, 0, 0, 0, 1, '.'}, "does not fit"},
		{"protocol 9", []byte{0x80, 9, '}', '.'}, "protocol 9"},
		{"unknown opcode", []byte{0x80, 2, '}', 0xfe, '.'}, "unsupported opcode 0xfe"},
		{"non-string key", []byte{0x80, 2, '}', 'K', 1, 'K', 2, 's', '.'}, "not a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseTorchPickle(c.data, "x.bin")
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
	// LONG1 sign extension and memo round trips.
	v, err := (&unpickler{data: []byte{0x8a, 2, 0x00, 0xff, 'q', 1, 'h', 1, 0x86, '.'}, memo: map[uint32]any{}}).run()
	if err != nil {
		t.Fatal(err)
	}
	if tu := v.(pyTuple); tu[0] != int64(-256) || tu[1] != int64(-256) {
		t.Fatalf("got %v", tu)
	}
}

// TestZip64 rewrites an archive's end records in the ZIP64 form
// (APPNOTE §4.3.14-15) and reads it.
func TestZip64(t *testing.T) {
	tensors, storages, _ := testCheckpoint()
	sm := map[string]tStorage{}
	for _, s := range storages {
		sm[s.key] = s
	}
	data := torchZip(t, "archive", torchPickle(tensors, sm, false), storages, zip.Store)
	end := bytes.LastIndex(data, []byte("PK\x05\x06"))
	rec := data[end:]
	count := binary.LittleEndian.Uint16(rec[10:])
	size := binary.LittleEndian.Uint32(rec[12:])
	off := binary.LittleEndian.Uint32(rec[16:])
	out := bytes.Clone(data[:end])
	r64 := make([]byte, 56)
	binary.LittleEndian.PutUint32(r64, zip64EndSig)
	binary.LittleEndian.PutUint64(r64[4:], 44)
	binary.LittleEndian.PutUint64(r64[24:], uint64(count))
	binary.LittleEndian.PutUint64(r64[32:], uint64(count))
	binary.LittleEndian.PutUint64(r64[40:], uint64(size))
	binary.LittleEndian.PutUint64(r64[48:], uint64(off))
	loc := make([]byte, 20)
	binary.LittleEndian.PutUint32(loc, zip64LocatorSig)
	binary.LittleEndian.PutUint64(loc[8:], uint64(len(out)))
	binary.LittleEndian.PutUint32(loc[16:], 1)
	out = append(out, r64...)
	out = append(out, loc...)
	e := bytes.Clone(rec[:22])
	binary.LittleEndian.PutUint16(e[8:], 0xffff)
	binary.LittleEndian.PutUint16(e[10:], 0xffff)
	binary.LittleEndian.PutUint32(e[12:], 0xffffffff)
	binary.LittleEndian.PutUint32(e[16:], 0xffffffff)
	out = append(out, e...)
	tf, err := ReadTorchZip(bytes.NewReader(out), int64(len(out)), "zip64.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(tf.Tensors) != len(tensors) {
		t.Fatalf("%d tensors", len(tf.Tensors))
	}
}

func noPickle(t *testing.T, storages []tStorage) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, s := range storages {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data/" + s.key, Method: zip.Store})
		w.Write(s.data)
	}
	zw.Close()
	return buf.Bytes()
}
