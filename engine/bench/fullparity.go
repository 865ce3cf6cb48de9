// fullparity.go compares the engine at the released model's size with the
// reference implementation: the four full-size computations of
// testdata/fullsize (made by testdata/gen/make_fullsize.py with diffusers
// and transformers on the synthetic checkpoint of Plan) run here on the
// device in f32 from the same inputs, each within 1e-4·max|reference|, and
// the Harmony masks identical. These are the code paths that only exist
// at full size: weights and tables split over several bindings, windowed
// norms, 4,096-token attention with head sizes 40, 80 and 160.
//
// Checks, in order (each loads only its component, in f32, and frees it):
//
//	qformer  the photo and "dog" → subject embeddings [1, 16, 768]
//	text     prompt ids [1, 61] with the stored subject embeddings → [1, 77, 768]
//	unet     a Harmony call (batch 4, 64×64 latents, timestep 981) through the
//	         pipeline's hook, primed with the stored disc masks: the noise
//	         prediction, and both processes' soft and binary masks
//	vae      latents [1, 64, 64, 4] → a 512×512 image, compared on the stored
//	         subsample, the 8×8 block means and the global statistics
package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/harmony"
	"harmony/engine/imageproc"
	"harmony/engine/kernels"
	"harmony/engine/models/blip2"
	"harmony/engine/models/clip"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
	"harmony/engine/pipeline"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// FullParityRel is the tolerance of every float comparison, relative to
// the reference's largest magnitude.
const FullParityRel = 1e-4

// FullParityChecks are the checks in the order they run.
var FullParityChecks = []string{"qformer", "text", "unet", "vae"}

// FullParityOptions configure FullParity.
type FullParityOptions struct {
	Source loader.Source // the synthetic checkpoint (a diffusers folder or its pack)
	Golden []byte        // testdata/fullsize/fullsize.safetensors
	Photo  []byte        // testdata/inputs/reference_96x64.png
	Checks []string      // which of FullParityChecks (nil: all)
	Log    func(format string, a ...any)
}

// ParityResult is one compared output.
type ParityResult struct {
	Check   string  `json:"check"`
	Output  string  `json:"output"`
	MaxErr  float64 `json:"max_abs_err"`
	MaxRef  float64 `json:"max_abs_ref"`
	Tol     float64 `json:"tolerance"` // FullParityRel·MaxRef; for masks the number of cells allowed to differ (0)
	Pass    bool    `json:"pass"`
	Seconds float64 `json:"seconds"` // the check's load and call (the same on every output of a check)
	Note    string  `json:"note,omitempty"`
}

// FullParity runs the checks on dev and returns one result per compared
// output. The error is a failure to run one (loading, a device error, a
// malformed golden file); a mismatch is a result with Pass false.
func FullParity(ctx context.Context, dev *gpu.Device, opt FullParityOptions) ([]ParityResult, error) {
	g, err := loader.ParseSafetensorsData(opt.Golden, "fullsize.safetensors")
	if err != nil {
		return nil, err
	}
	logf := opt.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	want := opt.Checks
	if want == nil {
		want = FullParityChecks
	}
	b := kernels.New(dev)
	meta, err := loader.Load(ctx, opt.Source, b, &loader.Options{Components: []string{}})
	if err != nil {
		return nil, err
	}
	p := &parityRun{ctx: ctx, b: b, src: opt.Source, meta: meta, g: g, log: logf, photo: opt.Photo}
	var out []ParityResult
	for _, name := range want {
		var run func() ([]ParityResult, error)
		switch name {
		case "qformer":
			run = p.qformer
		case "text":
			run = p.text
		case "unet":
			run = p.unet
		case "vae":
			run = p.vae
		default:
			return out, fmt.Errorf("bench: no full-size check %q (have %v)", name, FullParityChecks)
		}
		logf("%s: running", name)
		t0 := time.Now()
		res, err := run()
		if err != nil {
			return out, fmt.Errorf("bench: full-size check %s: %w", name, err)
		}
		for i := range res {
			res[i].Check, res[i].Seconds = name, time.Since(t0).Seconds()
			r := res[i]
			logf("%s %s: max|err| %.3g, max|ref| %.3g, tolerance %.3g, pass %v (%.0f s) %s", name, r.Output, r.MaxErr, r.MaxRef, r.Tol, r.Pass, r.Seconds, r.Note)
		}
		out = append(out, res...)
	}
	return out, nil
}

type parityRun struct {
	ctx   context.Context
	b     *kernels.Backend
	src   loader.Source
	meta  *loader.Model
	g     *loader.SafetensorsData
	log   func(format string, a ...any)
	photo []byte
}

// load loads one component in f32.
func (p *parityRun) load(comp string) (*tensor.Weights, error) {
	lm, err := loader.Load(p.ctx, p.src, p.b, &loader.Options{Precision: loader.PrecisionF32, Components: []string{comp}, Shapes: pipeline.ExpectedShapes})
	if err != nil {
		return nil, err
	}
	return lm.Weights[comp], nil
}

// read reads t back and frees it.
func (p *parityRun) read(t *tensor.Tensor) ([]float32, error) {
	defer p.b.Free(t)
	return p.b.Read(p.ctx, t)
}

// compare is max|got − want| against FullParityRel·max|want|.
func compare(output string, got, want []float32) ParityResult {
	r := ParityResult{Output: output}
	if len(got) != len(want) {
		r.Note = fmt.Sprintf("%d values, the reference has %d", len(got), len(want))
		r.MaxErr = math.Inf(1)
		return r
	}
	for i, w := range want {
		r.MaxRef = max(r.MaxRef, math.Abs(float64(w)))
		e := math.Abs(float64(got[i]) - float64(w))
		if !(e <= r.MaxErr) { // NaN sticks
			r.MaxErr = e
		}
	}
	r.Tol = FullParityRel * r.MaxRef
	r.Pass = r.MaxErr <= r.Tol
	return r
}

// compareMask counts the cells where two binary masks differ.
func compareMask(output string, got harmony.Mask, want []int64, margin float64) ParityResult {
	r := ParityResult{Output: output, MaxRef: 1}
	if len(got.V) != len(want) {
		r.Note = fmt.Sprintf("%d cells, the reference has %d", len(got.V), len(want))
		r.MaxErr = math.Inf(1)
		return r
	}
	n := 0
	for i, w := range want {
		if int64(got.V[i]) != w {
			n++
		}
	}
	r.MaxErr, r.Pass = float64(n), n == 0
	r.Note = fmt.Sprintf("%d of %d cells set; the reference's soft masks are at least %.3g from the threshold", got.Count(), len(want), margin)
	return r
}

func (p *parityRun) f32(name string) ([]float32, []int, error) { return f32(p.g, name) }

func (p *parityRun) qformer() ([]ParityResult, error) {
	want, _, err := p.f32("qformer.out")
	if err != nil {
		return nil, err
	}
	cfg, err := blip2.ParseConfig(p.meta.Configs["qformer"])
	if err != nil {
		return nil, err
	}
	icfg, err := imageproc.ParseConfig(p.meta.Configs["image_processor"])
	if err != nil {
		return nil, err
	}
	bert, err := tokenizer.DefaultBERT()
	if err != nil {
		return nil, err
	}
	w, err := p.load("qformer")
	if err != nil {
		return nil, err
	}
	defer w.Free(p.b)
	m, err := blip2.Load(p.b, cfg, w)
	if err != nil {
		return nil, err
	}
	y, err := pipeline.EncodeSubject(p.b, m, bert, icfg, "photo", p.photo, "dog")
	if err != nil {
		return nil, err
	}
	got, err := p.read(y)
	if err != nil {
		return nil, err
	}
	return []ParityResult{compare("subject embeddings [1, 16, 768]", got, want)}, nil
}

func (p *parityRun) text() ([]ParityResult, error) {
	want, _, err := p.f32("text.out")
	if err != nil {
		return nil, err
	}
	ctxv, cs, err := p.f32("text.ctx")
	if err != nil {
		return nil, err
	}
	ids64, err := p.g.Int64s("text.ids")
	if err != nil {
		return nil, err
	}
	ids := make([]int32, len(ids64))
	for i, v := range ids64 {
		ids[i] = int32(v)
	}
	begin, err := ctxBeginPos(p.meta)
	if err != nil {
		return nil, err
	}
	cfg, err := clip.ParseConfig(p.meta.Configs["text_encoder"])
	if err != nil {
		return nil, err
	}
	w, err := p.load("text_encoder")
	if err != nil {
		return nil, err
	}
	defer w.Free(p.b)
	m, err := clip.Load(p.b, cfg, w)
	if err != nil {
		return nil, err
	}
	c := p.b.FromF32("subject", ctxv, cs...)
	defer p.b.Free(c)
	y, err := m.Encode(p.b, [][]int32{ids}, c, []int{begin})
	if err != nil {
		return nil, err
	}
	got, err := p.read(y)
	if err != nil {
		return nil, err
	}
	return []ParityResult{compare("text embeddings [1, 77, 768]", got, want)}, nil
}

func (p *parityRun) unet() ([]ParityResult, error) {
	want, ws, err := p.f32("unet.out")
	if err != nil {
		return nil, err
	}
	lat2, ls, err := p.f32("unet.latents") // [2, C, H, W]: main, visual-only
	if err != nil {
		return nil, err
	}
	ctx3, c3, err := p.f32("unet.context") // [3, T, D]: uncond, cond main, cond visual-only
	if err != nil {
		return nil, err
	}
	ts, err := p.g.Int64s("unet.timestep")
	if err != nil {
		return nil, err
	}
	maskIn, err := p.g.Int64s("unet.mask_in")
	if err != nil {
		return nil, err
	}
	cfg, err := unet.ParseConfig(p.meta.Configs["unet"])
	if err != nil {
		return nil, err
	}
	begin, err := ctxBeginPos(p.meta)
	if err != nil {
		return nil, err
	}
	qcfg, err := blip2.ParseConfig(p.meta.Configs["qformer"])
	if err != nil {
		return nil, err
	}
	c, lat, seq, d := ls[1], ls[2], c3[1], c3[2]
	per, pl := seq*d, c*lat*lat
	ctxv := make([]float32, 0, 4*per)
	for _, k := range []int{0, 0, 1, 2} {
		ctxv = append(ctxv, ctx3[k*per:(k+1)*per]...)
	}
	sample := nchwToNHWC(append(append(append(append(make([]float32, 0, 4*pl), lat2[:pl]...), lat2[pl:]...), lat2[:pl]...), lat2[pl:]...), []int{4, c, lat, lat})

	w, err := p.load("unet")
	if err != nil {
		return nil, err
	}
	u, err := unet.Load(p.b, cfg, w)
	if err != nil {
		w.Free(p.b)
		return nil, err
	}
	defer u.Free(p.b)
	o := pipeline.DefaultOptions()
	o.Harmony.SwapStart = harmony.SwapStart{IsCall: true, Call: 1}
	hook, err := pipeline.NewHarmonyHook(p.b, &o, pipeline.HookLayout{
		Sites: u.Sites(lat, lat), Text: harmony.Layout{CtxBegin: begin, NumCtx: qcfg.NumQueryTokens},
		TextLen: seq, Processes: 2, CFG: true,
	})
	if err != nil {
		return nil, err
	}
	defer hook.Free()
	gh, gw := hook.Grid()
	prime := harmony.Mask{H: gh, W: gw, V: make([]uint8, gh*gw)}
	if len(maskIn) != gh*gw {
		return nil, fmt.Errorf("unet.mask_in has %d cells, the mask grid is %d×%d", len(maskIn), gh, gw)
	}
	for i, v := range maskIn {
		prime.V[i] = uint8(v)
	}
	if err := hook.Prime(prime, prime); err != nil {
		return nil, err
	}
	x := p.b.FromF32("sample", sample, 4, lat, lat, c)
	cx := p.b.FromF32("context", ctxv, 4, seq, d)
	defer p.b.Free(x, cx)
	if err := hook.Begin(1); err != nil {
		return nil, err
	}
	y, err := u.Forward(p.b, x, []float32{float32(ts[0])}, cx, hook)
	if err != nil {
		return nil, err
	}
	outShape := append([]int(nil), y.Shape...)
	got, err := p.read(y)
	if err != nil {
		return nil, err
	}
	if err := hook.End(p.ctx, 1); err != nil {
		return nil, err
	}
	res := []ParityResult{compare(fmt.Sprintf("noise prediction %v", ws), nhwcToNCHW(got, outShape), want)}
	margin := 0.0
	if m, err := p.g.Float32("unet.mask_margin"); err == nil && len(m) == 1 {
		margin = float64(m[0])
	}
	softM, softV := hook.SoftMasks()
	main, vis, _ := hook.Masks()
	for k, proc := range []string{"main", "vis"} {
		soft := []harmony.Map{softM[1], softV[1]}[k]
		ws, _, err := p.f32("unet.mask_soft_" + proc)
		if err != nil {
			return nil, err
		}
		res = append(res, compare(fmt.Sprintf("soft mask %s %d×%d", proc, gh, gw), soft.V, ws))
		wm, err := p.g.Int64s("unet.mask_" + proc)
		if err != nil {
			return nil, err
		}
		res = append(res, compareMask(fmt.Sprintf("mask %s %d×%d", proc, gh, gw), []harmony.Mask{main[1], vis[1]}[k], wm, margin))
	}
	return res, nil
}

func (p *parityRun) vae() ([]ParityResult, error) {
	z, zs, err := p.f32("vae.latents")
	if err != nil {
		return nil, err
	}
	sub, ss, err := p.f32("vae.subsample") // [3, n, n] at SubStart + k·SubStep
	if err != nil {
		return nil, err
	}
	pool, ps, err := p.f32("vae.pool8") // [3, H/8, W/8]
	if err != nil {
		return nil, err
	}
	st, err := p.g.Float32("vae.stats") // mean, std, min, max, max|·|, rms
	if err != nil {
		return nil, err
	}
	cfg, err := vae.ParseConfig(p.meta.Configs["vae"])
	if err != nil {
		return nil, err
	}
	w, err := p.load("vae")
	if err != nil {
		return nil, err
	}
	defer w.Free(p.b)
	d, err := vae.Load(p.b, cfg, w)
	if err != nil {
		return nil, err
	}
	x := p.b.FromF32("latents", nchwToNHWC(z, zs), zs[0], zs[2], zs[3], zs[1])
	defer p.b.Free(x)
	y, err := d.Decode(p.b, x)
	if err != nil {
		return nil, err
	}
	s := append([]int(nil), y.Shape...) // [1, H, W, 3]
	got, err := p.read(y)
	if err != nil {
		return nil, err
	}
	h, wd, ch := s[1], s[2], s[3]
	if ch != ss[0] || ch != ps[0] || h/vaeSubStep < ss[1]-1 || h/vaePool != ps[1] || wd/vaePool != ps[2] {
		return nil, fmt.Errorf("decoded %v does not fit the reference's subsample %v and block means %v", s, ss, ps)
	}
	at := func(c, y, x int) float64 { return float64(got[(y*wd+x)*ch+c]) }
	var gs, gp []float32
	for c := range ch {
		for i := range ss[1] {
			for j := range ss[2] {
				gs = append(gs, float32(at(c, vaeSubStart+i*vaeSubStep, vaeSubStart+j*vaeSubStep)))
			}
		}
	}
	for c := range ch {
		for by := range ps[1] {
			for bx := range ps[2] {
				var sum float64
				for y := range vaePool {
					for x := range vaePool {
						sum += at(c, by*vaePool+y, bx*vaePool+x)
					}
				}
				gp = append(gp, float32(sum/(vaePool*vaePool)))
			}
		}
	}
	var mean, sq, mn, mx, amax float64
	mn, mx = math.Inf(1), math.Inf(-1)
	for _, v := range got {
		f := float64(v)
		mean += f
		sq += f * f
		mn, mx, amax = min(mn, f), max(mx, f), max(amax, math.Abs(f))
	}
	n := float64(len(got))
	mean /= n
	std := math.Sqrt(max(sq/n-mean*mean, 0) * n / (n - 1))
	gstats := []float32{float32(mean), float32(std), float32(mn), float32(mx), float32(amax), float32(math.Sqrt(sq / n))}
	stats := compare("global mean, std, min, max, max|·|, rms", gstats, st)
	// Statistics are judged against the image's largest magnitude, as the
	// pixels are.
	if len(st) == 6 {
		stats.MaxRef, stats.Tol = float64(st[4]), FullParityRel*float64(st[4])
		stats.Pass = stats.MaxErr <= stats.Tol
	}
	return []ParityResult{
		compare(fmt.Sprintf("image %dx%d, every %dth pixel from (%d, %d)", h, wd, vaeSubStep, vaeSubStart, vaeSubStart), gs, sub),
		compare(fmt.Sprintf("image %dx%d, %d×%d block means", h, wd, vaePool, vaePool), gp, pool),
		stats,
	}, nil
}

// The VAE image's stored subsample (make_fullsize.py: SUB_START, SUB_STEP,
// POOL).
const (
	vaeSubStart = 3
	vaeSubStep  = 7
	vaePool     = 8
)

// ctxBeginPos is model_index.json's ctx_begin_pos (2 when absent).
func ctxBeginPos(meta *loader.Model) (int, error) {
	r := &stageRun{meta: meta}
	return r.ctxBeginPos()
}

// CheckSynthDir verifies that the weight files of the synthetic
// checkpoint in dir are the ones the goldens were made from (their SHA-256
// in the golden file's "synth_sha256" metadata), so that a change to the
// synthetic recipe reads as such rather than as a parity failure. A golden
// file without digests passes.
func CheckSynthDir(dir string, golden []byte) error {
	g, err := loader.ParseSafetensorsData(golden, "fullsize.safetensors")
	if err != nil {
		return err
	}
	js := g.Metadata["synth_sha256"]
	if js == "" {
		return nil
	}
	var want map[string]string
	if err := json.Unmarshal([]byte(js), &want); err != nil {
		return fmt.Errorf("bench: fullsize.safetensors: synth_sha256: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return fmt.Errorf("bench: synthetic checkpoint: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("bench: synthetic checkpoint: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want[name] {
			return fmt.Errorf("bench: synthetic checkpoint %s has SHA-256 %s, the goldens were made from %s: regenerate testdata/fullsize (testdata/gen/make_fullsize.py) after changing harmony synth", name, got, want[name])
		}
	}
	return nil
}
