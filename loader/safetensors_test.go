package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// st builds a file from a header string and n data bytes.
func st(hdr string, n int) []byte {
	b := make([]byte, 8+len(hdr)+n)
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	copy(b[8:], hdr)
	return b
}

func TestSafetensorsHeader(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		err  string // "" for success
	}{
		{"ok", st(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"k":"v"}}  `, 16), ""},
		{"bf16 i64", st(`{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`, 16), ""},
		{"scalar and empty", st(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[2,2]}}`, 2), ""},
		{"short", []byte{1, 2, 3}, "truncated"},
		{"header past end", st(`{}`, 0)[:9], "truncated"},
		{"huge header", func() []byte { b := st(`{}`, 0); binary.LittleEndian.PutUint64(b, 1<<40); return b }(), "exceeds"},
		{"not an object", st(`[1]`, 0), "not a JSON object"},
		{"bad json", st(`{"a":`, 0), "not valid JSON"},
		{"duplicate", st(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "twice"},
		{"trailing", st(`{} x`, 0), "trailing"},
		{"two objects", st(`{}{}`, 0), "trailing"},
		{"unknown field", st(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), "bad entry"},
		{"missing field", st(`{"a":{"dtype":"F32","shape":[1]}}`, 4), "needs dtype"},
		{"bad dtype", st(`{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, 1), "unsupported dtype"},
		{"size mismatch", st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8 bytes"},
		{"past end", st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside"},
		{"negative", st(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 4), "bad dimension"},
		{"overflow", st(`{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}`, 4), "overflows"},
		{"overlap", st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), "overlaps"},
		{"bad metadata", st(`{"__metadata__":{"k":1}}`, 0), "__metadata__"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ReadSafetensorsHeader(bytes.NewReader(c.data), int64(len(c.data)), "x.safetensors")
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, ti := range f.Tensors {
					if ti.Offset+ti.Size > int64(len(c.data)) || ti.Size != ti.Bytes() {
						t.Fatalf("bad record %v", ti)
					}
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.err) || fe.File != "x.safetensors" {
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
}

func TestManifest(t *testing.T) {
	const sha = "0000000000000000000000000000000000000000000000000000000000000000"
	base := func(tensors, shards string) []byte {
		return []byte(`{"format":"harmony-pack","version":1,"alignment":256,
			"model_index":{"_class_name":"X","unet":["diffusers","UNet2DConditionModel"]},
			"configs":{"unet":{"in_channels":4}},"files":[],
			"tensors":[` + tensors + `],"shards":[` + shards + `]}`)
	}
	shard := `{"file":"shard-00000.bin","bytes":1024,"sha256":"` + sha + `"}`
	tens := func(name string, off, bytes int, dtype string) string {
		return `{"name":"` + name + `","component":"unet","dtype":"` + dtype + `","shape":[2,2],"shard":0,"offset":` + strconv.Itoa(off) + `,"bytes":` + strconv.Itoa(bytes) + `}`
	}
	cases := []struct {
		name string
		data []byte
		err  string
	}{
		{"ok", base(tens("a.weight", 0, 8, "F16")+","+tens("b.weight", 256, 16, "F32"), shard), ""},
		{"json", []byte(`{"format":`), "bad JSON"},
		{"format", []byte(`{"format":"gguf","version":1}`), "format"},
		{"version", []byte(`{"format":"harmony-pack","version":2}`), "version 2"},
		{"alignment", bytes.Replace(base("", shard), []byte(`"alignment":256`), []byte(`"alignment":100`), 1), "alignment"},
		{"no components", bytes.Replace(base("", shard), []byte(`"unet":["diffusers","UNet2DConditionModel"]`), []byte(`"x":1`), 1), "no components"},
		{"bytes", base(tens("a.weight", 0, 10, "F16"), shard), "needs 8 bytes"},
		{"unaligned", base(tens("a.weight", 4, 8, "F16"), shard), "unaligned"},
		{"outside", base(tens("a.weight", 1024, 8, "F16"), shard), "outside"},
		{"overlap", base(tens("a.weight", 0, 16, "F32")+","+tens("b.weight", 0, 8, "F16"), shard), "overlaps"},
		{"twice", base(tens("a.weight", 0, 8, "F16")+","+tens("a.weight", 256, 8, "F16"), shard), "twice"},
		{"dtype", base(tens("a.weight", 0, 32, "I64"), shard), "type I64"},
		{"shard index", bytes.Replace(base(tens("a.weight", 0, 8, "F16"), shard), []byte(`"shard":0`), []byte(`"shard":3`), 1), "does not exist"},
		{"shard path", base("", `{"file":"../x","bytes":1,"sha256":"`+sha+`"}`), "bad shard"},
		{"shard sha", base("", `{"file":"s","bytes":1,"sha256":"abc"}`), "bad shard"},
		{"file path", bytes.Replace(base("", shard), []byte(`"files":[]`), []byte(`"files":[{"path":"/etc/passwd","bytes":1,"sha256":"`+sha+`"}]`), 1), "bad file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseManifest(c.data, "manifest.json")
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "manifest.json") {
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
}
