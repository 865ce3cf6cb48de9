// generate.go: one generation, as the reference pipeline's numbered stages
// (blipdiffusion.md §11) with Harmony's additions (harmony-method.md):
//
//  1. check inputs
//  2. encode the subject photo (image processor → BLIP-2 → subject embeddings)
//  3. encode the prompts (and orchestrate the visual embedding)
//  4. timesteps
//  5. initial latents
//  6. denoise: one batched UNet call per step for every process, guidance
//     per process, one scheduler per process, subject masks and the swap
//  7. decode with the VAE
//  8. postprocess to images
//
// A "process" is one denoising trajectory with its own conditioning and
// scheduler state: the main one; with Harmony the visual-only one; with
// Compare the plain BLIP-Diffusion one. They share the initial latents and
// the negative embedding, and every UNet call carries all of them, unconds
// first: [uncond…, cond…].
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"harmony/engine/harmony"
	"harmony/engine/imageproc"
	"harmony/engine/models/blip2"
	"harmony/engine/models/clip"
	"harmony/engine/rng"
	"harmony/engine/sched"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
)

// Image is a generated picture.
type Image struct {
	W, H  int
	Pix   []uint8   // RGB, row-major (HWC)
	Float []float32 // the float image in [0, 1], NHWC [1, H, W, 3]
}

// Output is one process's result.
type Output struct {
	Image   *Image
	Latents []float32 // final latents, NCHW [1, C, h, w]
}

// Timings are wall times of the stages.
type Timings struct {
	Encode, Denoise, Decode, Total time.Duration
	Calls                          int // UNet calls
	Batch                          int // UNet batch per call
}

// Result is what a generation returns.
type Result struct {
	Main     Output  // the Harmony image (or the plain BLIP-Diffusion one with MethodBLIPDiffusion)
	Baseline *Output // plain BLIP-Diffusion from the same latents (Compare)
	Visual   *Output // Harmony's visual-only process
	// Mask is the soft main mask used at the last swapped call (grid), and
	// MaskHeat that mask as a heat-map over the main image.
	Mask     *harmony.Map
	MaskHeat *Image

	// Embedding and EmbeddingOrtho are the main process's conditional
	// embedding before and after orchestration, [TextLen, D] row-major.
	Embedding, EmbeddingOrtho []float32
	EmbeddingShape            []int
	// Per UNet call: the binary masks computed at the call, and what the
	// main process used (zeros when the call did not swap).
	MasksMain, MasksVisual, MasksUsedMain []harmony.Mask
	Timesteps                             []float64 // per UNet call (fractional for LMS)
	// ELITE: w0, the word injected at the placeholder [1, 1, D], and the
	// local mapper's masked patch features [1, Nl, D].
	W0, Local           []float32
	W0Shape, LocalShape []int
	LatentShape         []int // NCHW [1, C, h, w]
	Warnings            []string
	Timings             Timings
}

// process is one denoising trajectory.
type process struct {
	name    string
	cond    *tensor.Tensor // [1, TextLen, D]
	ids     []int32        // its prompt ids (for class rows)
	index   int            // ELITE: the placeholder's row of cond
	sch     sched.Scheduler
	latents []float32 // NCHW
}

// run carries one generation's state.
type run struct {
	m     *Model
	b     tensor.Backend
	o     Options
	start time.Time
	res   *Result
	lh    int // latent height
	lw    int // latent width
	elite *eliteRun
}

// Generate runs one generation. It honours ctx between UNet calls and in
// every GPU read; a cancelled run frees what it held and leaves the model
// ready for the next one.
func Generate(ctx context.Context, m *Model, o Options) (*Result, error) {
	r := &run{m: m, b: m.B, o: o, start: time.Now(), res: &Result{}}
	out, err := r.generate(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, err
	}
	return out, nil
}

func (r *run) generate(ctx context.Context) (*Result, error) {
	m, b, o, res := r.m, r.b, &r.o, r.res

	// 1. Check inputs.
	warnings, err := o.check(m)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, warnings...)
	r.lh, r.lw = o.Height/m.LatentFactor, o.Width/m.LatentFactor
	res.LatentShape = []int{1, m.LatentChannels, r.lh, r.lw}
	harmonyOn := o.Method == MethodHarmony
	cfg := o.Guidance > 1
	r.progress("encode", 0, 0)
	if m.Base == BaseELITE {
		return r.generateELITE(ctx)
	}

	// 2. Encode the subject photo.
	subject, err := r.encodeSubject()
	if err != nil {
		return nil, err
	}
	defer b.Free(subject)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// 3. Encode the prompts.
	condIDs, cond, err := r.encodePrompt(subject)
	if err != nil {
		return nil, err
	}
	var uncond *tensor.Tensor
	if cfg {
		if uncond, err = r.encodeNegative(); err != nil {
			b.Free(cond)
			return nil, err
		}
		defer b.Free(uncond)
	}
	main := &process{name: "main", cond: cond, ids: condIDs}
	procs := []*process{main}
	// Registered before the first return that can follow (a Read the
	// caller cancels among them), and reading procs when it runs: every
	// process's conditioning, and cond wherever it went, is freed on every
	// path. Freeing a tensor twice is harmless.
	defer func() {
		seen := map[*tensor.Tensor]bool{cond: true}
		b.Free(cond)
		for _, p := range procs {
			if !seen[p.cond] {
				seen[p.cond] = true
				b.Free(p.cond)
			}
		}
	}()
	var visual, base *process
	if harmonyOn {
		if res.Embedding, err = b.Read(ctx, cond); err != nil {
			return nil, err
		}
		res.EmbeddingShape = []int{1, m.TextLen, m.Hidden}
		if o.Harmony.Ortho {
			orth, err := r.orchestrate(condIDs, res.Embedding)
			if err != nil {
				return nil, err
			}
			res.EmbeddingOrtho = orth
			main.cond = b.FromF32("cond.ortho", orth, 1, m.TextLen, m.Hidden)
			if !o.Compare {
				b.Free(cond)
			}
		} else {
			res.EmbeddingOrtho = res.Embedding
		}
		if o.Harmony.Swap {
			// The visual-only process exists for the swap; without it the
			// run is the main process alone (as in the method's goldens).
			visIDs, visCond, err := r.encodeVisualPrompt(subject)
			if err != nil {
				return nil, err
			}
			visual = &process{name: "visual", cond: visCond, ids: visIDs}
			procs = append(procs, visual)

		}
		if o.Compare {
			base = &process{name: "baseline", cond: cond, ids: condIDs}
			procs = append(procs, base)
		}
		if o.Harmony.MainFromVisual && visual != nil {
			switch {
			case main.cond != cond:
				b.Free(main.cond)
			case base == nil:
				b.Free(cond)
			}
			main.cond, main.ids = b.Reshape(visual.cond, visual.cond.Shape...), visual.ids
		}
	}
	res.Timings.Encode = time.Since(r.start)
	return r.sample(ctx, procs, uncond, main, visual, base)
}

// sample is stages 4–8 for the processes (main first, then the
// visual-only one and the baseline when present) and the negative
// conditioning (nil: no guidance).
func (r *run) sample(ctx context.Context, procs []*process, uncond *tensor.Tensor, main, visual, base *process) (*Result, error) {
	m, o, res := r.m, &r.o, r.res
	var err error

	// 4. Timesteps: one scheduler per process (PNDM and LMS keep a history).
	for _, p := range procs {
		if p.sch, err = r.newScheduler(); err != nil {
			return nil, err
		}
	}
	res.Timesteps = procs[0].sch.Timesteps()

	// 5. Initial latents, shared by every process.
	latents := o.Latents
	if latents == nil {
		latents = rng.Normal(o.Seed, m.LatentChannels*r.lh*r.lw)
	}
	sigma := procs[0].sch.InitNoiseSigma()
	for _, p := range procs {
		p.latents = make([]float32, len(latents))
		for i, v := range latents {
			p.latents[i] = v * sigma
		}
	}

	// 6. Denoise.
	t0 := time.Now()
	if err := r.denoise(ctx, procs, uncond); err != nil {
		return nil, err
	}
	res.Timings.Denoise = time.Since(t0)

	// 7. Decode, 8. postprocess.
	t0 = time.Now()
	r.progress("decode", res.Timings.Calls, res.Timings.Calls)
	for _, p := range procs {
		img, err := r.decode(ctx, p.name, p.latents)
		if err != nil {
			return nil, err
		}
		out := Output{Image: img, Latents: p.latents}
		switch p {
		case main:
			res.Main = out
		case visual:
			res.Visual = &out
		case base:
			res.Baseline = &out
		}
	}
	if res.Mask != nil {
		res.MaskHeat = heatmap(res.Main.Image, *res.Mask)
	}
	res.Timings.Decode = time.Since(t0)
	res.Timings.Total = time.Since(r.start)
	return res, nil
}

func (r *run) progress(stage string, call, calls int) {
	if r.o.Progress == nil {
		return
	}
	p := Progress{Stage: stage, Call: call, Calls: calls, Elapsed: time.Since(r.start)}
	r.o.Progress(p)
}

// encodeSubject: image processor → Q-Former → ProjLayer (§4–§6).
func (r *run) encodeSubject() (*tensor.Tensor, error) {
	m := r.m
	return EncodeSubject(r.b, m.QFormer, m.BERT, m.Image, r.o.ImageName, r.o.Image, r.o.SourceClass)
}

// EncodeSubject is stage 2 on the model's parts, so that a caller holding
// only the Q-Former (the full-size benchmark) runs the pipeline's own
// stage: the photo through the image processor, the subject's class
// through the Q-Former's tokenizer, both through the Q-Former and its
// projection → subject embeddings [1, NumQuery, D].
func EncodeSubject(b tensor.Backend, q *blip2.QFormer, bert *tokenizer.BERT, img imageproc.Config, photoName string, photo []byte, class string) (*tensor.Tensor, error) {
	im, _, err := imageproc.Load(photoName, photo, img, imageproc.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	pixels := b.FromF32("pixel_values", im.Pixels, im.Shape()...)
	defer b.Free(pixels)
	ids, mask := bert.EncodeBatch([]string{class}).Row(0)
	return q.Encode(b, pixels, [][]int32{ids}, [][]int32{mask})
}

// TextParts are the model's parts stage 3 runs on.
type TextParts struct {
	Encoder  *clip.TextModel
	Tok      *tokenizer.CLIP
	CtxBegin int // where the subject embeddings enter the sequence (ctx_begin_pos)
	NumQuery int // subject embeddings
	TextLen  int // text positions (77)
}

func (m *Model) textParts() TextParts {
	return TextParts{Encoder: m.Text, Tok: m.CLIP, CtxBegin: m.CtxBeginPos, NumQuery: m.NumQuery, TextLen: m.TextLen}
}

// encodePrompt builds the amplified prompt and encodes it with the subject
// embeddings inserted at ctx_begin_pos.
func (r *run) encodePrompt(subject *tensor.Tensor) ([]int32, *tensor.Tensor, error) {
	m, o := r.m, &r.o
	maxLen := m.TextLen - m.NumQuery
	if n := m.CLIP.PromptOverflow(o.Prompt, o.TargetClass, maxLen); n > 0 {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("the prompt is %d tokens too long for the %d-token context; like the reference, it is truncated, dropping %q", n, maxLen, droppedText(m.CLIP.Tokens(tokenizer.BuildPrompt(o.Prompt, o.TargetClass, 1, 1)), n)))
	}
	return EncodePrompt(r.b, m.textParts(), o, subject)
}

// droppedText is the text of the last n of toks (CLIP BPE symbols) for a
// warning: a long prompt is not repeated whole, and what is dropped is
// shortened to its first and last words.
func droppedText(toks []string, n int) string {
	n = min(n, len(toks))
	var sb strings.Builder
	for _, t := range toks[len(toks)-n:] {
		if w, ok := strings.CutSuffix(t, "</w>"); ok {
			sb.WriteString(w + " ")
		} else {
			sb.WriteString(t)
		}
	}
	words := strings.Fields(sb.String())
	const keep = 6
	if len(words) > 2*keep {
		return strings.Join(words[:keep], " ") + " … " + strings.Join(words[len(words)-keep:], " ")
	}
	return strings.Join(words, " ")
}

// EncodePrompt is stage 3's conditional embedding on the model's parts:
// the prompt amplified as the reference does (o's prompt, target class,
// prompt strength and repetitions), encoded with the subject embeddings
// [1, NumQuery, D] at CtxBegin. It returns the prompt's ids too (the
// Harmony rows are found in them).
func EncodePrompt(b tensor.Backend, t TextParts, o *Options, subject *tensor.Tensor) ([]int32, *tensor.Tensor, error) {
	enc, err := t.Tok.EncodePrompt(o.Prompt, o.TargetClass, o.PromptStrength, o.PromptReps, t.TextLen-t.NumQuery)
	if err != nil {
		return nil, nil, err
	}
	cond, err := t.Encoder.Encode(b, [][]int32{enc.IDs}, subject, []int{t.CtxBegin})
	return enc.IDs, cond, err
}

// encodeNegative encodes the negative prompt without subject embeddings.
func (r *run) encodeNegative() (*tensor.Tensor, error) {
	cond, warning, err := EncodeNegative(r.b, r.m.textParts(), r.o.Negative)
	if warning != "" {
		r.res.Warnings = append(r.res.Warnings, warning)
	}
	return cond, err
}

// EncodeNegative is stage 3's unconditional embedding on the model's
// parts: the negative prompt without subject embeddings. The warning says
// when it was truncated.
func EncodeNegative(b tensor.Backend, t TextParts, negative string) (cond *tensor.Tensor, warning string, err error) {
	enc, err := t.Tok.EncodeNegative(negative)
	if err != nil {
		return nil, "", err
	}
	if enc.Truncated {
		warning = fmt.Sprintf("the negative prompt needs %d tokens; it is truncated to %d", enc.Needed, len(enc.IDs))
	}
	cond, err = t.Encoder.Encode(b, [][]int32{enc.IDs}, nil, nil)
	return cond, warning, err
}

// encodeVisualPrompt encodes the visual-only process's prompt ("a {class}",
// not through the prompt builder) with the same subject embeddings.
func (r *run) encodeVisualPrompt(subject *tensor.Tensor) ([]int32, *tensor.Tensor, error) {
	m := r.m
	text := strings.ReplaceAll(r.o.Harmony.VisualPrompt, "{class}", r.o.TargetClass)
	enc, err := m.CLIP.EncodePadded(text, m.TextLen-m.NumQuery)
	if err != nil {
		return nil, nil, err
	}
	cond, err := m.Text.Encode(r.b, [][]int32{enc.IDs}, subject, []int{m.CtxBeginPos})
	return enc.IDs, cond, err
}

func (r *run) layout() harmony.Layout {
	return harmony.Layout{CtxBegin: r.m.CtxBeginPos, NumCtx: r.m.NumQuery, BOS: r.m.CLIP.BOS(), EOS: r.m.CLIP.EOS()}
}

// orchestrate projects the visual rows off the text rows' span (§2).
func (r *run) orchestrate(ids []int32, E []float32) ([]float32, error) {
	classIDs := r.m.CLIP.Encode(r.o.TargetClass)
	rows, err := harmony.ClassifyRows(ids, classIDs, r.layout())
	if err != nil {
		return nil, err
	}
	opt := harmony.DefaultOrthoOptions()
	opt.Mode, opt.ExcludeClass = r.o.Harmony.OrthoMode, r.o.Harmony.ExcludeClass
	res, err := harmony.Orthogonalize(E, r.m.Hidden, rows, opt)
	if err != nil {
		return nil, err
	}
	if res.Warning != "" {
		r.res.Warnings = append(r.res.Warnings, res.Warning)
	}
	return res.E, nil
}

// newScheduler builds the scheduler the options name from the model's
// scheduler config, read for that class as diffusers' from_config reads
// another class's config (ELITE's LMS from Stable Diffusion's PNDM config).
func (r *run) newScheduler() (sched.Scheduler, error) {
	c := r.m.Sched
	class := map[string]string{"pndm": sched.ClassPNDM, "ddim": sched.ClassDDIM, "lms": sched.ClassLMS}[r.o.Scheduler]
	if class != "" && class != c.ClassName {
		var err error
		if c, err = sched.ParseConfigAs(r.m.SchedRaw, class); err != nil {
			return nil, err
		}
	}
	s, err := sched.New(c)
	if err != nil {
		return nil, err
	}
	if err := s.SetTimesteps(r.o.Steps); err != nil {
		return nil, err
	}
	return s, nil
}

// decode runs the VAE on NCHW latents of the process named proc and
// postprocesses (§9, §11.10–11).
func (r *run) decode(ctx context.Context, proc string, latents []float32) (*Image, error) {
	m, b := r.m, r.b
	c := m.LatentChannels
	z := b.FromF32("latents", nchwToNHWC(latents, 1, c, r.lh, r.lw), 1, r.lh, r.lw, c)
	defer b.Free(z)
	var x *tensor.Tensor
	var err error
	if sf := m.VAE.Config.ScalingFactor; m.Base == BaseELITE && sf == float32(0.18215) && m.VAE.Config.ShiftFactor == 0 {
		// ELITE multiplies by Python's 1/0.18215 (rounded to float32 once),
		// where diffusers divides by the config's factor.
		zs := b.Scale(z, float32(1/0.18215), 0)
		x, err = m.VAE.DecodeZ(b, zs)
		b.Free(zs)
	} else {
		x, err = m.VAE.Decode(b, z)
	}
	if err != nil {
		return nil, err
	}
	defer b.Free(x)
	v, err := b.Read(ctx, x)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(v, "decode", 0, proc+" image"); err != nil {
		return nil, err
	}
	return postprocess(v, x.Shape[2], x.Shape[1]), nil
}

// postprocess maps the decoder output to [0, 1] and 8 bits like the
// reference: (x/2 + 0.5).clamp(0, 1) in float32, round(255·v) half to even.
func postprocess(v []float32, w, h int) *Image {
	img := &Image{W: w, H: h, Pix: make([]uint8, 3*w*h), Float: make([]float32, 3*w*h)}
	for i, x := range v[:3*w*h] {
		f := x/2 + 0.5
		f = min(max(f, 0), 1)
		img.Float[i] = f
		img.Pix[i] = uint8(math.RoundToEven(float64(float32(f * 255))))
	}
	return img
}

func nchwToNHWC(v []float32, n, c, h, w int) []float32 {
	out := make([]float32, len(v))
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					out[((b*h+y)*w+x)*c+ch] = v[((b*c+ch)*h+y)*w+x]
				}
			}
		}
	}
	return out
}

func nhwcToNCHW(v []float32, n, c, h, w int) []float32 {
	out := make([]float32, len(v))
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					out[((b*c+ch)*h+y)*w+x] = v[((b*h+y)*w+x)*c+ch]
				}
			}
		}
	}
	return out
}
