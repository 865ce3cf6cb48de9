// faults_test.go: the loader's defences against damaged inputs and failed
// writes: non-finite weights refused by name and element, float16
// overflow refused unless allowed, a pickle's forbidden callable reported,
// and a set of files that is written whole or not at all.
package loader

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"harmony/engine/tensor"
)

// sinkErr streams vals (stored as from) through a tensor sink into to, in
// pieces of 3 bytes, and returns its error.
func sinkErr(t *testing.T, vals []float32, from DType, to tensor.DType, allow bool) error {
	src := make([]byte, 0, 8*len(vals))
	for _, v := range vals {
		switch from {
		case F32:
			src = binary.LittleEndian.AppendUint32(src, math.Float32bits(v))
		case F64:
			src = binary.LittleEndian.AppendUint64(src, math.Float64bits(float64(v)))
		}
	}
	tp := &tensorPlan{info: TensorInfo{Name: "w.weight", File: "model.safetensors", DType: from, Shape: []int{len(vals)}, Size: int64(len(src))}, out: to}
	rt := &recTarget{t: t, buf: make([]byte, len(vals)*to.Size())}
	s := newTensorSink(tp, rt, &conv{chunk: 64, allowOverflow: allow})
	for i := 0; i < len(src); i += 3 {
		if err := s.write(src[i:min(i+3, len(src))]); err != nil {
			return err
		}
	}
	return s.close()
}

func TestNonFiniteWeights(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	ramp := func(at int, v float32) []float32 {
		out := make([]float32, 40)
		for i := range out {
			out[i] = float32(i) / 10
		}
		out[at] = v
		return out
	}
	cases := []struct {
		name  string
		vals  []float32
		from  DType
		to    tensor.DType
		allow bool
		want  string // "" for no error
	}{
		{"f32 NaN kept as f32", ramp(33, nan), F32, tensor.F32, false, "element 33 is NaN"},
		{"f32 -Inf to f16", ramp(17, -inf), F32, tensor.F16, false, "element 17 is -Inf"},
		{"f64 NaN to f32", ramp(2, nan), F64, tensor.F32, false, "element 2 is NaN"},
		{"f32 1e6 to f16", ramp(21, 1e6), F32, tensor.F16, false, "element 21 is 1e+06, beyond float16"},
		{"f32 1e6 to f16, allowed", ramp(21, 1e6), F32, tensor.F16, true, ""},
		{"f32 NaN to f16, overflow allowed", ramp(5, nan), F32, tensor.F16, true, "element 5 is NaN"},
		{"f32 65504 to f16", ramp(1, 65504), F32, tensor.F16, false, ""},
		{"f32 +Inf to f16, overflow allowed", ramp(9, inf), F32, tensor.F16, true, "element 9 is +Inf"},
		{"f32 1e6 kept as f32", ramp(1, 1e6), F32, tensor.F32, false, ""},
	}
	for _, c := range cases {
		err := sinkErr(t, c.vals, c.from, c.to, c.allow)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"w.weight"`) || !strings.Contains(err.Error(), "model.safetensors") {
			t.Errorf("%s: got %v, want an error naming model.safetensors, \"w.weight\" and %q", c.name, err, c.want)
		}
	}
}

func TestForbiddenPickleCallable(t *testing.T) {
	var pkl bytes.Buffer
	str := func(s string) {
		pkl.WriteByte('X')
		binary.Write(&pkl, binary.LittleEndian, uint32(len(s)))
		pkl.WriteString(s)
	}
	pkl.WriteString("\x80\x02}(")
	str("conv_in.weight")
	pkl.WriteString("cos\nsystem\n")
	str("echo pwned")
	pkl.WriteString("\x85Ru.")
	_, err := parseTorchPickle(pkl.Bytes(), "model.bin")
	if err == nil || !strings.Contains(err.Error(), "os.system") || !strings.Contains(err.Error(), "model.bin") {
		t.Fatalf("got %v, want the refused os.system named", err)
	}
}

// TestWriteFilesAllOrNothing: when one file of a set cannot be written, no
// file of the set is replaced and no temporary is left.
func TestWriteFilesAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.png")
	if err := os.WriteFile(a, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFiles([]OutFile{{a, []byte("new")}, {filepath.Join(dir, "missing", "b.png"), []byte("b")}})
	if err == nil || !strings.Contains(err.Error(), "b.png") {
		t.Fatalf("got %v, want an error naming b.png", err)
	}
	if got, _ := os.ReadFile(a); string(got) != "old" {
		t.Fatalf("a.png holds %q after a failed set", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := WriteFiles([]OutFile{{a, []byte("new")}, {filepath.Join(dir, "b.png"), []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "new" {
		t.Fatalf("a.png holds %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("want a.png and b.png, got %v", ents)
	}
}
