// fullsize_elite.go runs ELITE's model stages one at a time at the size of
// the ELITE checkpoint it is given (harmony synth --base elite), measured
// as the BLIP-Diffusion stages are (fullsize.go): wall time, GPU memory
// peaks against 1.15 × weights + the dry run's activations, host memory.
// Each stage loads only what it needs and frees it after.
//
//	image-encoder  CLIP ViT-L/14 on ELITE's two 224² inputs (the whole
//	               photo and the masked object), every hidden state kept
//	mappers        the global mapper on the photo's five feature maps (→ w0)
//	               and the local mapper on the object's (→ [1, 256, 768]),
//	               with a 16×16 mask
//	text           "a photo of a S" with w0 injected at the placeholder,
//	               and the empty unconditional prompt → [2, 77, 768]
//	unet-b2        one ELITE call: batch 2 [uncond, cond], the local term on
//	               the conditional row (λ 0.8), latents [2, 64, 64, 4]
//	unet-b4        Harmony's batch 4 [uncond ×2, cond main, cond visual],
//	               the local term on both conditional rows (without the
//	               Harmony hook: that is the pipeline's)
//	vae            decoding [1, 64, 64, 4] latents to a 512×512 image
//
// Inputs are random (normalized pixels, N(0, 1) latents): the point is the
// size, time and memory of each stage, not its values.
package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"harmony/engine/dryrun"
	"harmony/engine/gpu"
	"harmony/engine/models/catalog"
	"harmony/engine/models/clip"
	"harmony/engine/models/elite"
	"harmony/engine/models/unet"
	"harmony/engine/pipeline"
	"harmony/engine/rng"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// ELITEStageNames are ELITE's stages in the order they run.
var ELITEStageNames = []string{"image-encoder", "mappers", "text", "unet-b2", "unet-b4", "vae"}

// eliteRun is an ELITE stage run: the shared stage state plus what the
// ELITE stages hand on.
type eliteRun struct {
	*stageRun
	feats  [2][][]float32 // per image (photo, object): the five feature maps' values
	tokens int            // T of a feature map
	w0     []float32      // [1, D]
	local  []float32      // [1, T−1, D]
	text   []float32      // [2, 77, D]
}

// eliteShapes is the ELITE table's shape table, with the mapper files
// sized from the vision tower's and the UNet's configs (they have none).
func eliteShapes(configs map[string][]byte) loader.ShapeTable {
	return func(comp string, config []byte) (map[string][]int, error) {
		if comp == loader.ELITEGlobalMapper || comp == loader.ELITELocalMapper {
			return eliteMapperShapes(configs)
		}
		return catalog.ELITE.Shapes(comp, config)
	}
}

// RunELITEStages runs the chosen ELITE stages (nil: all) on dev.
func RunELITEStages(ctx context.Context, dev *gpu.Device, opt StageOptions) ([]StageResult, error) {
	want, err := chooseStages("ELITE ", ELITEStageNames, opt.Stages)
	if err != nil {
		return nil, err
	}
	r := &eliteRun{stageRun: newStageRun(ctx, dev, opt)}
	if r.meta, err = loader.LoadELITE(ctx, loader.ELITESources{Base: r.src}, r.b, &loader.Options{Components: []string{}}); err != nil {
		return nil, err
	}
	r.shapes = eliteShapes(r.meta.Configs)
	return r.run("ELITE ", want, []stage{
		{"image-encoder", r.imageEncoder},
		{"mappers", r.mappers},
		{"text", r.eliteText},
		{"unet-b2", func() (StageResult, error) { return r.eliteUNet(2) }},
		{"unet-b4", func() (StageResult, error) { return r.eliteUNet(4) }},
		{"vae", r.vaeDecode},
	})
}

// imageEncoder: both 224² inputs through the vision tower in one batch.
func (r *eliteRun) imageEncoder() (StageResult, error) {
	res := StageResult{Stage: "image-encoder"}
	cfg, err := clip.ParseVisionConfig(r.meta.Configs["image_encoder"])
	if err != nil {
		return res, err
	}
	s := cfg.ImageSize
	pixels := rng.Normal(11, 2*s*s*clip.ImageChannels)
	res.What = fmt.Sprintf("CLIP vision tower (%d layers, width %d): photo and object, %d×%d, all hidden states", cfg.Layers, cfg.Hidden, s, s)
	var feats [2][][]float32
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		m, err := clip.LoadVision(b, cfg, w)
		if err != nil {
			return nil, err
		}
		x := b.FromF32("pixels", pixels, 2, s, s, clip.ImageChannels)
		defer b.Free(x)
		o, err := m.Forward(b, x)
		if err != nil {
			return nil, err
		}
		defer o.Free(b)
		fs, err := elite.Features(o.Hidden)
		if err != nil {
			return nil, err
		}
		if b == tensor.Backend(r.b) {
			for i, f := range fs {
				v, err := b.Read(r.ctx, f)
				if err != nil {
					return nil, err
				}
				half := len(v) / 2
				if i == 0 {
					feats = [2][][]float32{}
					r.tokens = f.Shape[1]
				}
				feats[0] = append(feats[0], v[:half])
				feats[1] = append(feats[1], v[half:])
			}
		}
		// The output: the last state (a copy, as the hidden states go).
		return b.Scale(fs[0], 1, 0), nil
	}
	_, err = r.stage(&res, "image_encoder", call)
	r.feats = feats
	return res, err
}

// mappers: w0 from the photo's features, the local features from the
// object's.
func (r *eliteRun) mappers() (StageResult, error) {
	res := StageResult{Stage: "mappers"}
	vcfg, err := clip.ParseVisionConfig(r.meta.Configs["image_encoder"])
	if err != nil {
		return res, err
	}
	if r.feats[0] == nil { // the image encoder stage did not run
		r.tokens = vcfg.Positions()
		for img := range 2 {
			for i := range 5 {
				r.feats[img] = append(r.feats[img], rng.Normal(uint64(20+5*img+i), r.tokens*vcfg.Hidden))
			}
		}
	}
	nt, din := r.tokens, vcfg.Hidden
	mask := make([]float32, nt-1)
	for i := range mask {
		if y, x := i/16, i%16; (y-8)*(y-8)+(x-8)*(x-8) < 36 {
			mask[i] = 1
		}
	}
	res.What = fmt.Sprintf("global mapper (photo → w0) and local mapper (object → %d local features), 5 feature maps of [1, %d, %d]", nt-1, nt, din)
	call := func(b tensor.Backend, gw, lw *tensor.Weights) (*tensor.Tensor, error) {
		gc, err := elite.MapperConfigOf("global_mapper.pt", gw)
		if err != nil {
			return nil, err
		}
		g, err := elite.LoadMapper(b, gc, gw)
		if err != nil {
			return nil, err
		}
		defer g.Free(b) // the mapper took gw's tensors
		lc, err := elite.MapperConfigOf("local_mapper.pt", lw)
		if err != nil {
			return nil, err
		}
		l, err := elite.LoadMapperLocal(b, lc, lw)
		if err != nil {
			return nil, err
		}
		defer l.Free(b)
		var fs [2][]*tensor.Tensor
		for img := range 2 {
			for _, v := range r.feats[img] {
				fs[img] = append(fs[img], b.FromF32("feature", v, 1, nt, din))
			}
			defer b.Free(fs[img]...)
		}
		words, err := g.Forward(b, fs[0])
		if err != nil {
			return nil, err
		}
		defer b.Free(words)
		mt := b.FromF32("mask", mask, 1, nt-1)
		defer b.Free(mt)
		loc, err := l.Forward(b, fs[1], mt)
		if err != nil {
			return nil, err
		}
		if b == tensor.Backend(r.b) {
			wv, err := b.Read(r.ctx, words)
			if err != nil {
				b.Free(loc)
				return nil, err
			}
			r.w0 = wv[:gc.Out]
		}
		return loc, nil
	}
	if res.Activations, res.Largest, res.GFLOP, err = r.dryMany([]string{loader.ELITEGlobalMapper, loader.ELITELocalMapper}, func(b tensor.Backend, ws []*tensor.Weights) (*tensor.Tensor, error) {
		return call(b, ws[0], ws[1])
	}); err != nil {
		return res, fmt.Errorf("dry run: %w", err)
	}
	if err := r.begin(); err != nil {
		return res, err
	}
	ws, secs, err := r.loadMany([]string{loader.ELITEGlobalMapper, loader.ELITELocalMapper})
	if err != nil {
		return res, err
	}
	defer func() {
		for _, w := range ws {
			w.Free(r.b) // empty unless a mapper failed to load
		}
	}()
	res.LoadSeconds = secs
	for _, w := range ws {
		res.Weights += weightBytes(w)
	}
	v, err := r.timed(&res, nil, func(b tensor.Backend, _ *tensor.Weights) (*tensor.Tensor, error) { return call(b, ws[0], ws[1]) })
	if err != nil {
		return res, err
	}
	r.local = v
	r.end(&res)
	return res, nil
}

// dryMany is dry for a call over several components' weights.
func (r *eliteRun) dryMany(comps []string, call func(b tensor.Backend, ws []*tensor.Weights) (*tensor.Tensor, error)) (peak, largest int64, gflop float64, err error) {
	b := dryrun.New()
	var ws []*tensor.Weights
	for _, c := range comps {
		shapes, err := r.shapeTable()(c, r.meta.Configs[c])
		if err != nil {
			return 0, 0, 0, err
		}
		ws = append(ws, dryWeights(b, c, shapes))
	}
	out, err := call(b, ws)
	if err != nil {
		return 0, 0, 0, err
	}
	b.Free(out)
	if err := b.Err(); err != nil {
		return 0, 0, 0, err
	}
	return b.Peak, b.Largest, float64(b.Flops) / 1e9, nil
}

// loadMany loads several components' weights.
func (r *eliteRun) loadMany(comps []string) ([]*tensor.Weights, float64, error) {
	var ws []*tensor.Weights
	var secs float64
	for _, c := range comps {
		w, s, err := r.load(c)
		if err != nil {
			for _, x := range ws {
				x.Free(r.b)
			}
			return nil, 0, err
		}
		ws, secs = append(ws, w), secs+s
	}
	return ws, secs, nil
}

// eliteUNet runs one ELITE UNet call: batch 2 [uncond, cond] or Harmony's
// batch 4 [uncond, uncond, cond main, cond visual], the local term on the
// conditional rows.
func (r *eliteRun) eliteUNet(batch int) (StageResult, error) {
	res := StageResult{Stage: fmt.Sprintf("unet-b%d", batch)}
	cfg := r.unetCfg
	lat, d := r.latent, cfg.CrossDim[0]
	if r.text == nil {
		r.text = rng.Normal(31, 2*77*d)
	}
	if r.local == nil {
		r.local = rng.Normal(32, 256*d)
	}
	per := len(r.text) / 2
	nl := len(r.local) / d
	var ctxv, locv []float32
	var index []int
	switch batch {
	case 2:
		ctxv, locv, index = r.text, slices.Concat(r.local, r.local), []int{-1, 5}
	case 4:
		ctxv = slices.Concat(r.text[:per], r.text[:per], r.text[per:], r.text[per:])
		locv, index = slices.Concat(r.local, r.local, r.local, r.local), []int{-1, -1, 5, 5}
	}
	seq := per / d
	sample := rng.Normal(33, batch*lat*lat*cfg.InChannels)
	res.What = fmt.Sprintf("ELITE UNet, batch %d, %d×%d latents, local term (%d local features, λ 0.8) on the conditional rows", batch, lat, lat, nl)
	call := func(b tensor.Backend, ws []*tensor.Weights) (*tensor.Tensor, error) {
		u, err := r.eliteUNetOn(b, cfg, ws)
		if err != nil {
			return nil, err
		}
		x := b.FromF32("sample", sample, batch, lat, lat, cfg.InChannels)
		c := b.FromF32("context", ctxv, batch, seq, d)
		l := b.FromF32("local", locv, batch, nl, d)
		defer b.Free(x, c, l)
		return u.ForwardLocal(b, x, []float32{981}, c, &unet.Local{Features: l, Index: index, Lambda: []float32{0.8}}, nil)
	}
	comps := []string{"unet", loader.ELITEGlobalMapper, loader.ELITELocalMapper}
	var err error
	if res.Activations, res.Largest, res.GFLOP, err = r.dryMany(comps, call); err != nil {
		return res, fmt.Errorf("dry run: %w", err)
	}
	if err := r.begin(); err != nil {
		return res, err
	}
	var ws []*tensor.Weights
	if r.unet == nil {
		var secs float64
		// Only the UNet's part of the mapper files: the mapping networks
		// are another stage's.
		r.keep = func(comp, name string) bool { return comp == "unet" || !strings.HasPrefix(name, "mapping_") }
		ws, secs, err = r.loadMany(comps)
		r.keep = nil
		if err != nil {
			return res, err
		}
		res.LoadSeconds = secs
	}
	r.log("unet: running %s", res.What)
	if _, err := r.timed(&res, nil, func(b tensor.Backend, _ *tensor.Weights) (*tensor.Tensor, error) { return call(b, ws) }); err != nil {
		return res, err
	}
	res.Weights = weightBytes(r.unetW)
	r.end(&res)
	return res, nil
}

// eliteUNetOn builds ELITE's UNet on b from the UNet's and the mapper
// files' weights; the device's is built once and kept (r.unet, whose
// weights r.unetW then holds them all).
func (r *eliteRun) eliteUNetOn(b tensor.Backend, cfg *unet.Config, ws []*tensor.Weights) (*unet.UNet, error) {
	if b == tensor.Backend(r.b) && r.unet != nil {
		return r.unet, nil
	}
	u, err := unet.LoadELITE(b, cfg, ws[0], ws[1], ws[2])
	if err != nil {
		return nil, err
	}
	if b == tensor.Backend(r.b) {
		ws[1].Free(b) // what the UNet did not take
		ws[2].Free(b)
		r.unet, r.unetW = u, ws[0]
	}
	return u, nil
}

// eliteText: "a photo of a S" with w0 at the placeholder, and "".
func (r *eliteRun) eliteText() (StageResult, error) {
	res := StageResult{Stage: "text"}
	cfg, err := clip.ParseConfig(r.meta.Configs["text_encoder"])
	if err != nil {
		return res, err
	}
	tok, err := tokenizer.NewCLIP(pipeline.ComponentsFromLoader(r.meta).Tokenizer)
	if err != nil {
		return res, err
	}
	if r.w0 == nil {
		r.w0 = rng.Normal(30, cfg.Hidden)
	}
	cond, err := tok.EncodePadded("a photo of a S", cfg.MaxPositions)
	if err != nil {
		return res, err
	}
	uncond, err := tok.EncodePadded("", cfg.MaxPositions)
	if err != nil {
		return res, err
	}
	const index = 5 // ELITE's rule: the last word "S" is word 4, + 1 for BOS
	res.What = fmt.Sprintf("CLIP text encoder (%d layers): \"a photo of a S\" with w0 injected at token %d, and the empty prompt", cfg.Layers, index)
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		m, err := clip.Load(b, cfg, w)
		if err != nil {
			return nil, err
		}
		words := b.FromF32("w0", slices.Concat(r.w0, r.w0), 2, 1, cfg.Hidden)
		defer b.Free(words)
		return m.EncodeInjected(b, [][]int32{uncond.IDs, cond.IDs}, words, []int{-1, index})
	}
	r.text, err = r.stage(&res, "text_encoder", call)
	return res, err
}
