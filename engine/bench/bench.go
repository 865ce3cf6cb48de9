// bench.go is `harmony bench`: per-kernel throughput at
// Stable Diffusion shapes, one UNet step at tiny, medium and full size,
// the whole tiny pipeline, load throughput, and optionally the full-size
// stages of fullsize.go, gathered into one JSON report.
//
// Timing rule (the one the onnxruntime peer harness uses, so figures
// compare): warm-up calls first (they compile the pipelines), then the
// median of the timed calls; one call runs from inputs already on the
// device to its output read back (or a device sync for the kernels).
// Each figure also carries CPU time: on a CPU adapter sharing a loaded
// machine, work per CPU-second varies much less than per wall second.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"harmony/engine/bench/cputime"
	"harmony/engine/dryrun"
	"harmony/engine/gpu"
	"harmony/engine/kernels"
	"harmony/engine/models/unet"
	"harmony/engine/pipeline"
	"harmony/engine/rng"
	"harmony/engine/tensor"
	"harmony/loader"
)

// Schema names the report format; a change that breaks readers bumps it.
const Schema = "harmony-bench/1"

// Parts are the benchmark groups Run knows, in the order they run.
var Parts = []string{"kernels", "unet", "pipeline", "load", "stages"}

// DefaultParts need no files: everything but the full-size stages.
var DefaultParts = []string{"kernels", "unet", "pipeline", "load"}

// UNetSizes are the UNet step sizes.
var UNetSizes = []string{"tiny", "medium", "full"}

// Options select what Run measures.
type Options struct {
	Parts     []string      // of Parts (nil: DefaultParts)
	UNetSizes []string      // of UNetSizes (nil: tiny and medium, plus full with Synth)
	Demo      loader.Source // the bundled tiny demo pack (tiny UNet, pipeline, load)
	Photo     []byte        // subject photo for the pipeline and stages
	Synth     loader.Source // a synthetic full-size pack (harmony synth), or nil
	Stages    []string      // of StageNames (ELITEStageNames with ELITE) for the stages part (nil: all)
	// ELITE runs ELITE's stages on Synth (harmony synth --base elite).
	ELITE bool
	// Reps overrides the timed repetitions of every figure (0: per-figure
	// defaults: 7 for the kernels and the tiny UNet as the peer rule has,
	// fewer for the slow ones).
	Reps int
	// Small shrinks the kernel shapes and the medium UNet's latents (smoke
	// tests of the report, not figures).
	Small bool
	Log   func(format string, a ...any)
}

// Report is the JSON report.
type Report struct {
	Schema   string           `json:"schema"`
	Started  string           `json:"started"` // RFC 3339
	Host     HostInfo         `json:"host"`
	Device   DeviceInfo       `json:"device"`
	Kernels  []KernelResult   `json:"kernels,omitempty"`
	UNet     []UNetResult     `json:"unet,omitempty"`
	Pipeline *PipelineResult  `json:"pipeline,omitempty"`
	Load     []LoadResult     `json:"load,omitempty"`
	Stages   []StageResult    `json:"stages,omitempty"`
	Seconds  float64          `json:"seconds"`         // the whole run
	LoadAvg  [2][3]float64    `json:"load_avg"`        // /proc/loadavg at start and end (Linux)
	Notes    []string         `json:"notes,omitempty"` // caveats found while running
	Failures []PartialFailure `json:"failures,omitempty"`
}

// PartialFailure is a part that failed while the others ran.
type PartialFailure struct {
	Part  string `json:"part"`
	Error string `json:"error"`
}

// HostInfo describes the machine.
type HostInfo struct {
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
}

// DeviceInfo describes the adapter.
type DeviceInfo struct {
	Adapter       string `json:"adapter"`
	Backend       string `json:"backend"`
	Fallback      bool   `json:"software_adapter"`
	ShaderF16     bool   `json:"shader_f16"`
	DefaultLimits bool   `json:"default_limits"`
	MaxBinding    uint64 `json:"max_storage_binding_bytes"`
	MaxBuffer     uint64 `json:"max_buffer_bytes"`
}

// Timing is a repeated measurement.
type Timing struct {
	Warmup   int     `json:"warmup"`
	Reps     int     `json:"reps"`
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
	CPUMS    float64 `json:"cpu_ms"` // median process CPU time per call (0 where unknown)
}

// KernelResult is one op at one shape.
type KernelResult struct {
	Op      string  `json:"op"`
	Shape   string  `json:"shape"`
	Weights string  `json:"weights,omitempty"` // f16 or f32 weights
	GFLOP   float64 `json:"gflop,omitempty"`   // per call
	GFLOPS  float64 `json:"gflop_per_s,omitempty"`
	GFLOPC  float64 `json:"gflop_per_cpu_s,omitempty"`
	GB      float64 `json:"gb,omitempty"` // bytes moved per call (bandwidth-bound ops)
	GBPS    float64 `json:"gb_per_s,omitempty"`
	Timing
}

// UNetResult is one UNet call.
type UNetResult struct {
	Size    string  `json:"size"`
	Params  int64   `json:"params"`
	Batch   int     `json:"batch"`
	Latent  [2]int  `json:"latent"` // height, width
	GFLOP   float64 `json:"gflop"`
	GFLOPS  float64 `json:"gflop_per_s"`
	GFLOPC  float64 `json:"gflop_per_cpu_s,omitempty"`
	Weights string  `json:"weights"` // what the weights were: the demo pack, random, the synthetic pack
	Timing
}

// PipelineResult is one whole generation with the tiny model.
type PipelineResult struct {
	Model     string  `json:"model"`
	Method    string  `json:"method"`
	Steps     int     `json:"steps"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	UNetCalls int     `json:"unet_calls"`
	Batch     int     `json:"batch"`
	EncodeMS  float64 `json:"encode_ms"` // of the median run
	DenoiseMS float64 `json:"denoise_ms"`
	DecodeMS  float64 `json:"decode_ms"`
	Timing
}

// LoadResult is loading one pack onto the device.
type LoadResult struct {
	Model  string  `json:"model"`
	Bytes  int64   `json:"bytes"` // shard bytes read
	MBPS   float64 `json:"mb_per_s"`
	Source string  `json:"source"` // "memory" (embedded) or "disk"
	Timing
}

// Run measures what opt selects on dev.
func Run(ctx context.Context, dev *gpu.Device, opt Options) (*Report, error) {
	start := time.Now()
	info := dev.Info()
	r := &Report{
		Schema:  Schema,
		Started: start.UTC().Format(time.RFC3339),
		Host:    HostInfo{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()},
		Device: DeviceInfo{Adapter: info.Adapter, Backend: info.Backend, Fallback: info.Fallback, ShaderF16: info.ShaderF16,
			DefaultLimits: info.DefaultMode, MaxBinding: info.Limits.MaxStorageBufferBindingSize, MaxBuffer: info.Limits.MaxBufferSize},
	}
	r.LoadAvg[0] = loadAvg()
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	parts := opt.Parts
	if parts == nil {
		parts = DefaultParts
	}
	for _, p := range parts {
		if !slices.Contains(Parts, p) {
			return nil, fmt.Errorf("bench: no part %q (have %s)", p, strings.Join(Parts, ", "))
		}
	}
	if slices.Contains(parts, "stages") && opt.Synth == nil {
		return nil, fmt.Errorf("bench: the stages part needs a synthetic pack (harmony synth)")
	}
	sizes := opt.UNetSizes
	if sizes == nil {
		sizes = []string{"tiny", "medium"}
		if opt.Synth != nil {
			sizes = append(sizes, "full")
		}
	}
	for _, s := range sizes {
		if !slices.Contains(UNetSizes, s) {
			return nil, fmt.Errorf("bench: no UNet size %q (have %s)", s, strings.Join(UNetSizes, ", "))
		}
		if s == "full" && opt.Synth == nil {
			return nil, fmt.Errorf("bench: the full-size UNet needs a synthetic pack (harmony synth)")
		}
	}
	b := kernels.New(dev)
	fail := func(part string, err error) {
		opt.Log("%s: %v", part, err)
		r.Failures = append(r.Failures, PartialFailure{Part: part, Error: err.Error()})
	}
	for _, part := range Parts {
		if !slices.Contains(parts, part) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		opt.Log("%s …", part)
		switch part {
		case "kernels":
			ks, err := benchKernels(ctx, b, opt)
			r.Kernels = ks
			if err != nil {
				fail(part, err)
			}
		case "unet":
			for _, s := range UNetSizes {
				if !slices.Contains(sizes, s) {
					continue
				}
				u, err := benchUNet(ctx, b, s, opt)
				if err != nil {
					fail(part+" "+s, err)
					continue
				}
				r.UNet = append(r.UNet, *u)
			}
		case "pipeline":
			p, err := benchPipeline(ctx, b, opt)
			if err != nil {
				fail(part, err)
				continue
			}
			r.Pipeline = p
		case "load":
			ls, err := benchLoad(ctx, b, opt)
			r.Load = ls
			if err != nil {
				fail(part, err)
			}
		case "stages":
			run := RunStages
			if opt.ELITE {
				run = RunELITEStages
			}
			st, err := run(ctx, dev, StageOptions{Source: opt.Synth, Photo: opt.Photo, Log: opt.Log, Stages: opt.Stages})
			r.Stages = st
			if err != nil {
				fail(part, err)
			}
			if !info.DefaultMode {
				r.Notes = append(r.Notes, "the stages ran with the adapter's limits, not the WebGPU default limits")
			}
		}
		if err := dev.Trim(); err != nil { // idle buffers of one part are not the next part's
			return r, err
		}
	}
	r.Seconds = time.Since(start).Seconds()
	r.LoadAvg[1] = loadAvg()
	return r, nil
}

// measure runs call warmup times untimed, then reps times timed.
func measure(ctx context.Context, warmup, reps int, call func() error) (Timing, error) {
	t := Timing{Warmup: warmup, Reps: reps}
	for range warmup {
		if err := call(); err != nil {
			return t, err
		}
	}
	var wall, cpu []float64
	for range reps {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		c0, t0 := cputime.Process(), time.Now()
		if err := call(); err != nil {
			return t, err
		}
		wall = append(wall, float64(time.Since(t0).Microseconds())/1e3)
		cpu = append(cpu, float64((cputime.Process()-c0).Microseconds())/1e3)
	}
	t.MedianMS, t.MinMS, t.MaxMS = median(wall), slices.Min(wall), slices.Max(wall)
	t.CPUMS = median(cpu)
	return t, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func reps(opt Options, def int) int {
	if opt.Reps > 0 {
		return opt.Reps
	}
	return def
}

// warmups is def, or none in Small mode.
func warmups(opt Options, def int) int {
	if opt.Small {
		return 0
	}
	return def
}

// perSecond is work per second of t's median (0 for no time).
func perSecond(work, ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	return work / (ms / 1e3)
}

// benchUNet times one UNet call.
func benchUNet(ctx context.Context, b *kernels.Backend, size string, opt Options) (*UNetResult, error) {
	var (
		cfg        *unet.Config
		w          *tensor.Weights
		h, wd      int
		warm, nrep int
		err        error
	)
	res := &UNetResult{Size: size, Batch: 2}
	switch size {
	case "tiny", "full":
		src := opt.Demo
		res.Weights, h, wd, warm, nrep = "bundled demo pack (the golden tiny UNet's config)", 16, 24, warmups(opt, 2), reps(opt, 7)
		if size == "full" {
			src = opt.Synth
			res.Weights, warm, nrep = "synthetic full-size pack", 0, reps(opt, 1)
		}
		lm, err := loader.Load(ctx, src, b, &loader.Options{Components: []string{"unet"}, Shapes: pipeline.ExpectedShapes})
		if err != nil {
			return nil, err
		}
		w = lm.Weights["unet"]
		if cfg, err = unet.ParseConfig(lm.Configs["unet"]); err != nil {
			w.Free(b)
			return nil, err
		}
		if size == "full" {
			h, wd = cfg.SampleSize, cfg.SampleSize
		}
	case "medium":
		ch := MediumUNetChannels
		res.Weights, h, wd, warm, nrep = "random, SD-1.5 layout at channels 64/128/256/256", 32, 32, 1, reps(opt, 3)
		if opt.Small {
			ch, h, wd, warm = []int{32, 32, 64, 64}, 8, 8, 0
			res.Weights = "random, SD-1.5 layout at channels 32/32/64/64 (small)"
		}
		if cfg, err = unet.ParseConfig(UNetConfigJSON(ch)); err != nil {
			return nil, err
		}
		w = RandomWeights(b, "unet", unet.Tensors(cfg), loader.PrecisionF16)
	}
	defer w.Free(b)
	if err := b.Err(); err != nil {
		return nil, err
	}
	for _, name := range w.Names() {
		t, _ := w.Get(name)
		res.Params += int64(t.Numel())
	}
	res.Latent = [2]int{h, wd}
	d := cfg.CrossDim[0]
	sample := rng.Normal(5, 2*h*wd*cfg.InChannels)
	ctxv := rng.Normal(6, 2*77*d)
	call := func(be tensor.Backend, w *tensor.Weights) (*tensor.Tensor, error) {
		u, err := unet.Load(be, cfg, w)
		if err != nil {
			return nil, err
		}
		x := be.FromF32("sample", sample, 2, h, wd, cfg.InChannels)
		c := be.FromF32("context", ctxv, 2, 77, d)
		defer be.Free(x, c)
		return u.Forward(be, x, []float32{875}, c, nil)
	}
	// FLOPs from the dry run of the same call.
	db := dryrun.New()
	out, err := call(db, dryWeights(db, "unet", unet.Tensors(cfg)))
	if err != nil {
		return nil, err
	}
	db.Free(out)
	res.GFLOP = float64(db.Flops) / 1e9
	opt.Log("unet %s: %d params, batch 2, %d×%d latents, %.1f GFLOP", size, res.Params, h, wd, res.GFLOP)
	res.Timing, err = measure(ctx, warm, nrep, func() error {
		out, err := call(b, w)
		if err != nil {
			return err
		}
		defer b.Free(out)
		_, err = b.Read(ctx, out)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.GFLOPS = perSecond(res.GFLOP, res.MedianMS)
	res.GFLOPC = perSecond(res.GFLOP, res.CPUMS)
	return res, nil
}

// RandomWeights puts a component's weights with synth's values on b, in
// the storage types of precision p (shapes as the model's shape table).
func RandomWeights(b tensor.Backend, component string, shapes map[string][]int, p loader.Precision) *tensor.Weights {
	w := tensor.NewWeights(component)
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	vals := make([]float32, chunkElems)
	raw := make([]byte, 4*chunkElems)
	for _, n := range names {
		s := shapes[n]
		dt := loader.StorageType(p, n, s)
		t := b.NewWeight(component+"."+n, dt, s...)
		w.Put(n, t)
		v := NewValues(component, n, s)
		total := tensor.Numel(s)
		for off := 0; off < total; off += chunkElems {
			k := min(chunkElems, total-off)
			v.Fill(vals[:k])
			b.Upload(t, int64(off*dt.Size()), encode(raw, vals[:k], dt))
		}
	}
	return w
}

// encode packs values as f32 or f16 bytes into raw.
func encode(raw []byte, v []float32, dt tensor.DType) []byte {
	if dt == tensor.F16 {
		out := raw[:2*len(v)]
		for i, f := range v {
			h := f16Bits(f)
			out[2*i], out[2*i+1] = byte(h), byte(h>>8)
		}
		return out
	}
	out := raw[:4*len(v)]
	for i, f := range v {
		putF32(out[4*i:], f)
	}
	return out
}

// benchPipeline times whole generations with the tiny demo model.
func benchPipeline(ctx context.Context, b *kernels.Backend, opt Options) (*PipelineResult, error) {
	m, _, err := pipeline.Load(ctx, opt.Demo, b, &loader.Options{Shapes: pipeline.ExpectedShapes})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	o := pipeline.DefaultOptions()
	o.Steps, o.Width, o.Height = 8, 48, 32
	if opt.Small {
		o.Steps = 1
	}
	o.Image, o.ImageName = opt.Photo, "photo"
	o.TargetClass = "dog"
	o.Prompt = "swimming underwater"
	res := &PipelineResult{Model: "bundled demo pack", Method: string(o.Method), Steps: o.Steps, Width: o.Width, Height: o.Height}
	var runs []pipeline.Timings
	warm := warmups(opt, 1)
	res.Timing, err = measure(ctx, warm, reps(opt, 3), func() error {
		out, err := pipeline.Generate(ctx, m, o)
		if err != nil {
			return err
		}
		runs = append(runs, out.Timings)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The stage split of the timed run closest to the median.
	runs = runs[warm:]
	ms := func(t pipeline.Timings) float64 { return float64(t.Total.Microseconds()) / 1e3 }
	best := runs[0]
	for _, t := range runs[1:] {
		if math.Abs(ms(t)-res.MedianMS) < math.Abs(ms(best)-res.MedianMS) {
			best = t
		}
	}
	res.UNetCalls, res.Batch = best.Calls, best.Batch
	res.EncodeMS = float64(best.Encode.Microseconds()) / 1e3
	res.DenoiseMS = float64(best.Denoise.Microseconds()) / 1e3
	res.DecodeMS = float64(best.Decode.Microseconds()) / 1e3
	return res, nil
}

// benchLoad times loading the demo pack (from memory: conversion and
// upload) and the synthetic pack (from disk) onto the device.
func benchLoad(ctx context.Context, b *kernels.Backend, opt Options) ([]LoadResult, error) {
	var out []LoadResult
	for _, c := range []struct {
		name   string
		src    loader.Source
		where  string
		warm   int
		nreps  int
		skipIf bool
	}{
		{"bundled demo pack", opt.Demo, "memory", warmups(opt, 1), reps(opt, 5), false},
		{"synthetic full-size pack", opt.Synth, "disk", 0, reps(opt, 1), opt.Synth == nil},
	} {
		if c.skipIf {
			continue
		}
		lr := LoadResult{Model: c.name, Source: c.where}
		var err error
		lr.Timing, err = measure(ctx, c.warm, c.nreps, func() error {
			var bytes int64
			lm, err := loader.Load(ctx, c.src, b, &loader.Options{Progress: func(p loader.Progress) { bytes = p.BytesTotal }})
			if err != nil {
				return err
			}
			err = b.Sync(ctx)
			lm.Free(b)
			lr.Bytes = bytes
			return err
		})
		if err != nil {
			return out, err
		}
		lr.MBPS = perSecond(float64(lr.Bytes)/1e6, lr.MedianMS)
		out = append(out, lr)
	}
	return out, nil
}

// loadAvg reads /proc/loadavg (zeros elsewhere).
func loadAvg() [3]float64 {
	var l [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	fmt.Sscan(string(data), &l[0], &l[1], &l[2])
	return l
}
