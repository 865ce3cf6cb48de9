// Package modeltest is the model packages' shared test support: the
// backends every model test body runs on (the CPU reference, and the GPU
// backend natively and in the wasm build under Node + Dawn), the capture of
// traced intermediates, and the released checkpoint's tensor table
// (testdata/blipdiffusion_tensors.tsv).
// Only tests import it.
package modeltest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
	"harmony/loader/golden"
)

// Backend opens one backend for a subtest.
type Backend struct {
	Name string
	Open func(t *testing.T) tensor.Backend
	// SameWeightsRel bounds max|Δ|/max|ref| against the CPU reference fed
	// the same F16 weights (0: the backend is the reference).
	SameWeightsRel func(b tensor.Backend) float64
}

// Backends are the CPU reference and the GPU backend on the shared test
// device (which skips without an adapter, or fails when
// HARMONY_REQUIRE_GPU=1).
func Backends() []Backend {
	return []Backend{
		{Name: "cpu", Open: func(*testing.T) tensor.Backend { return cpu.New() }, SameWeightsRel: func(tensor.Backend) float64 { return 0 }},
		{Name: "webgpu", Open: func(t *testing.T) tensor.Backend { return kernels.New(gputest.Default(t)) },
			SameWeightsRel: func(b tensor.Backend) float64 {
				if b.(*kernels.Backend).F16Arith {
					return 2e-3 // products rounded to f16
				}
				return 1e-5
			}},
	}
}

// ForEach runs body once per backend as a subtest.
func ForEach(t *testing.T, body func(t *testing.T, b tensor.Backend, bc Backend)) {
	for _, bc := range Backends() {
		t.Run(bc.Name, func(t *testing.T) { body(t, bc.Open(t), bc) })
	}
}

// ForEachHeavy is ForEach without the CPU reference under js/wasm: there it
// is the same Go code as natively, minutes slower, and checks nothing new;
// the GPU backend is what differs. The subtest is left out rather than
// passed empty, so the report says what ran.
func ForEachHeavy(t *testing.T, body func(t *testing.T, b tensor.Backend)) {
	for _, bc := range Backends() {
		if bc.Name == "cpu" && runtime.GOOS == "js" {
			continue
		}
		t.Run(bc.Name, func(t *testing.T) { body(t, bc.Open(t)) })
	}
}

// Captured is a traced tensor's values and shape.
type Captured struct {
	Values []float32
	Shape  []int
}

// Capture is an nn.Trace that reads every tensor a model hands it into
// got, by name (a model frees what it traces as soon as the call returns).
func Capture(t testing.TB, b tensor.Backend) (tr nn.Trace, got map[string]Captured) {
	got = map[string]Captured{}
	return func(name string, x *tensor.Tensor) {
		v, err := b.Read(context.Background(), x)
		if err != nil {
			t.Errorf("trace %s: %v", name, err)
			return
		}
		got[name] = Captured{Values: v, Shape: slices.Clone(x.Shape)}
	}, got
}

// Released is one row of the released checkpoint's tensor table.
type Released struct {
	Component, Name string
	Shape           []int
	DType           string // "f32", or "i64" for the position_ids buffers
}

// ReleasedTensors reads every row of the released checkpoint's table
// (blipdiffusion_tensors.tsv in the test data).
func ReleasedTensors(t *testing.T) []Released {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion_tensors.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Released
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("blipdiffusion_tensors.tsv: line %q", line)
		}
		var shape []int
		for _, d := range strings.Split(strings.Trim(f[2], "[]"), ",") {
			var v int
			if _, err := fmt.Sscan(strings.TrimSpace(d), &v); err != nil {
				t.Fatalf("%s: bad shape %q", f[1], f[2])
			}
			shape = append(shape, v)
		}
		out = append(out, Released{Component: f[0], Name: f[1], Shape: shape, DType: f[3]})
	}
	return out
}

// SpecTensors returns the name → shape rows of one component's float
// tensors in the released checkpoint's table.
func SpecTensors(t *testing.T, component string) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, r := range ReleasedTensors(t) {
		if r.Component == component && r.DType == "f32" {
			out[r.Name] = r.Shape
		}
	}
	return out
}

// CompareTensorLists reports every difference between the tensors a model
// reads (got) and a checkpoint's (want).
func CompareTensorLists(t *testing.T, got, want map[string][]int) {
	t.Helper()
	for name, ws := range want {
		gs, ok := got[name]
		switch {
		case !ok:
			t.Errorf("model does not read %s %v", name, ws)
		case !slices.Equal(gs, ws):
			t.Errorf("%s: model expects %v, checkpoint has %v", name, gs, ws)
		}
	}
	for name, gs := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("model reads %s %v, checkpoint lacks it", name, gs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d tensors, checkpoint has %d", len(got), len(want))
	}
}
