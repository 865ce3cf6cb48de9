package loader_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// tinyDirs returns two copies of the tiny model: the safetensors folder,
// and a folder whose Q-Former and VAE are torch .bin checkpoints (legacy VAE
// attention names, an int64 buffer; golden.TinyBin).
func tinyDirs(t testing.TB) (st, bin string) {
	t.Helper()
	return tinyST(t), golden.TinyBin(t)
}

// tinyST returns the safetensors folder of the tiny model.
func tinyST(t testing.TB) string {
	t.Helper()
	return golden.Path(t, golden.Tiny)
}

// gpuLike is the CPU backend with the GPU backend's upload rule: byte
// offsets must be multiples of 4.
type gpuLike struct {
	*cpu.Backend
}

func (g gpuLike) Upload(t *tensor.Tensor, off int64, data []byte) {
	if off%4 != 0 {
		g.SetErr(fmt.Errorf("upload to %v at byte %d: not a multiple of 4", t, off))
		return
	}
	g.Backend.Upload(t, off, data)
}

func newBackend() gpuLike { return gpuLike{cpu.New()} }

func load(t testing.TB, src loader.Source, opt *loader.Options) (*loader.Model, tensor.Backend) {
	t.Helper()
	b := newBackend()
	m, err := loader.Load(context.Background(), src, b, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// sameWeights fails unless both models hold the same components, names,
// types, shapes and bit patterns. It returns the number of tensors.
func sameWeights(t testing.TB, what string, a *loader.Model, ab tensor.Backend, b *loader.Model, bb tensor.Backend) int {
	t.Helper()
	if len(a.Weights) != len(b.Weights) {
		t.Fatalf("%s: %d components vs %d", what, len(a.Weights), len(b.Weights))
	}
	n := 0
	for comp, wa := range a.Weights {
		wb := b.Weights[comp]
		if wb == nil {
			t.Fatalf("%s: component %s missing", what, comp)
		}
		na, nb := wa.Names(), wb.Names()
		if !slices.Equal(na, nb) {
			t.Fatalf("%s: %s: names differ:\n%v\n%v", what, comp, na, nb)
		}
		for _, name := range na {
			ta, _ := wa.Get(name)
			tb, _ := wb.Get(name)
			if ta.DType != tb.DType || !slices.Equal(ta.Shape, tb.Shape) {
				t.Fatalf("%s: %s.%s: %s%v vs %s%v", what, comp, name, ta.DType, ta.Shape, tb.DType, tb.Shape)
			}
			va, err := ab.Read(context.Background(), ta)
			if err != nil {
				t.Fatal(err)
			}
			vb, err := bb.Read(context.Background(), tb)
			if err != nil {
				t.Fatal(err)
			}
			// Widening binary16 to float32 is injective, so equal float32
			// bits mean equal binary16 bits.
			for i := range va {
				if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
					t.Fatalf("%s: %s.%s[%d]: %g vs %g", what, comp, name, i, va[i], vb[i])
				}
			}
			n++
		}
	}
	return n
}

// copyDir copies a folder tree.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// shapesOf builds a shape table from a loaded model (the other folder's
// tensors are what "the configs imply" for the twin).
func shapesOf(m *loader.Model) loader.ShapeTable {
	return func(comp string, _ []byte) (map[string][]int, error) {
		w := m.Weights[comp]
		if w == nil {
			return nil, nil
		}
		out := map[string][]int{}
		for _, n := range w.Names() {
			x, _ := w.Get(n)
			out[n] = x.Shape
		}
		return out, nil
	}
}
