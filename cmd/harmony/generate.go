// generate.go: `harmony generate`, subject-driven generation with Harmony
// (or plain BLIP-Diffusion) from a model folder, pack or URL — by default
// the bundled tiny demo model and demo photo, so it runs offline.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/harmony"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/www"
)

func init() {
	register(&command{name: "generate", summary: "generate pictures of the subject in a photo (Harmony or BLIP-Diffusion)", run: runGenerate})
}

// onOff is a flag that takes on/off (or true/false).
type onOff struct{ v *bool }

func (f onOff) String() string {
	if f.v == nil || !*f.v {
		return "off"
	}
	return "on"
}

func (f onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		*f.v = true
	case "off", "false", "0", "no":
		*f.v = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

func (f onOff) IsBoolFlag() bool { return true }

type generateFlags struct {
	model, image, class, sourceClass, prompt, negative string
	steps                                              int
	guidance                                           float64
	seed                                               uint64
	width, height                                      int
	scheduler, precision, latents, out, dump, outDir   string
	method                                             string
	promptReps                                         int
	orthoMode, swapMode, swapLayers, swapStart         string
	maskLevel, maskTokens, visualPrompt                string
	maskThreshold                                      float64
	previewEvery                                       int
	defaultLimits, quiet                               bool
	opts                                               pipeline.Options
}

func parseGenerate(args []string) (*generateFlags, error) {
	g := &generateFlags{opts: pipeline.DefaultOptions()}
	h := &g.opts.Harmony
	g.opts.Compare = true
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.StringVar(&g.model, "model", "", "model: a diffusers folder, a pack folder, or an http(s) URL of either (default: the bundled tiny demo model)")
	fs.StringVar(&g.image, "image", "", "photo of the subject (PNG, JPEG, WebP, GIF, BMP, TIFF; default: the demo photo)")
	fs.StringVar(&g.class, "class", "dog", "the subject's class to generate (target subject)")
	fs.StringVar(&g.sourceClass, "source-class", "", "the subject's class in the photo (default: --class)")
	fs.StringVar(&g.prompt, "prompt", "swimming underwater", "what the subject should be doing")
	fs.StringVar(&g.negative, "negative", "", "negative prompt")
	fs.IntVar(&g.steps, "steps", 50, "inference steps")
	fs.Float64Var(&g.guidance, "guidance", 7.5, "classifier-free guidance scale (> 1 for Harmony)")
	fs.Uint64Var(&g.seed, "seed", 0, "seed of the initial noise (engine/rng; the same picture natively and in the browser)")
	fs.IntVar(&g.width, "width", 0, "image width in pixels (default: the model's sample size × 8, 512 for BLIP-Diffusion)")
	fs.IntVar(&g.height, "height", 0, "image height in pixels (default: like --width)")
	fs.StringVar(&g.scheduler, "scheduler", "pndm", "scheduler: pndm (the model's) or ddim")
	fs.StringVar(&g.precision, "precision", "f32", "weights on the GPU: f32 (upcast) or f16 (half the memory; f32 arithmetic)")
	fs.StringVar(&g.latents, "latents", "", "safetensors file with a tensor \"latents\" [1, C, h, w] used as the initial noise")
	fs.StringVar(&g.out, "out", "", "write the result picture to this PNG file")
	fs.StringVar(&g.dump, "dump", "", "write latents, image and (Harmony) embeddings and masks to this safetensors file")
	fs.StringVar(&g.outDir, "out-dir", "", "write harmony.png, baseline.png, visual.png and mask.png into this folder")
	fs.StringVar(&g.method, "method", "harmony", "harmony or blipdiffusion")
	fs.IntVar(&g.promptReps, "prompt-reps", 20, "how often the pipeline repeats \"a {class} {prompt}\"")
	fs.Var(onOff{&h.Ortho}, "ortho", "orthogonal visual embedding: on or off")
	fs.StringVar(&g.orthoMode, "ortho-mode", "full", "orthogonalization: full, mean, or a number λ in [0, 1]")
	fs.Var(onOff{&h.ExcludeClass}, "ortho-exclude-class", "keep the class words out of the text basis: on or off")
	fs.Var(onOff{&h.Swap}, "swap", "self-attention swap from the visual-only process: on or off")
	fs.StringVar(&g.swapMode, "swap-mode", "kv", "swap mode: kv or map")
	fs.StringVar(&g.swapLayers, "swap-layers", "", "comma-separated self-attention layers (module prefixes) to swap (default: every up-block attn1)")
	fs.StringVar(&g.swapStart, "swap-start", "0.1", "first swapped UNet call: a fraction of the steps (0.1) or a call index (5)")
	fs.StringVar(&g.maskLevel, "mask-level", "", "UNet level of the subject mask grid (default: the coarsest level with attention)")
	fs.StringVar(&g.maskTokens, "mask-tokens", "visual", "mask tokens: visual or visual+class")
	fs.Float64Var(&g.maskThreshold, "mask-threshold", 0.3, "subject mask threshold τ (strict)")
	fs.StringVar(&g.visualPrompt, "visual-prompt", "a {class}", "prompt of the visual-only process: \"a {class}\" or \"a\"")
	fs.Var(onOff{&g.opts.Compare}, "compare", "also make the plain BLIP-Diffusion picture from the same latents: on or off")
	fs.BoolVar(&g.defaultLimits, "default-limits", false, "open the GPU with WebGPU's default limits (128 MiB bindings)")
	fs.BoolVar(&g.quiet, "quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("harmony generate: unexpected argument %q", fs.Arg(0))
	}
	bad := func(f, m string, a ...any) error {
		return fmt.Errorf("harmony generate: --%s: %s", f, fmt.Sprintf(m, a...))
	}
	o := &g.opts
	o.TargetClass, o.SourceClass = g.class, g.sourceClass
	o.Prompt, o.Negative = g.prompt, g.negative
	o.Steps, o.Guidance, o.Seed = g.steps, g.guidance, g.seed
	o.Width, o.Height = g.width, g.height
	o.Scheduler = g.scheduler
	o.PromptReps = g.promptReps
	o.Method = pipeline.Method(g.method)
	if o.Method != pipeline.MethodHarmony && o.Method != pipeline.MethodBLIPDiffusion {
		return nil, bad("method", "want harmony or blipdiffusion, got %q", g.method)
	}
	if g.precision != "f32" && g.precision != "f16" {
		return nil, bad("precision", "want f32 or f16, got %q", g.precision)
	}
	var err error
	if h.OrthoMode, err = harmony.ParseMode(g.orthoMode); err != nil {
		return nil, bad("ortho-mode", "%v", err)
	}
	switch g.swapMode {
	case "kv":
		h.SwapMode = tensor.SwapKV
	case "map":
		h.SwapMode = tensor.SwapMap
	default:
		return nil, bad("swap-mode", "want kv or map, got %q", g.swapMode)
	}
	if g.swapLayers != "" {
		for _, s := range strings.Split(g.swapLayers, ",") {
			if s = strings.TrimSpace(s); s != "" {
				h.SwapLayers = append(h.SwapLayers, s)
			}
		}
	}
	if h.SwapStart, err = harmony.ParseSwapStart(g.swapStart); err != nil {
		return nil, bad("swap-start", "%v", err)
	}
	if g.maskLevel != "" {
		lv, err := strconv.Atoi(g.maskLevel)
		if err != nil || lv < 0 {
			return nil, bad("mask-level", "want a level ≥ 0, got %q", g.maskLevel)
		}
		h.MaskLevel = &lv
	}
	h.MaskTokens = pipeline.MaskTokens(g.maskTokens)
	if h.MaskTokens != pipeline.MaskVisual && h.MaskTokens != pipeline.MaskVisualClass {
		return nil, bad("mask-tokens", "want visual or visual+class, got %q", g.maskTokens)
	}
	h.MaskThreshold = g.maskThreshold
	if g.visualPrompt != "a {class}" && g.visualPrompt != "a" {
		return nil, bad("visual-prompt", "want \"a {class}\" or \"a\", got %q", g.visualPrompt)
	}
	h.VisualPrompt = g.visualPrompt
	if g.steps < 1 {
		return nil, bad("steps", "want at least 1, got %d", g.steps)
	}
	if g.width < 0 || g.height < 0 {
		return nil, bad("width", "sizes must be positive")
	}
	return g, nil
}

func runGenerate(ctx context.Context, args []string) error {
	g, err := parseGenerate(args)
	if err != nil {
		return err
	}
	o := &g.opts
	if g.image == "" {
		o.Image, o.ImageName = www.DemoPhoto(), "demo photo"
	} else {
		if o.Image, err = os.ReadFile(g.image); err != nil {
			return fmt.Errorf("harmony generate: --image: %v", err)
		}
		o.ImageName = filepath.Base(g.image)
	}
	if g.latents != "" {
		f, err := loader.ReadSafetensorsFile(g.latents)
		if err != nil {
			return fmt.Errorf("harmony generate: --latents: %v", err)
		}
		if o.Latents, err = f.Float32("latents"); err != nil {
			return fmt.Errorf("harmony generate: --latents %s: %v", g.latents, err)
		}
	}

	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: g.defaultLimits})
	if err != nil {
		return err
	}
	defer dev.Close()
	b := kernels.New(dev)
	bar := newProgressBar(g.quiet)
	m, err := openModel(ctx, b, g.model, loader.Precision(g.precision), bar)
	if err != nil {
		return err
	}
	defer m.Close()
	if o.Width == 0 {
		o.Width = m.UNetConfig.SampleSize * m.LatentFactor
	}
	if o.Height == 0 {
		o.Height = o.Width
	}
	o.Progress = bar.step
	start := time.Now()
	res, err := pipeline.Generate(ctx, m, *o)
	bar.done()
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	fmt.Fprintf(os.Stderr, "generated %d×%d in %v (%d UNet calls of batch %d: %v; encode %v, decode %v)\n",
		res.Main.Image.W, res.Main.Image.H, time.Since(start).Round(time.Millisecond), res.Timings.Calls, res.Timings.Batch,
		res.Timings.Denoise.Round(time.Millisecond), res.Timings.Encode.Round(time.Millisecond), res.Timings.Decode.Round(time.Millisecond))
	if g.out == "" && g.outDir == "" && g.dump == "" {
		g.outDir = "out"
	}
	return writeOutputs(g, res)
}

// openModel loads the model named by loc (or the bundled demo) onto b.
func openModel(ctx context.Context, b tensor.Backend, loc string, p loader.Precision, bar *progressBar) (*pipeline.Model, error) {
	var src loader.Source
	if loc == "" {
		src = loader.NewFSSource(www.DemoModel(), "bundled demo model")
	} else {
		var err error
		if src, _, err = loader.OpenLocation(loc); err != nil {
			return nil, err
		}
	}
	m, _, err := pipeline.Load(ctx, src, b, &loader.Options{Precision: p, Progress: bar.load})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func writeOutputs(g *generateFlags, res *pipeline.Result) error {
	write := func(path string, im *pipeline.Image) error {
		if im == nil {
			return nil
		}
		data, err := im.PNG()
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("harmony generate: %v", err)
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
		return nil
	}
	if g.out != "" {
		if err := write(g.out, res.Main.Image); err != nil {
			return err
		}
	}
	if g.outDir != "" {
		if err := os.MkdirAll(g.outDir, 0o755); err != nil {
			return fmt.Errorf("harmony generate: --out-dir: %v", err)
		}
		name := "harmony.png"
		if g.opts.Method == pipeline.MethodBLIPDiffusion {
			name = "blipdiffusion.png"
		}
		if err := write(filepath.Join(g.outDir, name), res.Main.Image); err != nil {
			return err
		}
		if res.Baseline != nil {
			if err := write(filepath.Join(g.outDir, "baseline.png"), res.Baseline.Image); err != nil {
				return err
			}
		}
		if res.Visual != nil {
			if err := write(filepath.Join(g.outDir, "visual.png"), res.Visual.Image); err != nil {
				return err
			}
		}
		if err := write(filepath.Join(g.outDir, "mask.png"), res.MaskHeat); err != nil {
			return err
		}
	}
	if g.dump != "" {
		if err := pipeline.Dump(g.dump, res); err != nil {
			return fmt.Errorf("harmony generate: --dump: %v", err)
		}
		fmt.Fprintln(os.Stderr, "wrote", g.dump)
	}
	return nil
}
