// tiny_test.go: the tiny ELITE model's released-layout checkpoints
// (testdata/elite-tiny: torch zip pickles whose mapping tensors are
// overlapping strided views of a few shared storages) load as they are,
// size the mappers, and hand their attention projections to the UNet.
package elite

import (
	"context"
	"math"
	"os"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/unet"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// loadTiny loads testdata/elite-tiny's mappers and its ELITE UNet on b.
func loadTiny(t *testing.T, b tensor.Backend, p loader.Precision) (*Mapper, *MapperLocal, *unet.UNet) {
	t.Helper()
	read := func(file, comp string) *tensor.Weights {
		w, err := loader.ReadSafetensorsWeights(b, comp, golden.Path(t, "elite-tiny", file), p)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	gw, lw := read("global_mapper.pt", "global_mapper"), read("local_mapper.pt", "local_mapper")
	gc, err := MapperConfigOf("global_mapper.pt", gw)
	if err != nil {
		t.Fatal(err)
	}
	if want := (MapperConfig{In: 16, Hidden: 1024, Out: 32, Words: 5}); gc != want {
		t.Fatalf("global mapper config %+v, want %+v", gc, want)
	}
	lc, err := MapperConfigOf("local_mapper.pt", lw)
	if err != nil {
		t.Fatal(err)
	}
	g, err := LoadMapper(b, gc, gw)
	if err != nil {
		t.Fatal(err)
	}
	l, err := LoadMapperLocal(b, lc, lw)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(golden.Path(t, "elite-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := unet.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := len(g.KV.Names()), len(unet.MapperKVTensors(cfg)); n != want {
		t.Fatalf("global_mapper.pt holds %d attention projections, the UNet has %d", n, want)
	}
	u, err := unet.LoadELITE(b, cfg, read("unet/diffusion_pytorch_model.safetensors", "unet"), g.KV, l.KV)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.KV.Names()) != 0 || len(l.KV.Names()) != 0 {
		t.Fatalf("LoadELITE left %v and %v behind", g.KV.Names(), l.KV.Names())
	}
	g.KV, l.KV = nil, nil
	return g, l, u
}

func TestTinyCheckpoints(t *testing.T) {
	modeltest.ForEachHeavy(t, func(t *testing.T, b tensor.Backend) {
		for _, p := range []loader.Precision{loader.PrecisionF32, loader.PrecisionF16} {
			g, l, u := loadTiny(t, b, p)
			feats := make([]*tensor.Tensor, 5)
			for i := range feats {
				v := make([]float32, 5*16) // four patches: the point is the files, not the size
				for j := range v {
					v[j] = float32((j*7+i*3)%11)/5 - 1
				}
				feats[i] = b.FromF32("f", v, 1, 5, 16)
			}
			w, err := g.Forward(b, feats)
			if err != nil {
				t.Fatal(err)
			}
			loc, err := l.Forward(b, feats, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Read(context.Background(), loc); err != nil {
				t.Fatal(err)
			}
			if w.Shape[1] != 5 || w.Shape[2] != 32 || loc.Shape[1] != 4 || loc.Shape[2] != 32 {
				t.Fatalf("words %v, local %v", w.Shape, loc.Shape)
			}
			b.Free(append(feats, w, loc)...)
			g.Free(b)
			l.Free(b)
			u.Free(b)
		}
	})
}

// TestTinyStridedViews compares tensors that are overlapping strided views
// of shared storages with what torch 1.13 reads from the same file: the
// sum and the index-weighted sum of the elements in row-major order.
func TestTinyStridedViews(t *testing.T) {
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "global_mapper", golden.Path(t, "elite-tiny", "global_mapper.pt"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Free(b)
	for _, c := range []struct {
		name        string
		sum, wsum   float64 // torch: v.double().sum(), (v.double()·arange(numel)).sum()
		stride, off string  // for the record
	}{
		{"mapping_0.3.weight", 856.9993805277991, 445516109.3838562, "(1, 2)", "7"},
		{"mapping_patch_4.0.weight", 55.7100603171275, 893928.1071070819, "(1, 2)", "1744"},
		{"mapping_2.1.bias", -2.7563233893301913, -1292.5117436286755, "(2,)", "2010"},
	} {
		x, err := w.Get(c.name)
		if err != nil {
			t.Fatal(err)
		}
		var sum, wsum float64
		for i, v := range cpu.F32(x) {
			sum += float64(v)
			wsum += float64(v) * float64(i)
		}
		if math.Abs(sum-c.sum) > 1e-9*math.Abs(c.wsum) || math.Abs(wsum-c.wsum) > 1e-9*math.Abs(c.wsum) {
			t.Errorf("%s (stride %s, offset %s): sums %v, %v; torch %v, %v", c.name, c.stride, c.off, sum, wsum, c.sum, c.wsum)
		}
	}
}
