// elite_test.go: ELITE's cross-attention against a direct float64
// evaluation of its formula (one layer, both backends), the local branch
// switched off ≡ the global-only call, LoadELITE's checks, and the whole
// tiny UNet with a local branch on the GPU against the CPU reference.
package unet

import (
	"context"
	"errors"
	"maps"
	"math"
	"math/rand"
	"os"
	"slices"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

func randVals(r *rand.Rand, n int, s float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(s * (2*r.Float64() - 1))
	}
	return v
}

// eliteAttnRef is ELITE's inj_forward_crossattention for a batch of one
// (weights row-major [out, in], bias only on out), in float64.
func eliteAttnRef(x, ctx, loc, wq, wk, wv, wkl, wvl, wo, bo []float32, n, c, nk, nl, dc, heads, idx int, lambda float64) []float64 {
	lin := func(in []float32, rows, k int, w []float32, outW int) []float64 {
		o := make([]float64, rows*outW)
		for r := range rows {
			for j := range outW {
				var s float64
				for i := range k {
					s += float64(in[r*k+i]) * float64(w[j*k+i])
				}
				o[r*outW+j] = s
			}
		}
		return o
	}
	q := lin(x, n, c, wq, c)
	k, v := lin(ctx, nk, dc, wk, c), lin(ctx, nk, dc, wv, c)
	kl, vl := lin(loc, nl, dc, wkl, c), lin(loc, nl, dc, wvl, c)
	d := c / heads
	scale := 1 / math.Sqrt(float64(d))
	softmax := func(qr []float64, keys []float64, nkeys, h int) []float64 {
		p := make([]float64, nkeys)
		m := math.Inf(-1)
		for j := range nkeys {
			var s float64
			for e := range d {
				s += qr[h*d+e] * keys[j*c+h*d+e]
			}
			p[j] = s * scale
			m = math.Max(m, p[j])
		}
		var sum float64
		for j := range p {
			p[j] = math.Exp(p[j] - m)
			sum += p[j]
		}
		for j := range p {
			p[j] /= sum
		}
		return p
	}
	o := make([]float64, n*c)
	col := make([]float64, n*heads)
	var mmax float64
	for i := range n {
		for h := range heads {
			p := softmax(q[i*c:], k, nk, h)
			for j := range nk {
				for e := range d {
					o[i*c+h*d+e] += p[j] * v[j*c+h*d+e]
				}
			}
			col[i*heads+h] = p[idx]
			mmax = math.Max(mmax, p[idx])
		}
	}
	for i := range n {
		for h := range heads {
			pl := softmax(q[i*c:], kl, nl, h)
			m := col[i*heads+h] / mmax * lambda
			for j := range nl {
				for e := range d {
					o[i*c+h*d+e] += pl[j] * m * vl[j*c+h*d+e]
				}
			}
		}
	}
	out := make([]float64, n*c)
	for i := range n {
		for j := range c {
			s := bo[j]
			acc := float64(s)
			for e := range c {
				acc += o[i*c+e] * float64(wo[j*c+e])
			}
			out[i*c+j] = acc
		}
	}
	return out
}

func TestELITEAttentionFormula(t *testing.T) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) {
		const n, c, heads, nk, nl, dc, idx = 13, 24, 3, 7, 11, 10, 4
		r := rand.New(rand.NewSource(3))
		x, ctx, loc := randVals(r, 2*n*c, 1), randVals(r, 2*nk*dc, 1), randVals(r, 2*nl*dc, 1)
		for i := range dc { // a masked local token: zero, still in the softmax
			loc[3*dc+i] = 0
		}
		wq, wk, wv := randVals(r, c*c, 0.4), randVals(r, c*dc, 0.4), randVals(r, c*dc, 0.4)
		wkl, wvl, wo, bo := randVals(r, c*dc, 0.4), randVals(r, c*dc, 0.4), randVals(r, c*c, 0.3), randVals(r, c, 0.1)
		lin := func(w []float32, out, in int) nn.Linear { return nn.Linear{W: b.FromF32("w", w, out, in)} }
		a := attention{Attention: nn.Attention{Q: lin(wq, c, c), K: lin(wk, c, dc), V: lin(wv, c, dc),
			Out: nn.Linear{W: b.FromF32("wo", wo, c, c), B: b.FromF32("bo", bo, c)}, Heads: heads, Inner: c, Scale: nn.HeadScale(c, heads)},
			kLocal: lin(wkl, c, dc), vLocal: lin(wvl, c, dc)}
		a.site.Name = "x.attn2"
		xt, ct, lt := b.FromF32("x", x, 2, n, c), b.FromF32("ctx", ctx, 2, nk, dc), b.FromF32("loc", loc, 2, nl, dc)
		// Entry 0 has no local term (an unconditional row), entry 1 has.
		f := &fwd{context: ct, local: &Local{Features: lt, Index: []int{-1, idx}, Lambda: []float32{0, 0.8}}}
		out := a.forward(b, xt, ct, nil, f, 1, n)
		f.free(b)
		got, err := b.Read(context.Background(), out)
		if err != nil {
			t.Fatal(err)
		}
		// Entry 0 against the global-only layer.
		f0 := &fwd{context: ct}
		plain := a.forward(b, xt, ct, nil, f0, 1, n)
		pv, _ := b.Read(context.Background(), plain)
		for i := range n * c {
			if got[i] != pv[i] {
				t.Fatalf("entry without a placeholder: out[%d] = %g, global-only %g", i, got[i], pv[i])
			}
		}
		want := eliteAttnRef(x[n*c:], ctx[nk*dc:], loc[nl*dc:], wq, wk, wv, wkl, wvl, wo, bo, n, c, nk, nl, dc, heads, idx, 0.8)
		var maxErr, maxRef float64
		for i, w := range want {
			maxErr = math.Max(maxErr, math.Abs(float64(got[n*c+i])-w))
			maxRef = math.Max(maxRef, math.Abs(w))
		}
		t.Logf("%s: max|err| %.3g, max|ref| %.3g", b.Name(), maxErr, maxRef)
		if maxErr > 1e-5*maxRef {
			t.Fatalf("max|err| %g > 1e-5·%g", maxErr, maxRef)
		}
	})
}

// eliteKV makes random mapper K/V weights for cfg on b under MapperName.
func eliteKV(b tensor.Backend, cfg *Config, comp string, seed int64) *tensor.Weights {
	r := rand.New(rand.NewSource(seed))
	w := tensor.NewWeights(comp)
	kv := MapperKVTensors(cfg)
	for _, name := range slices.Sorted(maps.Keys(kv)) {
		s := kv[name]
		w.Put(name, b.FromF32(name, randVals(r, tensor.Numel(s), 0.2), s...))
	}
	return w
}

func tinyPath(t testing.TB) string {
	return golden.Path(t, "blipdiffusion-tiny", "unet", "diffusion_pytorch_model.safetensors")
}

// tinyELITE is the golden tiny UNet with random ELITE projections.
func tinyELITE(t *testing.T, b tensor.Backend) *UNet {
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := loader.ReadSafetensorsWeights(b, "unet", tinyPath(t), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	u, err := LoadELITE(b, cfg, w, eliteKV(b, cfg, "global_mapper", 1), eliteKV(b, cfg, "local_mapper", 2))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestELITEUNet(t *testing.T) {
	var refOut []float32
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) {
		u := tinyELITE(t, b)
		defer u.Free(b)
		cfg := u.Config
		r := rand.New(rand.NewSource(5))
		const nb, h, w, nk, nl = 2, 8, 8, 9, 5
		dc := cfg.CrossDim[0]
		sample := b.FromF32("sample", randVals(r, nb*h*w*cfg.InChannels, 1), nb, h, w, cfg.InChannels)
		ctx := b.FromF32("ctx", randVals(r, nb*nk*dc, 1), nb, nk, dc)
		loc := b.FromF32("loc", randVals(r, nb*nl*dc, 1), nb, nl, dc)
		defer b.Free(sample, ctx, loc)
		ts := []float32{499.5}
		// Without placeholders the local branch adds nothing.
		plain := mustForward(t, u, b, sample, ts, ctx, nil)
		none, err := u.ForwardLocal(b, sample, ts, ctx, &Local{Features: loc, Index: []int{-1, -1}, Lambda: []float32{0.8}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pv, _ := b.Read(context.Background(), plain)
		nv, _ := b.Read(context.Background(), none)
		for i := range pv {
			if pv[i] != nv[i] {
				t.Fatalf("no placeholder: out[%d] = %g, global-only %g", i, nv[i], pv[i])
			}
		}
		out, err := u.ForwardLocal(b, sample, ts, ctx, &Local{Features: loc, Index: []int{-1, 3}, Lambda: []float32{0.8}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ov, _ := b.Read(context.Background(), out)
		b.Free(plain, none, out)
		half := len(ov) / 2
		var diff float64
		for i := range ov {
			if i < half && ov[i] != pv[i] {
				t.Fatalf("unconditional entry changed by the other's local term at %d", i)
			}
			diff = math.Max(diff, math.Abs(float64(ov[i]-pv[i])))
		}
		if diff == 0 {
			t.Fatal("the local term changed nothing")
		}
		if b.Name() == "cpu" {
			refOut = ov
			return
		}
		var maxErr, maxRef float64
		for i := range ov {
			maxErr = math.Max(maxErr, math.Abs(float64(ov[i]-refOut[i])))
			maxRef = math.Max(maxRef, math.Abs(float64(refOut[i])))
		}
		t.Logf("gpu vs cpu: max|err| %.3g, max|ref| %.3g", maxErr, maxRef)
		if refOut == nil || maxErr > 1e-5*maxRef {
			t.Fatalf("gpu vs cpu max|err| %g > 1e-5·%g", maxErr, maxRef)
		}
	})
}

func TestLoadELITENamesTensor(t *testing.T) {
	b := cpu.New()
	base := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	cfg := base.Config
	base.Free(b)
	w, err := loader.ReadSafetensorsWeights(b, "unet", tinyPath(t), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	g, l := eliteKV(b, cfg, "global_mapper", 1), eliteKV(b, cfg, "local_mapper", 2)
	name := MapperName("up_blocks.1.attentions.0.transformer_blocks.0.attn2", "to_v")
	bad, _ := l.Take(name)
	l.Put(name, b.Reshape(bad, bad.Numel()))
	_, err = LoadELITE(b, cfg, w, g, l)
	var me *tensor.MissingError
	if !errors.As(err, &me) || me.Component != "local_mapper" || me.Name != name || !strings.HasPrefix(err.Error(), "unet: load:") {
		t.Fatalf("err = %v, want a MissingError naming local_mapper's %s", err, name)
	}
	// A plain UNet refuses a local branch.
	u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	sample := b.FromF32("s", make([]float32, 64*cfg.InChannels), 1, 8, 8, cfg.InChannels)
	ctx := b.FromF32("c", make([]float32, 3*cfg.CrossDim[0]), 1, 3, cfg.CrossDim[0])
	if _, err := u.ForwardLocal(b, sample, []float32{1}, ctx, &Local{Features: ctx, Index: []int{1}, Lambda: []float32{1}}, nil); err == nil || !strings.Contains(err.Error(), "LoadELITE") {
		t.Fatalf("err = %v, want a refusal naming LoadELITE", err)
	}
}

// TestELITEHookColumn checks what Harmony's masks read on an ELITE UNet:
// the hook's probability columns of an attn2 are the global attention's
// (softmax over the text keys), the head mean of the per-head placeholder
// column the local term is weighted by.
func TestELITEHookColumn(t *testing.T) {
	b := cpu.New()
	u := tinyELITE(t, b)
	defer u.Free(b)
	cfg := u.Config
	r := rand.New(rand.NewSource(8))
	const h, w, nk, nl, s = 8, 8, 9, 5, 3
	dc := cfg.CrossDim[0]
	sample := b.FromF32("sample", randVals(r, h*w*cfg.InChannels, 1), 1, h, w, cfg.InChannels)
	ctx := b.FromF32("ctx", randVals(r, nk*dc, 1), 1, nk, dc)
	loc := b.FromF32("loc", randVals(r, nl*dc, 1), 1, nl, dc)
	defer b.Free(sample, ctx, loc)
	site := "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
	rec := &recorder{b: b, probs: map[string][]float32{}, want: map[string][2]int{site: {s, s + 1}}}
	var col []float32
	u.Trace = func(n string, x *tensor.Tensor) {
		if n == site+".placeholder_probs" {
			col, _ = b.Read(context.Background(), x)
		}
	}
	out, err := u.ForwardLocal(b, sample, []float32{10}, ctx, &Local{Features: loc, Index: []int{s}, Lambda: []float32{0.8}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	b.Free(out)
	got := rec.probs[site]
	heads := len(col) / len(got)
	if len(got) != h*w || heads != cfg.Heads[0] {
		t.Fatalf("hook column %d values, trace %d (heads %d)", len(got), len(col), heads)
	}
	for i, g := range got {
		var mean float64
		for hh := range heads {
			mean += float64(col[i*heads+hh])
		}
		mean /= float64(heads)
		if math.Abs(mean-float64(g)) > 1e-6 {
			t.Fatalf("pixel %d: hook column %g, head mean of the placeholder column %g", i, g, mean)
		}
	}
}
