// generate.go: `harmony generate`, subject-driven generation with Harmony
// (or the plain base model: BLIP-Diffusion, or ELITE with --base elite)
// from a model folder, pack or URL — by default the bundled tiny demo
// model (BLIP-Diffusion) and demo photo, so it runs offline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/www"
)

func init() {
	register(&command{name: "generate", summary: "generate pictures of the subject in a photo (Harmony or BLIP-Diffusion)", run: runGenerate})
}

// optionFlag is a pipeline option as a flag: the pipeline parses and
// checks the value (Options.Set), so the CLI and the JS API agree on every
// knob. The first refusal is kept for parseGenerate to return as is, since
// the flag package flattens a Value's error into its own text.
type optionFlag struct {
	o       *pipeline.Options
	info    pipeline.OptionInfo
	refused *error
}

func (f optionFlag) String() string {
	if f.o == nil {
		return "" // the flag package's zero value, for the help text
	}
	return f.o.Get(f.info.Name)
}

func (f optionFlag) Set(s string) error {
	err := f.o.Set(f.info.Name, s)
	if err != nil && *f.refused == nil {
		*f.refused = err
	}
	return err
}

// IsBoolFlag lets an on/off option stand alone (--swap means on).
func (f optionFlag) IsBoolFlag() bool { return f.info.OnOff }

// joinOnOff rewrites "--swap off" as "--swap=off" for the on/off options:
// the flag package reads a boolean flag's value only after "=", and would
// take "off" for the first positional argument. A flag's own value (the
// word after --prompt) and everything after the first argument that is no
// flag are left alone, as the flag package reads them.
func joinOnOff(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return append(out, args[i+1:]...)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if of, ok := f.Value.(optionFlag); ok && of.info.OnOff && i+1 < len(args) {
				if _, err := pipeline.ParseOnOff(args[i+1]); err == nil {
					out[len(out)-1] = a + "=" + args[i+1]
					i++
				}
			}
			continue
		}
		if i+1 < len(args) { // the flag's value
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

type generateFlags struct {
	model, image                          string
	mask, imageEncoder, mappers           string // ELITE
	precision, latents, out, dump, outDir string
	stats                                 string
	defaultLimits, quiet                  bool
	opts                                  pipeline.Options
}

// parseGenerate reads generate's command line; the pipeline options among
// it are checked by the pipeline (Set, then Validate), whose errors are
// returned unchanged.
func parseGenerate(args []string) (*generateFlags, error) {
	g := &generateFlags{opts: pipeline.DefaultOptions()}
	o := &g.opts
	// The CLI's defaults: the demo subject, both pictures, and the model's
	// own size.
	o.TargetClass, o.Prompt = "dog", "swimming underwater"
	o.Compare = true
	o.Width, o.Height = 0, 0
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: harmony generate [flags]\n\non/off flags take on or off (--swap off, --swap=off); alone they mean on\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&g.model, "model", "", "model: a diffusers folder, a pack folder, or an http(s) URL of either (default: the bundled tiny demo model)")
	fs.StringVar(&g.image, "image", "", "photo of the subject (PNG, JPEG, WebP, GIF, BMP, TIFF; default: the demo photo)")
	fs.StringVar(&g.mask, "mask", "", "ELITE: the subject's mask, an image of the photo's size; subject where any channel > 0 (default: the whole photo)")
	fs.StringVar(&g.imageEncoder, "image-encoder", "", "ELITE: the CLIP image encoder's folder or URL (default: the model's image_encoder/)")
	fs.StringVar(&g.mappers, "mappers", "", "ELITE: folder or URL with global_mapper.pt and local_mapper.pt (or under checkpoints/; default: the model folder)")
	fs.StringVar(&g.precision, "precision", "f32", "weights on the GPU: f32 (upcast) or f16 (half the memory; f32 arithmetic)")
	fs.StringVar(&g.latents, "latents", "", "safetensors file with a tensor \"latents\" [1, C, h, w] used as the initial noise")
	fs.StringVar(&g.out, "out", "", "write the result picture to this PNG file")
	fs.StringVar(&g.dump, "dump", "", "write latents, image and (Harmony) embeddings and masks to this safetensors file")
	fs.StringVar(&g.outDir, "out-dir", "", "write harmony.png, baseline.png, visual.png and mask.png into this folder")
	var refused error
	for _, info := range pipeline.OptionList() {
		if info.Name == "preview-every" {
			continue // previews are pictures; the progress bar shows none
		}
		fs.Var(optionFlag{o: o, info: info, refused: &refused}, info.Name, info.Usage)
	}
	fs.StringVar(&g.stats, "stats", "", "write the run's timings and peak GPU memory as JSON to this file")
	fs.BoolVar(&g.defaultLimits, "default-limits", false, "open the GPU with WebGPU's default limits (128 MiB bindings)")
	fs.BoolVar(&g.quiet, "quiet", false, "no progress bar")
	if err := parseFlags(fs, joinOnOff(fs, args)); err != nil {
		if refused != nil && !errors.Is(err, errHelp) {
			return nil, refused
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("harmony generate: unexpected argument %q", fs.Arg(0))
	}
	if o.Base == pipeline.BaseELITE {
		eliteDefaults(fs, o)
	}
	if g.precision != "f32" && g.precision != "f16" {
		return nil, usageErrorf("harmony generate: --precision must be f32 or f16, got %q", g.precision)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Base == pipeline.BaseELITE {
		if g.model == "" {
			return nil, usageErrorf("harmony generate: --base elite needs --model (an ELITE folder or URL); the bundled demo is BLIP-Diffusion")
		}
	} else if g.mask != "" || g.imageEncoder != "" || g.mappers != "" {
		return nil, usageErrorf("harmony generate: --mask, --image-encoder and --mappers are ELITE's; add --base elite")
	}
	return g, nil
}

func runGenerate(ctx context.Context, args []string) error {
	g, err := parseGenerate(args)
	if err != nil {
		return err
	}
	o := &g.opts
	if g.out == "" && g.outDir == "" && g.dump == "" {
		g.outDir = "out"
	}
	if err := checkOutputs(g); err != nil {
		return err
	}
	if g.image == "" {
		o.Image, o.ImageName = www.DemoPhoto(), "demo photo"
	} else {
		if o.Image, err = os.ReadFile(g.image); err != nil {
			return fmt.Errorf("harmony generate: --image: %v", err)
		}
		if len(o.Image) == 0 {
			return fmt.Errorf("harmony generate: --image %s: the file is empty", g.image)
		}
		o.ImageName = filepath.Base(g.image)
	}
	if g.mask != "" {
		if o.Mask, err = os.ReadFile(g.mask); err != nil {
			return fmt.Errorf("harmony generate: --mask: %v", err)
		}
		o.MaskName = filepath.Base(g.mask)
	}
	if g.latents != "" {
		f, err := loader.ReadSafetensorsFile(g.latents)
		if err != nil {
			return fmt.Errorf("harmony generate: --latents: %v", err)
		}
		if o.Latents, err = f.Float32("latents"); err != nil {
			return fmt.Errorf("harmony generate: --latents %s: %v", g.latents, err)
		}
		for i, v := range o.Latents {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("harmony generate: --latents %s: tensor \"latents\" element %d is %v; the initial noise must be finite", g.latents, i, v)
			}
		}
	}

	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: g.defaultLimits})
	if err != nil {
		return err
	}
	defer dev.Close()
	b := kernels.New(dev)
	bar := newProgressBar(g.quiet)
	loadStart := time.Now()
	var m *pipeline.Model
	if o.Base == pipeline.BaseELITE {
		m, err = openELITE(ctx, b, g, bar)
	} else {
		m, err = openModel(ctx, b, g.model, loader.Precision(g.precision), bar)
	}
	if err != nil {
		return err
	}
	loadTime := time.Since(loadStart)
	defer m.Close()
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
	if g.stats != "" {
		if err := writeGenerateStats(g, dev, res, loadTime, time.Since(start)); err != nil {
			return err
		}
	}
	return writeOutputs(g, res)
}

// openModel loads the model named by loc (or the bundled demo) onto b.
func openModel(ctx context.Context, b tensor.Backend, loc string, p loader.Precision, bar *progressBar) (*pipeline.Model, error) {
	var src loader.Source
	if loc == "" {
		src = loader.NewFSSource(www.DemoModel(), "bundled demo model")
	} else {
		src2, file, err := loader.OpenLocation(loc)
		if err != nil {
			return nil, err
		}
		if file != "" {
			// Loading the folder around a file would load a model the user
			// did not name (or fail on a model_index.json never given).
			return nil, fmt.Errorf("harmony generate: --model %s is a file; expected a model folder (a diffusers folder with model_index.json, or a pack folder with manifest.json) or its URL", loc)
		}
		src = src2
	}
	m, _, err := pipeline.Load(ctx, src, b, &loader.Options{Precision: p, Progress: bar.load})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// openFolder opens a folder or URL given to flag name.
func openFolder(name, loc string) (loader.Source, error) {
	src, file, err := loader.OpenLocation(loc)
	if err != nil {
		return nil, err
	}
	if file != "" {
		return nil, fmt.Errorf("harmony generate: --%s %s is a file; expected a folder or its URL", name, loc)
	}
	return src, nil
}

// openELITE loads an ELITE model: --model's Stable Diffusion folder, with
// --image-encoder and --mappers when given.
func openELITE(ctx context.Context, b tensor.Backend, g *generateFlags, bar *progressBar) (*pipeline.Model, error) {
	var s pipeline.EliteSources
	var err error
	if s.Model, err = openFolder("model", g.model); err != nil {
		return nil, err
	}
	if g.imageEncoder != "" {
		if s.ImageEncoder, err = openFolder("image-encoder", g.imageEncoder); err != nil {
			return nil, err
		}
	}
	if g.mappers != "" {
		if s.Mappers, err = openFolder("mappers", g.mappers); err != nil {
			return nil, err
		}
	}
	m, _, err := pipeline.LoadELITE(ctx, s, b, &loader.Options{Precision: loader.Precision(g.precision), Progress: bar.load})
	return m, err
}

// eliteDefaults gives the options no flag set ELITE's defaults (LMS, 100
// steps, guidance 5, visual prompt "a S", no class word, an example prompt)
// in place of BLIP-Diffusion's, whatever order the flags came in.
func eliteDefaults(fs *flag.FlagSet, o *pipeline.Options) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	d := pipeline.DefaultOptionsFor(pipeline.BaseELITE)
	d.Prompt = "a S wearing a red hat"
	for _, name := range []string{"steps", "guidance", "scheduler", "visual-prompt", "prompt", "class"} {
		if !set[name] {
			_ = o.Set(name, d.Get(name)) // ELITE's own defaults always parse
		}
	}
}
