// mapper_test.go: both mappers against a float64 evaluation of ELITE's
// Mapper and MapperLocal on random weights (CPU reference and GPU), sizing
// from a checkpoint's shapes and its errors, and Features.
package elite

import (
	"context"
	"errors"
	"maps"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/tensor"
)

var testCfg = MapperConfig{In: 12, Hidden: 16, Out: 10, Words: 5}

// randWeights is a random state dict for cfg (sorted names, fixed seed),
// as float32 values by name.
func randWeights(cfg MapperConfig, seed int64) map[string][]float32 {
	r := rand.New(rand.NewSource(seed))
	shapes := MapperTensors(cfg)
	out := map[string][]float32{}
	for _, n := range slices.Sorted(maps.Keys(shapes)) {
		v := make([]float32, tensor.Numel(shapes[n]))
		for i := range v {
			v[i] = float32(0.5 * (2*r.Float64() - 1))
			if strings.HasSuffix(n, ".1.weight") || strings.HasSuffix(n, ".4.weight") {
				v[i] += 1 // LayerNorm gains around 1
			}
		}
		out[n] = v
	}
	return out
}

func upload(b tensor.Backend, cfg MapperConfig, vals map[string][]float32, comp string) *tensor.Weights {
	w := tensor.NewWeights(comp)
	for n, s := range MapperTensors(cfg) {
		w.Put(n, b.FromF32(n, vals[n], s...))
	}
	return w
}

// refMLP is one mapping network on rows x [n, In] in float64.
func refMLP(vals map[string][]float32, name string, cfg MapperConfig, x []float64, n int) []float64 {
	lin := func(in []float64, k, out int, w, bias []float32) []float64 {
		o := make([]float64, n*out)
		for r := range n {
			for j := range out {
				s := float64(bias[j])
				for i := range k {
					s += in[r*k+i] * float64(w[j*k+i])
				}
				o[r*out+j] = s
			}
		}
		return o
	}
	lnLeaky := func(in []float64, g, bb []float32) []float64 {
		d := cfg.Hidden
		o := make([]float64, len(in))
		for r := range n {
			row := in[r*d : (r+1)*d]
			var mu, va float64
			for _, v := range row {
				mu += v
			}
			mu /= float64(d)
			for _, v := range row {
				va += (v - mu) * (v - mu)
			}
			va /= float64(d)
			for i, v := range row {
				y := (v-mu)/math.Sqrt(va+lnEps)*float64(g[i]) + float64(bb[i])
				if y < 0 {
					y *= 0.01
				}
				o[r*d+i] = y
			}
		}
		return o
	}
	p := name + "."
	h := lin(x, cfg.In, cfg.Hidden, vals[p+"0.weight"], vals[p+"0.bias"])
	h = lnLeaky(h, vals[p+"1.weight"], vals[p+"1.bias"])
	h = lin(h, cfg.Hidden, cfg.Hidden, vals[p+"3.weight"], vals[p+"3.bias"])
	h = lnLeaky(h, vals[p+"4.weight"], vals[p+"4.bias"])
	return lin(h, cfg.Hidden, cfg.Out, vals[p+"6.weight"], vals[p+"6.bias"])
}

func compare(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxErr, maxRef float64
	for i, w := range want {
		maxErr = math.Max(maxErr, math.Abs(float64(got[i])-w))
		maxRef = math.Max(maxRef, math.Abs(w))
	}
	t.Logf("%s: max|err| %.3g, max|ref| %.3g", what, maxErr, maxRef)
	if maxErr > 1e-5*maxRef {
		t.Fatalf("%s: max|err| %g > 1e-5·%g", what, maxErr, maxRef)
	}
}

func TestMappers(t *testing.T) {
	cfg := testCfg
	const nb, nt = 2, 7
	r := rand.New(rand.NewSource(9))
	featVals := make([][]float32, cfg.Words)
	for i := range featVals {
		featVals[i] = make([]float32, nb*nt*cfg.In)
		for j := range featVals[i] {
			featVals[i][j] = float32(2*r.Float64() - 1)
		}
	}
	mask := make([]float32, nb*(nt-1))
	for i := range mask {
		mask[i] = float32(r.Intn(2))
	}
	gv, lv := randWeights(cfg, 1), randWeights(cfg, 2)

	// The references.
	words := make([]float64, nb*cfg.Words*cfg.Out)
	local := make([]float64, nb*(nt-1)*cfg.Out)
	for bi := range nb {
		for i := range cfg.Words {
			row := func(tk int) []float64 {
				o := make([]float64, cfg.In)
				for c := range o {
					o[c] = float64(featVals[i][(bi*nt+tk)*cfg.In+c])
				}
				return o
			}
			var patches []float64
			for tk := 1; tk < nt; tk++ {
				patches = append(patches, row(tk)...)
			}
			n := mlpNames(i)
			gc, gp := refMLP(gv, n[0], cfg, row(0), 1), refMLP(gv, n[1], cfg, patches, nt-1)
			lc, lp := refMLP(lv, n[0], cfg, row(0), 1), refMLP(lv, n[1], cfg, patches, nt-1)
			for c := range cfg.Out {
				var mean float64
				for tk := range nt - 1 {
					mean += gp[tk*cfg.Out+c]
					local[(bi*(nt-1)+tk)*cfg.Out+c] += (lc[c] + lp[tk*cfg.Out+c]) / float64(cfg.Words)
				}
				words[(bi*cfg.Words+i)*cfg.Out+c] = gc[c] + mean/float64(nt-1)
			}
		}
	}
	for bi := range nb {
		for tk := range nt - 1 {
			for c := range cfg.Out {
				local[(bi*(nt-1)+tk)*cfg.Out+c] *= float64(mask[bi*(nt-1)+tk])
			}
		}
	}

	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) {
		gw := upload(b, cfg, gv, "global_mapper")
		extra := b.FromF32("kv", []float32{1, 2}, 2)
		gw.Put("down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.weight", extra)
		c, err := MapperConfigOf("global_mapper.pt", gw)
		if err != nil || c != cfg {
			t.Fatalf("config %+v, %v; want %+v", c, err, cfg)
		}
		g, err := LoadMapper(b, cfg, gw)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Free(b)
		if g.KV == nil || len(g.KV.Names()) != 1 {
			t.Fatalf("KV holds %v, want the one attention tensor", g.KV.Names())
		}
		l, err := LoadMapperLocal(b, cfg, upload(b, cfg, lv, "local_mapper"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Free(b)
		feats := make([]*tensor.Tensor, cfg.Words)
		for i := range feats {
			feats[i] = b.FromF32("f", featVals[i], nb, nt, cfg.In)
		}
		mt := b.FromF32("mask", mask, nb, nt-1)
		defer b.Free(append(feats, mt)...)
		out, err := g.Forward(b, feats)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := b.Read(context.Background(), out)
		b.Free(out)
		compare(t, b.Name()+" global words", got, words)
		out, err = l.Forward(b, feats, mt)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = b.Read(context.Background(), out)
		b.Free(out)
		compare(t, b.Name()+" local features", got, local)
		if _, err := g.Forward(b, feats[:4]); err == nil {
			t.Error("four feature maps accepted")
		}
	})
}

func TestMapperConfigErrors(t *testing.T) {
	shapes := MapperTensors(testCfg)
	if c, err := MapperConfigFrom("m.pt", shapes); err != nil || c != testCfg {
		t.Fatalf("%+v, %v", c, err)
	}
	bad := maps.Clone(shapes)
	bad["mapping_patch_3.4.bias"] = []int{15}
	_, err := MapperConfigFrom("local_mapper.pt", bad)
	var se *ShapeError
	if !errors.As(err, &se) || se.Tensor != "mapping_patch_3.4.bias" || !strings.Contains(err.Error(), "local_mapper.pt") {
		t.Fatalf("err = %v, want one naming local_mapper.pt and mapping_patch_3.4.bias", err)
	}
	delete(bad, "mapping_patch_3.4.bias")
	bad["mapping_patch_3.4.bias"] = nil
	if _, err := MapperConfigFrom("m.pt", bad); err == nil || !strings.Contains(err.Error(), "missing tensor \"mapping_patch_3.4.bias\"") {
		t.Fatalf("err = %v", err)
	}
	if _, err := MapperConfigFrom("m.pt", map[string][]int{}); err == nil || !strings.Contains(err.Error(), "mapping_0.0.weight") {
		t.Fatalf("err = %v", err)
	}
	// Loading a state dict that lacks a tensor names it.
	b := cpu.New()
	w := upload(b, testCfg, randWeights(testCfg, 1), "global_mapper")
	w.Take("mapping_4.6.bias")
	if _, err := LoadMapper(b, testCfg, w); err == nil || !strings.Contains(err.Error(), "mapping_4.6.bias") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeatures(t *testing.T) {
	hidden := make([]*tensor.Tensor, 25)
	for i := range hidden {
		hidden[i] = &tensor.Tensor{Name: string(rune('a' + i))}
	}
	f, err := Features(hidden)
	if err != nil || f[0] != hidden[24] || f[1] != hidden[4] || f[4] != hidden[16] {
		t.Fatalf("%v, %v", f, err)
	}
	if _, err := Features(hidden[:16]); err == nil {
		t.Fatal("16 hidden states accepted")
	}
}
