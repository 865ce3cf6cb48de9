// fullsize.go runs the pipeline's model stages one at a time at the size
// of the checkpoint it is given (the synthetic full-size pack) and
// measures each: wall time, GPU memory (gpu.Device.Stats peaks,
// pool included) against what the weights and the activations need (the
// activation need from the same call on the dry-run backend), and host
// memory. Each stage loads only its component (loader.Options.Components),
// so the GPU never holds more than one component's weights, and frees it
// after.
//
// Stages, with the inputs the pipeline gives them; the encoders and the
// Harmony hook are the pipeline's own stage code (pipeline.EncodeSubject,
// EncodePrompt, EncodeNegative, HarmonyHook) on the one component loaded:
//
//	qformer  the subject photo at 224×224 and "dog" → subject embeddings [1, 16, 768]
//	text     the amplified prompt with those embeddings, and the empty
//	         negative prompt → [2, 77, 768]
//	unet-b2  one classifier-free-guidance call: batch 2, latents [2, 64, 64, 4]
//	unet-b4  the Harmony call: batch 4 (main and visual-only processes,
//	         unconds first) with the pipeline's own Harmony hook at a
//	         swapping call: attention-probability read-back at the mask
//	         layers, the subject masks, and the self-attention swap in the
//	         up blocks (with a disc-shaped subject from the call before)
//	vae      decoding [1, 64, 64, 4] latents to a 512×512 image
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"harmony/engine/dryrun"
	"harmony/engine/gpu"
	"harmony/engine/harmony"
	"harmony/engine/imageproc"
	"harmony/engine/kernels"
	"harmony/engine/models/blip2"
	"harmony/engine/models/clip"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
	"harmony/engine/pipeline"
	"harmony/engine/rng"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// StageNames are the stages in the order they run.
var StageNames = []string{"qformer", "text", "unet-b2", "unet-b4", "vae"}

// StageOptions configure RunStages.
type StageOptions struct {
	Source loader.Source // a BLIP-Diffusion model (the synthetic pack)
	Stages []string      // which of StageNames to run (nil: all)
	Latent int           // latent height and width (0: the UNet's sample_size, 64 at full size)
	Photo  []byte        // subject photo
	// Log, when set, is told what is happening (the stages take minutes on
	// a CPU adapter).
	Log func(format string, a ...any)
}

// StageResult is one stage's measurements. Memory figures are bytes.
type StageResult struct {
	Stage       string  `json:"stage"`
	What        string  `json:"what"`
	Seconds     float64 `json:"seconds"`      // the call(s): upload of inputs to read-back of the output
	LoadSeconds float64 `json:"load_seconds"` // loading the component's weights (0 when already loaded)
	GFLOP       float64 `json:"gflop"`        // Linear, Conv2D and attention multiply-adds × 2 (dry run)
	Output      []int   `json:"output_shape"`
	OutputRMS   float64 `json:"output_rms"` // a finite, O(1) output shows the random weights keep activations sane

	// Weights is the component's weights as loaded (f16 matrices, f32
	// vectors); Activations the dry run's peak of live activations for the
	// same call (inputs and output included; kernel scratch not counted);
	// Target = 1.15·Weights + Activations.
	Weights     int64 `json:"weights_bytes"`
	Activations int64 `json:"activations_bytes"`
	Largest     int64 `json:"largest_activation_bytes"`
	Target      int64 `json:"target_bytes"`
	// PeakAllocated is the high-water mark of GPU buffer bytes (weights,
	// activations and the pool's idle buffers); PeakInUse of bytes handed
	// out; LargestBinding the largest storage binding of any dispatch so
	// far (a running maximum over the stages run before, too).
	PeakAllocated  uint64 `json:"peak_gpu_allocated_bytes"`
	PeakInUse      uint64 `json:"peak_gpu_in_use_bytes"`
	LargestBinding uint64 `json:"largest_binding_bytes"`

	Host HostPeaks `json:"host"` // over load and call(s)
}

// stageRun is the state the stages hand on.
type stageRun struct {
	ctx    context.Context
	dev    *gpu.Device
	b      *kernels.Backend
	src    loader.Source
	meta   *loader.Model // configs and tokenizer files
	mem    *memSampler
	log    func(format string, a ...any)
	latent int

	subject []float32 // [1, Q, D] from the Q-Former
	text    []float32 // [2, 77, D]: uncond, cond
	unetW   *tensor.Weights
	unet    *unet.UNet // the device's UNet, built once for both calls
	unetCfg *unet.Config
	shapes  loader.ShapeTable            // what the components' configs imply (nil: pipeline.ExpectedShapes)
	keep    func(comp, name string) bool // restricts what load reads (nil: everything)
}

// shapeTable is the run's shape table.
func (r *stageRun) shapeTable() loader.ShapeTable {
	if r.shapes == nil {
		return pipeline.ExpectedShapes
	}
	return r.shapes
}

// RunStages runs the chosen stages on dev and returns their measurements.
func RunStages(ctx context.Context, dev *gpu.Device, opt StageOptions) ([]StageResult, error) {
	want, err := chooseStages("", StageNames, opt.Stages)
	if err != nil {
		return nil, err
	}
	r := newStageRun(ctx, dev, opt)
	// Configs and tokenizer files only.
	if r.meta, err = loader.Load(ctx, r.src, r.b, &loader.Options{Components: []string{}}); err != nil {
		return nil, err
	}
	return r.run("", want, []stage{
		{"qformer", func() (StageResult, error) { return r.qformer(opt.Photo) }},
		{"text", r.textEncoder},
		{"unet-b2", func() (StageResult, error) { return r.unetCall(2) }},
		{"unet-b4", func() (StageResult, error) { return r.unetCall(4) }},
		{"vae", r.vaeDecode},
	})
}

// stage is one named measurement of a stage run.
type stage struct {
	name string
	run  func() (StageResult, error)
}

// chooseStages checks the asked-for stage names against a model's (nil
// asks for all of them); kind names the model in the error ("" or "ELITE ").
func chooseStages(kind string, names, want []string) ([]string, error) {
	if want == nil {
		return names, nil
	}
	for _, s := range want {
		if !slices.Contains(names, s) {
			return nil, fmt.Errorf("bench: no %sstage %q (have %v)", kind, s, names)
		}
	}
	return want, nil
}

// newStageRun is a run on dev with opt's source, log and latent size.
func newStageRun(ctx context.Context, dev *gpu.Device, opt StageOptions) *stageRun {
	r := &stageRun{ctx: ctx, dev: dev, b: kernels.New(dev), src: opt.Source, log: opt.Log, latent: opt.Latent}
	if r.log == nil {
		r.log = func(string, ...any) {}
	}
	return r
}

// run is the loop every model's stage run shares, once r.meta holds the
// configs: the stages in their table order that want names, each measured
// and logged; the UNet is freed before the VAE stage (room for it) and at
// the end. kind names the model in errors ("" or "ELITE ").
func (r *stageRun) run(kind string, want []string, stages []stage) ([]StageResult, error) {
	var err error
	if r.unetCfg, err = unet.ParseConfig(r.meta.Configs["unet"]); err != nil {
		return nil, err
	}
	if r.latent == 0 {
		r.latent = r.unetCfg.SampleSize
	}
	r.mem = startSampler()
	defer r.mem.close()
	defer r.freeUNet()
	var out []StageResult
	for _, st := range stages {
		if !slices.Contains(want, st.name) {
			continue
		}
		if st.name == "vae" {
			r.freeUNet() // the UNet is done: make room
		}
		res, err := st.run()
		if err != nil {
			return out, fmt.Errorf("bench: %sstage %s: %w", kind, st.name, err)
		}
		r.log("%s: %.1f s (load %.1f s), %.0f GFLOP, peak GPU %s (target %s), Go heap %s, RSS %s",
			st.name, res.Seconds, res.LoadSeconds, res.GFLOP, mb(int64(res.PeakAllocated)), mb(res.Target), mb(int64(res.Host.GoHeap)), mb(int64(res.Host.RSS)))
		out = append(out, res)
	}
	return out, nil
}

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

// begin starts a stage's measurements: the pool is emptied (so a stage
// does not inherit the last one's idle buffers), peaks reset.
func (r *stageRun) begin() error {
	if err := r.dev.Trim(); err != nil {
		return err
	}
	r.dev.ResetPeaks()
	r.mem.reset()
	return nil
}

// end fills in the GPU and host peaks.
func (r *stageRun) end(res *StageResult) {
	st := r.dev.Stats()
	res.PeakAllocated, res.PeakInUse, res.LargestBinding = st.PeakAllocated, st.PeakInUse, st.LargestBinding
	res.Host = r.mem.peaks()
	res.Target = int64(1.15*float64(res.Weights)) + res.Activations
}

// load loads one component's weights.
func (r *stageRun) load(comp string) (*tensor.Weights, float64, error) {
	r.log("%s: loading", comp)
	t0 := time.Now()
	lm, err := loader.Load(r.ctx, r.src, r.b, &loader.Options{Components: []string{comp}, Shapes: r.shapeTable(), Keep: r.keep})
	if err != nil {
		return nil, 0, err
	}
	if err := r.b.Sync(r.ctx); err != nil {
		lm.Free(r.b)
		return nil, 0, err
	}
	return lm.Weights[comp], time.Since(t0).Seconds(), nil
}

// weightBytes is the weights' size on the device.
func weightBytes(w *tensor.Weights) int64 {
	var n int64
	for _, name := range w.Names() {
		if t, err := w.Get(name); err == nil {
			n += int64(t.Numel() * t.DType.Size())
		}
	}
	return n
}

// dryWeights makes a component's weights on the dry-run backend with the
// storage types of a PrecisionF16 load.
func dryWeights(b *dryrun.Backend, comp string, shapes map[string][]int) *tensor.Weights {
	w := tensor.NewWeights(comp)
	for name, s := range shapes {
		w.Put(name, b.NewWeight(name, loader.StorageType(loader.PrecisionF16, name, s), s...))
	}
	return w
}

// dry runs call on the dry-run backend with the component's shapes:
// activation peak (above the weights), largest tensor, FLOPs.
func (r *stageRun) dry(comp string, config []byte, call func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error)) (peak, largest int64, gflop float64, err error) {
	shapes, err := r.shapeTable()(comp, config)
	if err != nil {
		return 0, 0, 0, err
	}
	b := dryrun.New()
	out, err := call(b, dryWeights(b, comp, shapes))
	if err != nil {
		return 0, 0, 0, err
	}
	b.Free(out)
	if err := b.Err(); err != nil {
		return 0, 0, 0, err
	}
	return b.Peak, b.Largest, float64(b.Flops) / 1e9, nil
}

// timed runs call on the GPU and reads its output back.
func (r *stageRun) timed(res *StageResult, w *tensor.Weights, call func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error)) ([]float32, error) {
	t0 := time.Now()
	out, err := call(r.b, w)
	if err != nil {
		return nil, err
	}
	defer r.b.Free(out)
	v, err := r.b.Read(r.ctx, out)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Output = slices.Clone(out.Shape)
	var sq float64
	for _, x := range v {
		sq += float64(x) * float64(x)
	}
	res.OutputRMS = math.Sqrt(sq / float64(max(len(v), 1)))
	if math.IsNaN(res.OutputRMS) || math.IsInf(res.OutputRMS, 0) {
		return v, fmt.Errorf("output %v is not finite", out.Shape)
	}
	return v, nil
}

// stage runs one component's call: dry run, load, GPU run, free.
func (r *stageRun) stage(res *StageResult, comp string, call func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error)) ([]float32, error) {
	var err error
	if res.Activations, res.Largest, res.GFLOP, err = r.dry(comp, r.meta.Configs[comp], call); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	if err := r.begin(); err != nil {
		return nil, err
	}
	w, secs, err := r.load(comp)
	if err != nil {
		return nil, err
	}
	defer w.Free(r.b)
	res.LoadSeconds, res.Weights = secs, weightBytes(w)
	r.log("%s: running %s", comp, res.What)
	v, err := r.timed(res, w, call)
	if err != nil {
		return nil, err
	}
	r.end(res)
	return v, nil
}

// qformer: photo → subject embeddings.
func (r *stageRun) qformer(photo []byte) (StageResult, error) {
	res := StageResult{Stage: "qformer"}
	cfg, err := blip2.ParseConfig(r.meta.Configs["qformer"])
	if err != nil {
		return res, err
	}
	icfg := imageproc.DefaultConfig()
	if d := r.meta.Configs["image_processor"]; d != nil {
		if icfg, err = imageproc.ParseConfig(d); err != nil {
			return res, err
		}
	}
	bert, err := tokenizer.DefaultBERT()
	if vocab := r.meta.BertVocab(); vocab != nil {
		bert, err = tokenizer.NewBERT(vocab)
	}
	if err != nil {
		return res, err
	}
	pw, ph := icfg.Width, icfg.Height
	if icfg.DoCenterCrop && icfg.CropWidth > 0 && icfg.CropHeight > 0 {
		pw, ph = icfg.CropWidth, icfg.CropHeight
	}
	res.What = fmt.Sprintf("vision encoder (%d layers) + Q-Former (%d layers) on a %d×%d photo", cfg.Vision.Layers, cfg.QFormer.Layers, pw, ph)
	// The pipeline's stage 2, photo preprocessing included (milliseconds
	// against the encoders' seconds).
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		m, err := blip2.Load(b, cfg, w)
		if err != nil {
			return nil, err
		}
		return pipeline.EncodeSubject(b, m, bert, icfg, "photo", photo, "dog")
	}
	r.subject, err = r.stage(&res, "qformer", call)
	return res, err
}

// textEncoder: the conditional prompt with the subject embeddings and the
// negative prompt.
func (r *stageRun) textEncoder() (StageResult, error) {
	res := StageResult{Stage: "text"}
	cfg, err := clip.ParseConfig(r.meta.Configs["text_encoder"])
	if err != nil {
		return res, err
	}
	qcfg, err := blip2.ParseConfig(r.meta.Configs["qformer"])
	if err != nil {
		return res, err
	}
	c := pipeline.ComponentsFromLoader(r.meta)
	tok, err := tokenizer.NewCLIP(c.Tokenizer)
	if err != nil {
		return res, err
	}
	nq := qcfg.NumQueryTokens
	if r.subject == nil { // the Q-Former stage did not run
		r.subject = rng.Normal(1, nq*cfg.Hidden)
	}
	begin, err := r.ctxBeginPos()
	if err != nil {
		return res, err
	}
	o := pipeline.DefaultOptions()
	o.TargetClass, o.Prompt = "dog", "swimming underwater"
	res.What = fmt.Sprintf("CLIP text encoder (%d layers): prompt with %d subject embeddings, and the negative prompt", cfg.Layers, nq)
	// The pipeline's stage 3 for the main process: the negative prompt and
	// the amplified prompt with the subject embeddings.
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		m, err := clip.Load(b, cfg, w)
		if err != nil {
			return nil, err
		}
		parts := pipeline.TextParts{Encoder: m, Tok: tok, CtxBegin: begin, NumQuery: nq, TextLen: cfg.MaxPositions}
		ctx := b.FromF32("subject", r.subject, 1, nq, cfg.Hidden)
		defer b.Free(ctx)
		u, _, err := pipeline.EncodeNegative(b, parts, o.Negative)
		if err != nil {
			return nil, err
		}
		defer b.Free(u)
		_, cnd, err := pipeline.EncodePrompt(b, parts, &o, ctx)
		if err != nil {
			return nil, err
		}
		defer b.Free(cnd)
		return b.Concat(0, u, cnd), nil
	}
	r.text, err = r.stage(&res, "text_encoder", call)
	return res, err
}

// harmonyHook is the pipeline's Harmony hook (pipeline.HarmonyHook) for a
// batch-4 call at the latent size, with its defaults (mask layers, subject
// columns, swap layers and mode), primed as if call 0 had found a
// disc-shaped subject in both processes, so that call 1 swaps.
func (r *stageRun) harmonyHook(b tensor.Backend, u *unet.UNet, lat, textLen int) (*pipeline.HarmonyHook, error) {
	qcfg, err := blip2.ParseConfig(r.meta.Configs["qformer"])
	if err != nil {
		return nil, err
	}
	begin, err := r.ctxBeginPos()
	if err != nil {
		return nil, err
	}
	o := pipeline.DefaultOptions()
	o.Harmony.SwapStart = harmony.SwapStart{IsCall: true, Call: 1}
	h, err := pipeline.NewHarmonyHook(b, &o, pipeline.HookLayout{
		Sites: u.Sites(lat, lat), Text: harmony.Layout{CtxBegin: begin, NumCtx: qcfg.NumQueryTokens},
		TextLen: textLen, Processes: 2, CFG: true,
	})
	if err != nil {
		return nil, err
	}
	gh, gw := h.Grid()
	disc := harmony.Mask{H: gh, W: gw, V: make([]uint8, gh*gw)}
	for y := range gh {
		for x := range gw {
			dy, dx := float64(y)+0.5-float64(gh)/2, float64(x)+0.5-float64(gw)/2
			if dy*dy+dx*dx <= float64(gh*gw)/8 {
				disc.V[y*gw+x] = 1
			}
		}
	}
	if err := h.Prime(disc, disc); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}

// ctxBeginPos is where the prompt takes the subject embeddings: the
// checkpoint's model_index.json ctx_begin_pos, 2 when it has none (as
// pipeline.Assemble reads it).
func (r *stageRun) ctxBeginPos() (int, error) {
	var mi struct {
		CtxBeginPos *int `json:"ctx_begin_pos"`
	}
	if len(r.meta.Index) > 0 {
		if err := json.Unmarshal(r.meta.Index, &mi); err != nil {
			return 0, fmt.Errorf("model_index.json: %w", err)
		}
	}
	if mi.CtxBeginPos == nil {
		return 2, nil
	}
	return *mi.CtxBeginPos, nil
}

// unetCall runs one UNet call of the given batch (2: guidance; 4: Harmony).
func (r *stageRun) unetCall(batch int) (StageResult, error) {
	res := StageResult{Stage: fmt.Sprintf("unet-b%d", batch)}
	cfg := r.unetCfg
	lat, d := r.latent, cfg.CrossDim[0]
	if r.text == nil { // the text stage did not run
		r.text = rng.Normal(2, 2*77*d)
	}
	per := len(r.text) / 2
	var ctxv []float32
	switch batch {
	case 2: // [uncond, cond]
		ctxv = r.text
	case 4: // [uncond, uncond, cond main, cond visual]
		ctxv = slices.Concat(r.text[:per], r.text[:per], r.text[per:], r.text[per:])
	}
	seq := per / d
	sample := rng.Normal(3, batch*lat*lat*cfg.InChannels)
	res.What = fmt.Sprintf("UNet, batch %d, %d×%d latents", batch, lat, lat)
	if batch == 4 {
		res.What += " (Harmony: the pipeline's hook, a swapping call: probability read-back, subject masks, K/V swap)"
	}
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		u, err := r.unetOn(b, cfg, w)
		if err != nil {
			return nil, err
		}
		x := b.FromF32("sample", sample, batch, lat, lat, cfg.InChannels)
		c := b.FromF32("context", ctxv, batch, seq, d)
		defer b.Free(x, c)
		if batch != 4 {
			return u.Forward(b, x, []float32{981}, c, nil)
		}
		// Call 1 as the denoising loop makes it: Begin, the hooked call,
		// End (reading the mask layers' probabilities back).
		hook, err := r.harmonyHook(b, u, lat, seq)
		if err != nil {
			return nil, err
		}
		defer hook.Free()
		if err := hook.Begin(1); err != nil {
			return nil, err
		}
		out, err := u.Forward(b, x, []float32{981}, c, hook)
		if err != nil {
			return nil, err
		}
		if err := hook.End(r.ctx, 1); err != nil {
			return out, err
		}
		return out, nil
	}
	var err error
	if res.Activations, res.Largest, res.GFLOP, err = r.dry("unet", r.meta.Configs["unet"], call); err != nil {
		return res, fmt.Errorf("dry run: %w", err)
	}
	if err := r.begin(); err != nil {
		return res, err
	}
	if r.unetW == nil {
		w, secs, err := r.load("unet")
		if err != nil {
			return res, err
		}
		r.unetW, res.LoadSeconds = w, secs
	}
	res.Weights = weightBytes(r.unetW)
	r.log("unet: running %s", res.What)
	if _, err := r.timed(&res, r.unetW, call); err != nil {
		return res, err
	}
	r.end(&res)
	return res, nil
}

// unetOn builds the UNet on b. The device's is built once and kept: a
// build joins weights (q/k/v, the context's k/v) into new buffers, which a
// second build over the same weights would not own.
func (r *stageRun) unetOn(b tensor.Backend, cfg *unet.Config, w *tensor.Weights) (*unet.UNet, error) {
	if b != tensor.Backend(r.b) {
		return unet.Load(b, cfg, w)
	}
	if r.unet == nil {
		u, err := unet.Load(b, cfg, w)
		if err != nil {
			return nil, err
		}
		r.unet = u
	}
	return r.unet, nil
}

// freeUNet releases the device's UNet: its weights and the joined ones.
func (r *stageRun) freeUNet() {
	if r.unet != nil {
		r.unet.Free(r.b) // frees r.unetW too
	} else if r.unetW != nil {
		r.unetW.Free(r.b)
	}
	r.unet, r.unetW = nil, nil
}

// vaeDecode decodes one latent to an image.
func (r *stageRun) vaeDecode() (StageResult, error) {
	res := StageResult{Stage: "vae"}
	cfg, err := vae.ParseConfig(r.meta.Configs["vae"])
	if err != nil {
		return res, err
	}
	lat := r.latent
	z := rng.Normal(4, lat*lat*cfg.LatentChannels)
	f := 1 << (len(cfg.BlockOut) - 1)
	res.What = fmt.Sprintf("VAE decoder, %d×%d latents to a %d×%d image", lat, lat, lat*f, lat*f)
	call := func(b tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		d, err := vae.Load(b, cfg, w)
		if err != nil {
			return nil, err
		}
		x := b.FromF32("latents", z, 1, lat, lat, cfg.LatentChannels)
		defer b.Free(x)
		return d.Decode(b, x)
	}
	_, err = r.stage(&res, "vae", call)
	return res, err
}
