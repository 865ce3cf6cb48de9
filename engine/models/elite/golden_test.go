// golden_test.go: parity with ELITE's own code on the tiny ELITE model
// (testdata/elite, made by testdata/gen/make_elite_goldens.py): the global
// mapper's words and w0, the local features (raw and masked), the injected
// text embeddings E and E_uncond, attn2 of two layers with and without the
// local term and its per-head placeholder column P and M, and one UNet
// call of each kind, on the CPU reference and the GPU, within
// 1e-5·max|ref|.
package elite_test

import (
	"context"
	"image/color"
	"image/png"
	"os"
	"slices"
	"testing"

	"harmony/engine/models/catalog"
	"harmony/engine/models/clip"
	"harmony/engine/models/elite"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/unet"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

const tol = 1e-5

// tinyModels loads the tiny ELITE folder through catalog.ELITE.
func tinyModels(t *testing.T, b tensor.Backend) map[string]catalog.Model {
	t.Helper()
	m, err := loader.LoadELITE(context.Background(), loader.ELITESources{Base: loader.NewDirSource(golden.Path(t, "elite-tiny"))}, b, &loader.Options{Precision: loader.PrecisionF32})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]catalog.Model{}
	for _, c := range catalog.ELITE.Models() {
		cfg, err := c.Parse(m.Configs[c.Name])
		if err != nil {
			t.Fatal(err)
		}
		if loaded[c.Name], err = c.LoadIn(b, cfg, m.Weights[c.Name], loaded); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
	}
	t.Cleanup(func() {
		for _, x := range loaded {
			x.Free(b)
		}
	})
	return loaded
}

func read(t *testing.T, b tensor.Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.Read(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	b.Free(x)
	return v
}

// nchw converts between [1, C, H, W] and NHWC.
func toNHWC(v []float32, c, h, w int) []float32 {
	out := make([]float32, len(v))
	for ci := range c {
		for i := range h * w {
			out[i*c+ci] = v[ci*h*w+i]
		}
	}
	return out
}

// clipMean and clipStd are ELITE's Normalize (CLIP's statistics).
var clipMean, clipStd = [3]float32{0.48145466, 0.4578275, 0.40821073}, [3]float32{0.26862954, 0.26130258, 0.27577711}

// pixels is ToTensor + Normalize of a 224² PNG, NHWC [1, H, W, 3].
func pixels(t *testing.T, path string) ([]float32, int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	r := img.Bounds()
	out := make([]float32, 0, r.Dx()*r.Dy()*3)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			for i, v := range []uint8{c.R, c.G, c.B} {
				out = append(out, (float32(v)/255-clipMean[i])/clipStd[i])
			}
		}
	}
	return out, r.Dx()
}

// TestGoldenFeatures runs the image encoder on ELITE's two 224² inputs
// (the whole photo and the black-background object) and compares the five
// feature maps ELITE reads (and the pooled output).
func TestGoldenFeatures(t *testing.T) {
	g := golden.Open(t, "elite", "modules.safetensors")
	modeltest.ForEachHeavy(t, func(t *testing.T, b tensor.Backend) {
		enc := tinyModels(t, b)["image_encoder"].(*clip.VisionModel)
		for _, which := range []string{"clip", "obj"} {
			px, s := pixels(t, golden.Path(t, "elite", "preprocess", "a_"+which+"224.png"))
			x := b.FromF32("pixels", px, 1, s, s, 3)
			o, err := enc.Forward(b, x)
			b.Free(x)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := elite.Features(o.Hidden)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range []string{"last", "hidden_4", "hidden_8", "hidden_12", "hidden_16"} {
				v, err := b.Read(context.Background(), fs[i])
				if err != nil {
					t.Fatal(err)
				}
				want, _ := g.MustF32(t, "features_"+which+"."+n)
				golden.Close(t, which+" "+n, v, want, tol, 0)
			}
			v, err := b.Read(context.Background(), o.Pooled)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := g.MustF32(t, "features_"+which+".pooled")
			golden.Close(t, which+" pooled", v, want, tol, 0)
			o.Free(b)
		}
	})
}

func TestGoldenModules(t *testing.T) {
	g := golden.Open(t, "elite", "modules.safetensors")
	modeltest.ForEachHeavy(t, func(t *testing.T, b tensor.Backend) {
		ms := tinyModels(t, b)
		gm, lm := ms["global_mapper"].(*elite.Mapper), ms["local_mapper"].(*elite.MapperLocal)
		text, u := ms["text_encoder"].(*clip.TextModel), ms["unet"].(*unet.UNet)
		up := func(name string) *tensor.Tensor {
			v, s := g.MustF32(t, name)
			return b.FromF32(name, v, s...)
		}
		feats := func(which string) []*tensor.Tensor {
			var out []*tensor.Tensor
			for _, n := range []string{"last", "hidden_4", "hidden_8", "hidden_12", "hidden_16"} {
				out = append(out, up("features_"+which+"."+n))
			}
			return out
		}
		fc, fo := feats("clip"), feats("obj")
		defer b.Free(append(fc, fo...)...)

		words, err := gm.Forward(b, fc)
		if err != nil {
			t.Fatal(err)
		}
		wv := read(t, b, words)
		want, _ := g.MustF32(t, "mapper_words")
		golden.Close(t, "mapper words", wv, want, tol, 0)
		w0, _ := g.MustF32(t, "w0")
		golden.Close(t, "w0", wv[:len(w0)], w0, tol, 0)

		raw, err := lm.Forward(b, fo, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = g.MustF32(t, "local_raw")
		golden.Close(t, "local_raw", read(t, b, raw), want, tol, 0)
		mv, _ := g.MustF32(t, "mask16")
		mask := b.FromF32("mask16", mv, 1, len(mv))
		loc, err := lm.Forward(b, fo, mask)
		b.Free(mask)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = g.MustF32(t, "local")
		golden.Close(t, "local", read(t, b, loc), want, tol, 0)

		// E and E_uncond from the golden w0 (each module on its own inputs).
		pre := golden.Open(t, "elite", "preprocess.safetensors")
		ids64, _ := pre.MustInts(t, "a.input_ids")
		idx, _ := g.MustInts(t, "index")
		ids := make([]int32, len(ids64))
		for i, v := range ids64 {
			ids[i] = int32(v)
		}
		uncond := slices.Repeat([]int32{49407}, len(ids))
		uncond[0] = 49406
		w0t := up("w0")
		defer b.Free(w0t)
		e, err := text.EncodeInjected(b, [][]int32{ids}, w0t, []int{int(idx[0])})
		if err != nil {
			t.Fatal(err)
		}
		want, _ = g.MustF32(t, "E")
		golden.Close(t, "E", read(t, b, e), want, tol, 0)
		eu, err := text.Encode(b, [][]int32{uncond}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = g.MustF32(t, "E_uncond")
		golden.Close(t, "E_uncond", read(t, b, eu), want, tol, 0)

		// attn2 of two layers on their recorded inputs, with the local
		// term and without; P's placeholder column and M per head.
		E, L := up("E"), up("local")
		defer b.Free(E, L)
		local := &unet.Local{Features: L, Index: []int{int(idx[0])}, Lambda: []float32{0.8}}
		for _, c := range []struct {
			layer string
			h, w  int
		}{{"down_blocks.0.attentions.0", 12, 16}, {"mid_block.attentions.0", 6, 8}} {
			name := c.layer + ".transformer_blocks.0.attn2"
			in := up(c.layer + ".attn2.in")
			var col []float32
			u.Trace = func(n string, x *tensor.Tensor) {
				if n == name+".placeholder_probs" {
					col, _ = b.Read(context.Background(), x)
				}
			}
			out, err := u.ForwardAttention(b, name, in, E, local, nil, c.h, c.w)
			u.Trace = nil
			if err != nil {
				t.Fatal(err)
			}
			want, _ = g.MustF32(t, c.layer+".attn2.out")
			golden.Close(t, c.layer+" attn2 with the local term", read(t, b, out), want, tol, 0)
			// col is [1, N, 8]; the goldens are [8, N].
			pw, ps := g.MustF32(t, c.layer+".attn2.P_col")
			nh, n := ps[0], ps[1]
			var gotP, gotM []float32
			var mx float32
			for _, v := range col {
				mx = max(mx, v)
			}
			for h := range nh {
				for i := range n {
					gotP = append(gotP, col[i*nh+h])
					gotM = append(gotM, col[i*nh+h]/mx)
				}
			}
			golden.Close(t, c.layer+" P placeholder column", gotP, pw, tol, 0)
			mw, _ := g.MustF32(t, c.layer+".attn2.M")
			golden.Close(t, c.layer+" M", gotM, mw, tol, 0)
			out, err = u.ForwardAttention(b, name, in, E, nil, nil, c.h, c.w)
			if err != nil {
				t.Fatal(err)
			}
			want, _ = g.MustF32(t, c.layer+".attn2.out_global_only")
			golden.Close(t, c.layer+" attn2 global only", read(t, b, out), want, tol, 0)
			// ELITE's attn1 (matmul, then scale) is the UNet's own.
			in1 := up(c.layer + ".attn1.in")
			out, err = u.ForwardAttention(b, c.layer+".transformer_blocks.0.attn1", in1, nil, nil, nil, c.h, c.w)
			if err != nil {
				t.Fatal(err)
			}
			want, _ = g.MustF32(t, c.layer+".attn1.out")
			golden.Close(t, c.layer+" attn1", read(t, b, out), want, tol, 0)
			b.Free(in, in1)
		}

		// One UNet call of each kind at t = 999.
		sv, ss := g.MustF32(t, "unet.sample")
		tv, _, err := g.F64("unet.t")
		if err != nil {
			t.Fatal(err)
		}
		ch, hh, ww := ss[1], ss[2], ss[3]
		sample := b.FromF32("sample", toNHWC(sv, ch, hh, ww), 1, hh, ww, ch)
		Eu := up("E_uncond")
		defer b.Free(sample, Eu)
		for _, c := range []struct {
			golden string
			ctx    *tensor.Tensor
			local  *unet.Local
		}{{"unet.eps_cond", E, local}, {"unet.eps_uncond", Eu, nil}} {
			out, err := u.ForwardLocal(b, sample, []float32{float32(tv[0])}, c.ctx, c.local, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := g.MustF32(t, c.golden)
			golden.Close(t, c.golden, read(t, b, out), toNHWC(want, ch, hh, ww), tol, 0)
		}
	})
}
