// vars_test.go checks Vars: recording and loading walk the same names,
// missing and misshapen tensors are reported by name, trailing-1 shapes
// are accepted, and Fuse joins tensors in place of their parts.
package nn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// walk is a small model's construction: a prefixed list of layers.
func walk(v *Vars) []Linear {
	var out []Linear
	for i := range 2 {
		out = append(out, LoadLinear(v.Sub("enc").At("layers", i), "fc", 3, 2, true))
	}
	out = append(out, LoadPointwise(v, "proj", 3, 3))
	return out
}

func weightsFor(b tensor.Backend, shapes map[string][]int) *tensor.Weights {
	w := tensor.NewWeights("toy")
	for n, s := range shapes {
		v := make([]float32, tensor.Numel(s))
		for i := range v {
			v[i] = float32(i)
		}
		w.Put(n, b.FromF32(n, v, s...))
	}
	return w
}

func TestVarsRecordAndLoad(t *testing.T) {
	rec := Recorder()
	walk(rec)
	shapes := rec.Shapes()
	want := []string{"enc.layers.0.fc.bias", "enc.layers.0.fc.weight", "enc.layers.1.fc.bias", "enc.layers.1.fc.weight", "proj.bias", "proj.weight"}
	var got []string
	for n := range shapes {
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	if !slices.Equal(shapes["proj.weight"], []int{3, 3, 1, 1}) {
		t.Errorf("proj.weight recorded as %v", shapes["proj.weight"])
	}

	b := cpu.New()
	v := NewVars(b, weightsFor(b, shapes))
	ls := walk(v)
	if err := v.Finish("toy"); err != nil {
		t.Fatal(err)
	}
	if s := ls[2].W.Shape; !slices.Equal(s, []int{3, 3}) {
		t.Errorf("1×1 conv read as %v, want a [3 3] matrix", s)
	}
}

func TestVarsMissing(t *testing.T) {
	b := cpu.New()
	rec := Recorder()
	walk(rec)
	shapes := rec.Shapes()
	delete(shapes, "enc.layers.1.fc.bias")
	shapes["proj.bias"] = []int{4}
	v := NewVars(b, weightsFor(b, shapes))
	walk(v)
	err := v.Finish("toy")
	var me *tensor.MissingError
	if !errors.As(err, &me) || me.Name != "enc.layers.1.fc.bias" {
		t.Fatalf("err = %v, want a MissingError for enc.layers.1.fc.bias", err)
	}
	if !strings.HasPrefix(err.Error(), "toy: load: ") || !strings.Contains(err.Error(), "1 more") {
		t.Errorf("err = %q, want the package prefix and the count of further problems", err)
	}
}

func TestVarsFuse(t *testing.T) {
	b := cpu.New()
	w := weightsFor(b, map[string][]int{"a.weight": {2, 3}, "b.weight": {1, 3}})
	v := NewVars(b, w)
	ts := []*tensor.Tensor{v.Get("a.weight", 2, 3), v.Get("b.weight", 1, 3)}
	f := v.Fuse([]string{"a.weight", "b.weight"}, ts)
	if f == nil || !slices.Equal(f.Shape, []int{3, 3}) || len(v.Fused()) != 1 {
		t.Fatalf("fused %v", f)
	}
	got, err := b.Read(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 1, 2, 3, 4, 5, 0, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("fused values %v, want %v", got, want)
	}
	if r, _ := w.Get("b.weight"); !r.View || r.Offset != 6 {
		t.Errorf("b.weight is %+v, want a view at offset 6 of the joined tensor", r)
	}
	// A second build over the same weights shares the joined buffer.
	v2 := NewVars(b, w)
	ts2 := []*tensor.Tensor{v2.Get("a.weight", 2, 3), v2.Get("b.weight", 1, 3)}
	if f2 := v2.Fuse([]string{"a.weight", "b.weight"}, ts2); f2 == nil || len(v2.Fused()) != 0 {
		t.Errorf("second fuse %v made %d tensors, want a view of the first", f2, len(v2.Fused()))
	}
	w.Free(b)
	b.Free(v.Fused()...)
}

func TestPlaceholders(t *testing.T) {
	b := cpu.New()
	rec := Recorder()
	walk(rec)
	w := Placeholders(b, "toy", rec.Shapes(), func(name string, shape []int) tensor.DType {
		if len(shape) >= 2 {
			return tensor.F16
		}
		return tensor.F32
	})
	v := NewVars(b, w)
	ls := walk(v)
	if err := v.Finish("toy"); err != nil {
		t.Fatal(err)
	}
	if ls[0].W.DType != tensor.F16 || ls[0].B.DType != tensor.F32 {
		t.Errorf("storage types %v, %v", ls[0].W.DType, ls[0].B.DType)
	}
}
