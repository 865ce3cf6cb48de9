package loader

// Fuzz targets for the loader's smaller parsers and for the paths that
// read tensor data, beside the container targets in fuzz_test.go. Each
// runs alone, e.g.
//
//	go test -run '^$' -fuzz '^FuzzContentRange$' -fuzztime 1m ./loader/

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 0-99/100", "bytes 5-9/*", "bytes */100",
		"bytes 0-0/0", "bytes 9-5/10", "bytes -5/10", "bytes 0-10/10", "bytes +1-2/3", "items 0-1/2", "bytes 1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, b, total, err := parseContentRange(h)
		if err != nil {
			return
		}
		if total < -1 || a < 0 || (b != -1 && b < a) || (total >= 0 && b >= total) {
			t.Fatalf("%q: a=%d b=%d total=%d", h, a, b, total)
		}
		// A well-formed range survives a round trip.
		tot := "*"
		if total >= 0 {
			tot = fmt.Sprint(total)
		}
		rng := "*"
		if b >= 0 {
			rng = fmt.Sprintf("%d-%d", a, b)
		}
		a2, b2, t2, err := parseContentRange("bytes " + rng + "/" + tot)
		if err != nil || a2 != a || b2 != b || t2 != total {
			t.Fatalf("%q: round trip gives %d %d %d %v", h, a2, b2, t2, err)
		}
	})
}

func FuzzModelIndex(f *testing.F) {
	f.Add([]byte(`{"_class_name":"BlipDiffusionPipeline","ctx_begin_pos":2,"mean":[0.5],"qformer":["blip_diffusion","Blip2QFormerModel"],
		"scheduler":["diffusers","PNDMScheduler"],"tokenizer":["transformers","CLIPTokenizer"],"unet":["diffusers","UNet2DConditionModel"],
		"image_processor":["blip_diffusion","BlipImageProcessor"],"safety_checker":[null,null]}`))
	f.Add([]byte(`{"../x":["a","B"]}`))
	f.Add([]byte(`{"a":["x","y","z"],"b":[1,2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		comps, err := ParseModelIndex(data, "fuzz/model_index.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "loader: fuzz/model_index.json: ") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		for i, c := range comps {
			if validName(c.Name) != nil || strings.Contains(c.Name, "/") || strings.HasPrefix(c.Name, "_") {
				t.Fatalf("component name %q", c.Name)
			}
			if i > 0 && comps[i-1].Name >= c.Name {
				t.Fatalf("components not sorted: %q, %q", comps[i-1].Name, c.Name)
			}
			if c.Kind < KindModel || c.Kind > KindProcessor {
				t.Fatalf("component %q kind %d", c.Name, c.Kind)
			}
		}
	})
}

func FuzzShardIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":24},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../../etc/passwd"}}`))
	f.Add([]byte(`{"weight_map":{"a":"sub/x.bin","b":"."}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		shards, err := parseShardIndex(data, "fuzz/unet/x.index.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz/unet/x.index.json") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		if len(shards) == 0 {
			t.Fatal("no shards and no error")
		}
		for i, s := range shards {
			if validName(s) != nil || strings.ContainsAny(s, "/\\") {
				t.Fatalf("shard name %q", s)
			}
			if i > 0 && shards[i-1] >= s {
				t.Fatalf("shards not sorted and unique: %q", shards)
			}
		}
	})
}

// FuzzSafetensorsData parses a whole file and reads every tensor back
// through the typed accessors, as the tests' reference readers do.
func FuzzSafetensorsData(f *testing.F) {
	data := st(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},`+
		`"c":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},"d":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},`+
		`"e":{"dtype":"BOOL","shape":[3],"data_offsets":[28,31]},"g":{"dtype":"I8","shape":[1],"data_offsets":[31,32]}}`, 32)
	for i := range 32 {
		data[len(data)-32+i] = byte(37 * i)
	}
	f.Add(data)
	f.Add(st(`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}}`, 16))
	f.Add(st(`{"x":{"dtype":"I32","shape":[0,3],"data_offsets":[0,0]}}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseSafetensorsData(data, "fuzz.safetensors")
		if err != nil {
			return
		}
		for _, ti := range sf.Tensors {
			raw, info, err := sf.Raw(ti.Name)
			if err != nil || int64(len(raw)) != info.Size || info.Size != ti.Bytes() {
				t.Fatalf("%s: %d bytes for %v (%v)", ti.Name, len(raw), info, err)
			}
			if v, err := sf.Float32(ti.Name); err == nil && len(v) != ti.Numel() {
				t.Fatalf("%s: %d floats for %d elements", ti.Name, len(v), ti.Numel())
			}
			if v, err := sf.Int64s(ti.Name); err == nil && len(v) != ti.Numel() {
				t.Fatalf("%s: %d ints for %d elements", ti.Name, len(v), ti.Numel())
			}
		}
	})
}

// FuzzTorchResolve reads a torch zip and resolves its tensors to absolute
// offsets: every resolved tensor must lie inside the file.
func FuzzTorchResolve(f *testing.F) {
	_, z := seedCheckpoint(f)
	f.Add(z)
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := ReadTorchZip(bytes.NewReader(data), int64(len(data)), "fuzz.bin")
		if err != nil {
			return
		}
		ts, err := tf.Resolve(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, ti := range ts {
			if ti.Offset < 0 || ti.Size < 0 || ti.Offset+ti.Size > int64(len(data)) {
				t.Fatalf("%s: bytes [%d, +%d) outside the %d-byte file", ti.Name, ti.Offset, ti.Size, len(data))
			}
		}
	})
}
