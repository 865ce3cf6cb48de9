// goldens.go holds the tiny pipeline's golden comparisons over the
// test-data folder (loader/refdata): the golden call's options, the
// Harmony runs of harmony/summary.json, and the checks of a result against
// golden/g_pipeline.safetensors and harmony/runs/*.safetensors. The
// pipeline tests and `harmony selftest` run the same checks.
package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/refdata"
)

// GoldenCheck is one comparison of a result with a golden tensor.
type GoldenCheck struct {
	What   string  `json:"what"`
	MaxAbs float64 `json:"max_abs"` // max |got − ref| (uint8 images: max difference; masks: differing values)
	MaxRef float64 `json:"max_ref"` // max |ref| (uint8 images: values differing)
	Tol    float64 `json:"tolerance"`
	Err    error   `json:"-"`
}

// goldenChecks collects the checks of one result.
type goldenChecks []GoldenCheck

// close compares got with want: max|got − want| ≤ rel·max|want| + abs.
func (c *goldenChecks) close(what string, got, want []float32, rel, abs float64) {
	d := refdata.Compare(got, want)
	g := GoldenCheck{What: what, MaxAbs: d.MaxAbs, MaxRef: d.MaxRef, Tol: rel*d.MaxRef + abs}
	if len(got) != len(want) {
		g.Err = fmt.Errorf("%s: %d values, want %d", what, len(got), len(want))
	} else if !d.Within(rel, abs) {
		g.Err = fmt.Errorf("%s: %v exceeds %.3g·max|ref| + %.3g (got %v, want %v at %d)", what, d, rel, abs, got[d.At], want[d.At], d.At)
	}
	*c = append(*c, g)
}

// u8 compares uint8 images: no value off by more than 1, at most 1 % off.
func (c *goldenChecks) u8(what string, got []uint8, want []int64) {
	g := GoldenCheck{What: what, Tol: 1}
	if len(got) != len(want) {
		g.Err = fmt.Errorf("%s: %d values, want %d", what, len(got), len(want))
		*c = append(*c, g)
		return
	}
	diff, maxd := 0, 0
	for i, v := range want {
		d := int(got[i]) - int(v)
		if d < 0 {
			d = -d
		}
		if d != 0 {
			diff++
		}
		maxd = max(maxd, d)
	}
	g.MaxAbs, g.MaxRef = float64(maxd), float64(diff)
	if maxd > 1 || diff > len(want)/100 {
		g.Err = fmt.Errorf("%s: %d of %d values differ, max by %d (allowed: 1 %%, by 1)", what, diff, len(want), maxd)
	}
	*c = append(*c, g)
}

// fail records a check that could not be made.
func (c *goldenChecks) fail(what string, err error) {
	*c = append(*c, GoldenCheck{What: what, Err: err})
}

// goldenFile reads a safetensors file below the test-data folder dir.
func goldenFile(dir string, parts ...string) (*loader.SafetensorsData, error) {
	return loader.ReadSafetensorsFile(filepath.Join(append([]string{dir}, parts...)...))
}

// GoldenOptions are the golden pipeline call's arguments (the
// reference's g_pipeline run: 8 steps at 48×32 from its initial latents)
// from the test-data folder dir.
func GoldenOptions(dir string) (Options, error) {
	img, err := os.ReadFile(filepath.Join(dir, "inputs", "reference_96x64.png"))
	if err != nil {
		return Options{}, fmt.Errorf("pipeline: golden options: %w", err)
	}
	g, err := goldenFile(dir, "golden", "g_pipeline.safetensors")
	if err != nil {
		return Options{}, err
	}
	lat, err := g.Float32("pipe.init_latents")
	if err != nil {
		return Options{}, err
	}
	o := DefaultOptions()
	o.Image, o.ImageName = img, "reference_96x64.png"
	o.SourceClass, o.TargetClass = "dog", "dog"
	o.Prompt = "swimming underwater"
	o.Negative = "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate"
	o.Steps, o.Guidance, o.Width, o.Height = 8, 7.5, 48, 32
	o.Latents = lat
	return o, nil
}

// CheckGoldenPlain compares a plain BLIP-Diffusion run of GoldenOptions
// with g_pipeline: final latents within latRel·max|ref|, the float image
// within max(latRel, 1e-4), the uint8 image (u8 rule) and the timesteps.
func CheckGoldenPlain(dir string, res *Result, latRel float64) []GoldenCheck {
	var c goldenChecks
	g, err := goldenFile(dir, "golden", "g_pipeline.safetensors")
	if err != nil {
		c.fail("g_pipeline", err)
		return c
	}
	lat, err1 := g.Float32("pipe.latents_out")
	img, err2 := g.Float32("pipe.image_float")
	u8, err3 := g.Int64s("pipe.image_uint8")
	if err := firstErr(err1, err2, err3); err != nil {
		c.fail("g_pipeline", err)
		return c
	}
	c.close("final latents", res.Main.Latents, tail(lat, len(res.Main.Latents)), latRel, 0)
	c.close("image float", res.Main.Image.Float, img, max(latRel, 1e-4), 0)
	c.u8("uint8 image", res.Main.Image.Pix, u8)
	ts := GoldenCheck{What: "timesteps"}
	if want := []float64{875, 750, 750, 625, 500, 375, 250, 125, 0}; !slices.Equal(res.Timesteps, want) {
		ts.Err = fmt.Errorf("timesteps %v, want %v", res.Timesteps, want)
	}
	return append(c, ts)
}

// CheckGoldenF16 compares an f16-weights run with the fp32 goldens: final
// latents within rel·max|ref| (the reference's own fp16-vs-fp32 gap is
// ~2e-3).
func CheckGoldenF16(dir string, res *Result, rel float64) []GoldenCheck {
	var c goldenChecks
	g, err := goldenFile(dir, "golden", "g_pipeline.safetensors")
	if err == nil {
		var lat []float32
		if lat, err = g.Float32("pipe.latents_out"); err == nil {
			c.close("f16 final latents", res.Main.Latents, tail(lat, len(res.Main.Latents)), rel, 0)
		}
	}
	if err != nil {
		c.fail("g_pipeline", err)
	}
	return c
}

// GoldenRun is one run of harmony/summary.json.
type GoldenRun struct {
	Name    string `json:"-"`
	Options struct {
		Ortho         bool            `json:"ortho"`
		OrthoMode     json.RawMessage `json:"ortho_mode"`
		ExcludeClass  bool            `json:"ortho_exclude_class"`
		Swap          bool            `json:"swap"`
		SwapMode      string          `json:"swap_mode"`
		SwapStart     json.RawMessage `json:"swap_start"`
		SwapLayers    string          `json:"swap_layers"`
		MaskTokens    string          `json:"mask_tokens"`
		MaskLevel     *int            `json:"mask_level"`
		MaskThreshold float64         `json:"mask_threshold"`
		VisualPrompt  string          `json:"visual_prompt"`
	} `json:"options"`
	PromptReps int `json:"prompt_reps"`
}

// GoldenRuns reads harmony/summary.json below dir: its runs by name, in
// name order.
func GoldenRuns(dir string) ([]GoldenRun, error) {
	data, err := os.ReadFile(filepath.Join(dir, "harmony", "summary.json"))
	if err != nil {
		return nil, fmt.Errorf("pipeline: golden runs: %w", err)
	}
	var s struct {
		Runs map[string]GoldenRun `json:"runs"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("pipeline: golden runs: harmony/summary.json: %w", err)
	}
	var out []GoldenRun
	for name, r := range s.Runs {
		r.Name = name
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GoldenRunOptions turns a golden run's options into engine options on top
// of GoldenOptions (through the same parsers the CLI uses).
func GoldenRunOptions(dir string, run GoldenRun) (Options, error) {
	o, err := GoldenOptions(dir)
	if err != nil {
		return o, err
	}
	o.Method = MethodHarmony
	o.PromptReps = run.PromptReps
	h := &o.Harmony
	so := run.Options
	h.Ortho, h.ExcludeClass, h.Swap = so.Ortho, so.ExcludeClass, so.Swap
	mode := string(so.OrthoMode)
	var ms string
	if json.Unmarshal(so.OrthoMode, &ms) == nil {
		mode = ms
	}
	if h.OrthoMode, err = harmony.ParseMode(mode); err != nil {
		return o, err
	}
	h.SwapMode = tensor.SwapKV
	if so.SwapMode == "map" {
		h.SwapMode = tensor.SwapMap
	}
	if h.SwapStart, err = harmony.ParseSwapStart(string(so.SwapStart)); err != nil {
		return o, err
	}
	if so.SwapLayers != "" && so.SwapLayers != "decoder" {
		h.SwapLayers = []string{so.SwapLayers}
	}
	h.MaskTokens = MaskTokens(so.MaskTokens)
	h.MaskLevel = so.MaskLevel
	h.MaskThreshold = so.MaskThreshold
	h.VisualPrompt = so.VisualPrompt
	return o, nil
}

// CheckGoldenRun compares one generation with harmony/runs/<name>: the
// masks of every call identical, latents and images within 1e-4·max|ref|,
// uint8 images by the u8 rule, and the orchestrated conditional embedding
// within 1e-6·max|ref| + 1e-7.
func CheckGoldenRun(dir string, run GoldenRun, res *Result) []GoldenCheck {
	var c goldenChecks
	name := run.Name
	g, err := goldenFile(dir, "harmony", "runs", name+".safetensors")
	if err != nil {
		c.fail(name, err)
		return c
	}
	f32 := func(k string) []float32 {
		v, e := g.Float32(k)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	ints := func(k string) []int64 {
		v, e := g.Int64s(k)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	calls := len(res.Timesteps)
	if run.Options.Swap {
		for _, k := range []struct {
			tensor string
			got    []harmony.Mask
		}{{"mask_main", res.MasksMain}, {"mask_vis", res.MasksVisual}, {"mask_used_main", res.MasksUsedMain}} {
			want, got := ints(k.tensor), maskValues(k.got)
			mc := GoldenCheck{What: name + " " + k.tensor}
			switch {
			case len(want) != len(got):
				mc.Err = fmt.Errorf("%s %s: %d values, want %d", name, k.tensor, len(got), len(want))
			case calls > 0:
				per := len(want) / calls
				for i := 0; i < calls; i++ {
					if !slices.Equal(want[i*per:(i+1)*per], got[i*per:(i+1)*per]) {
						mc.Err = fmt.Errorf("%s %s differs at call %d", name, k.tensor, i)
						break
					}
				}
			}
			c = append(c, mc)
		}
		if res.Visual == nil {
			c.fail(name+" visual", fmt.Errorf("%s: no visual-only result", name))
		} else {
			c.close(name+" visual latents", res.Visual.Latents, tail(f32("latents_vis_out"), len(res.Visual.Latents)), 1e-4, 0)
			c.close(name+" visual image", res.Visual.Image.Float, f32("image_vis_float"), 1e-4, 0)
			c.u8(name+" visual uint8", res.Visual.Image.Pix, ints("image_vis_uint8"))
		}
	}
	c.close(name+" main latents", res.Main.Latents, tail(f32("latents_main_out"), len(res.Main.Latents)), 1e-4, 0)
	c.close(name+" main image", res.Main.Image.Float, f32("image_main_float"), 1e-4, 0)
	c.u8(name+" main uint8", res.Main.Image.Pix, ints("image_main_uint8"))
	te := f32("text_embeddings")
	// Batch order [uncond-main, uncond-visual, cond-main, cond-visual]: the
	// main conditional embedding is the first of the second half.
	D, half := len(res.EmbeddingOrtho), len(te)/2
	if half+D <= len(te) {
		c.close(name+" cond-main embedding", res.EmbeddingOrtho, te[half:half+D], 1e-6, 1e-7)
	} else {
		c.fail(name+" cond-main embedding", fmt.Errorf("%s: text_embeddings has %d values, the result's embedding %d", name, len(te), D))
	}
	if err != nil {
		c.fail(name, err)
	}
	return c
}

// tail is the last n values of v (all of v when shorter): the goldens keep
// every latent of a batch, the result the main process's.
func tail(v []float32, n int) []float32 {
	if n > len(v) {
		return v
	}
	return v[len(v)-n:]
}

func maskValues(ms []harmony.Mask) []int64 {
	var out []int64
	for _, m := range ms {
		for _, v := range m.V {
			out = append(out, int64(v))
		}
	}
	return out
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
