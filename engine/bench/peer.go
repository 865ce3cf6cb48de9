// Package bench holds in-tree benchmarks of the engine.
//
// peer.go times one UNet2DConditionModel call the way the onnxruntime peer
// harness times onnxruntime's session.run() on an ONNX export of the same
// UNet, so the two engines can be compared side by side: the same
// weights (the fp32 diffusers folder), the same inputs (golden_io.safetensors:
// sample [B,C,H,W] NCHW, timestep, encoder_hidden_states, out_sample), 2
// warm-up calls then N timed calls, median and min; one call runs from CPU
// input tensors in the reference's layout to a CPU output tensor, so the
// NCHW↔NHWC permutes, the uploads and the read-back are inside the timed
// window. The same code runs natively (cmd/harmony peer) and in the browser
// or Node + Dawn (wasm benchUNet).
package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"harmony/engine/dryrun"
	"harmony/engine/gpu"
	"harmony/engine/models/nn"
	"harmony/engine/models/unet"
	"harmony/engine/tensor"
	"harmony/loader"
)

// PeerInput is one UNet call's inputs and reference output, in the
// reference's NCHW layout.
type PeerInput struct {
	Sample       []float32 // [B, C, H, W]
	SampleShape  []int
	Timestep     float32
	Context      []float32 // [B, T, D]
	ContextShape []int
	Want         []float32 // out_sample [B, Cout, H, W]; nil when there is no reference
	WantShape    []int
}

// ReadPeerInput parses a golden_io.safetensors file (the peer harness's
// inputs): sample, timestep, encoder_hidden_states and out_sample.
func ReadPeerInput(data []byte, name string) (*PeerInput, error) {
	f, err := loader.ParseSafetensorsData(data, name)
	if err != nil {
		return nil, err
	}
	in := &PeerInput{}
	if in.Sample, in.SampleShape, err = f32(f, "sample"); err != nil {
		return nil, err
	}
	if in.Context, in.ContextShape, err = f32(f, "encoder_hidden_states"); err != nil {
		return nil, err
	}
	ts, err := f.Int64s("timestep")
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	if len(ts) != 1 {
		return nil, fmt.Errorf("bench: %s: timestep has %d values, want 1", name, len(ts))
	}
	in.Timestep = float32(ts[0])
	if f.Find("out_sample") != nil {
		if in.Want, in.WantShape, err = f32(f, "out_sample"); err != nil {
			return nil, err
		}
	}
	if len(in.SampleShape) != 4 || len(in.ContextShape) != 3 || in.ContextShape[0] != in.SampleShape[0] {
		return nil, fmt.Errorf("bench: %s: sample %v and encoder_hidden_states %v are not [B,C,H,W] and [B,T,D]", name, in.SampleShape, in.ContextShape)
	}
	return in, nil
}

func f32(f *loader.SafetensorsData, name string) ([]float32, []int, error) {
	ti := f.Find(name)
	if ti == nil {
		return nil, nil, fmt.Errorf("bench: %s: no tensor %q", f.Name, name)
	}
	v, err := f.Float32(name)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	return v, append([]int(nil), ti.Shape...), nil
}

// LoadPeerUNet loads the unet component of the diffusers folder at src onto
// b in f32 (the weights the ONNX export was made from, bit for bit).
func LoadPeerUNet(ctx context.Context, src loader.Source, b tensor.Backend) (*unet.UNet, error) {
	m, err := loader.LoadDiffusers(ctx, src, b, &loader.Options{Precision: loader.PrecisionF32, Components: []string{"unet"}})
	if err != nil {
		return nil, err
	}
	cfg, err := unet.ParseConfig(m.Configs["unet"])
	if err != nil {
		m.Free(b)
		return nil, err
	}
	u, err := unet.Load(b, cfg, m.Weights["unet"])
	if err != nil {
		m.Free(b)
		return nil, err
	}
	return u, nil
}

// GFLOP counts one call's multiply-adds × 2 of conv, linear and attention
// (the peer harness's count) by running the model's shapes on the dry-run
// backend.
func GFLOP(cfg *unet.Config, in *PeerInput) (float64, error) {
	b := dryrun.New()
	u, err := unet.Load(b, cfg, nn.Placeholders(b, "unet", unet.Tensors(cfg), nil))
	if err != nil {
		return 0, err
	}
	s := in.SampleShape
	x := b.New("sample", tensor.F32, s[0], s[2], s[3], s[1])
	c := b.New("context", tensor.F32, in.ContextShape...)
	y, err := u.Forward(b, x, []float32{in.Timestep}, c, nil)
	if err != nil {
		return 0, err
	}
	b.Free(y)
	return float64(b.Flops) / 1e9, nil
}

// Rule is the timing rule.
type Rule struct {
	Warmup int // untimed calls first (2 in the peer harness)
	Runs   int // timed calls (7)
}

// Hook runs outside the timed window: phase "start" before the first timed
// call, "before"/"after" around every call (i counts warm-ups too) and "end"
// after the last. What "after" returns is kept per call (the harness's
// foreign-CPU-load record); what "end" returns covers the timed section.
type Hook func(phase string, i int) (any, error)

// PeerResult is one engine's figures on one call, in the peer harness's JSON
// names where it has them.
type PeerResult struct {
	Adapter     string `json:"adapter"`
	Backend     string `json:"backend"`
	Fallback    bool   `json:"fallback_adapter"`
	Precision   string `json:"precision"`
	InputShapes any    `json:"input_shapes"`

	WarmupMS []float64 `json:"warmup_ms"`
	TimesMS  []float64 `json:"times_ms"`
	MedianMS float64   `json:"median_ms"`
	MinMS    float64   `json:"min_ms"`
	MaxMS    float64   `json:"max_ms"`
	MeanMS   float64   `json:"mean_ms"`

	GFLOPPerCall   float64 `json:"gflop_per_call"`
	GFLOPSAtMedian float64 `json:"gflops_at_median"`
	GFLOPSAtMin    float64 `json:"gflops_at_min"`

	// Where a timed call's time goes, medians over the timed calls: Go-side
	// recording of the dispatches (Forward returns once everything is
	// encoded; full batches are submitted on the way) and the final
	// read-back (submit, wait for the GPU, map, copy).
	RecordMS float64 `json:"record_ms_median"`
	ReadMS   float64 `json:"read_ms_median"`

	// Device work of one timed call.
	Dispatches int64 `json:"dispatches_per_call"`
	Submits    int64 `json:"submits_per_call"`
	BindGroups int64 `json:"bind_groups_created_per_call"`
	Pipelines  int   `json:"pipelines"`

	Check *Diff `json:"check_vs_torch_golden,omitempty"`

	PerCall []any `json:"per_call,omitempty"`
	Timing  any   `json:"machine_during_timing,omitempty"`

	Output []float32 `json:"-"` // the last call's out_sample, NCHW
}

// Diff compares an output with the reference.
type Diff struct {
	MaxAbs    float64 `json:"max_abs"`
	MaxRef    float64 `json:"max_ref"`
	Relative  float64 `json:"max_abs_over_max_ref"`
	RMS       float64 `json:"rms"`
	Nonfinite int     `json:"nonfinite"`
	N         int     `json:"n"`
}

// Compare is the peer harness's compare(): max |got−want| over finite
// values, relative to max |want|.
func Compare(got, want []float32) (*Diff, error) {
	if len(got) != len(want) {
		return nil, fmt.Errorf("bench: output has %d values, the reference %d", len(got), len(want))
	}
	d := &Diff{N: len(want)}
	var sum float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			d.Nonfinite++
			continue
		}
		e := math.Abs(g - float64(w))
		d.MaxAbs = max(d.MaxAbs, e)
		d.MaxRef = max(d.MaxRef, math.Abs(float64(w)))
		sum += e * e
	}
	d.RMS = math.Sqrt(sum / float64(len(want)))
	if d.MaxRef > 0 {
		d.Relative = d.MaxAbs / d.MaxRef
	}
	return d, nil
}

// RunPeerUNet times u on in under the rule. dev may be nil (no device
// counters), hook may be nil.
func RunPeerUNet(ctx context.Context, b tensor.Backend, dev *gpu.Device, u *unet.UNet, in *PeerInput, rule Rule, hook Hook) (*PeerResult, error) {
	if hook == nil {
		hook = func(string, int) (any, error) { return nil, nil }
	}
	res := &PeerResult{Precision: "f32", InputShapes: map[string]any{
		"sample": in.SampleShape, "timestep": []int{1}, "encoder_hidden_states": in.ContextShape}}
	if dev != nil {
		i := dev.Info()
		res.Adapter, res.Backend, res.Fallback = i.Adapter, i.Backend, i.Fallback
	}
	gf, err := GFLOP(u.Config, in)
	if err != nil {
		return nil, err
	}
	res.GFLOPPerCall = gf

	var recs, reads []float64
	var s0 gpu.Stats
	for i := range rule.Warmup + rule.Runs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timed := i >= rule.Warmup
		if i == rule.Warmup {
			if _, err := hook("start", -1); err != nil {
				return nil, err
			}
		}
		if _, err := hook("before", i); err != nil {
			return nil, err
		}
		if timed && dev != nil && i == rule.Warmup {
			s0 = dev.Stats()
		}
		t0 := time.Now()
		out, rec, err := call(ctx, b, u, in)
		dt := time.Since(t0)
		if err != nil {
			return nil, err
		}
		if timed && dev != nil && i == rule.Warmup {
			s1 := dev.Stats()
			res.Dispatches, res.Submits, res.BindGroups = s1.Dispatches-s0.Dispatches, s1.Submits-s0.Submits, s1.BindGroups-s0.BindGroups
			res.Pipelines = s1.Pipelines
		}
		r, err := hook("after", i)
		if err != nil {
			return nil, err
		}
		ms := float64(dt.Microseconds()) / 1e3
		if timed {
			res.TimesMS = append(res.TimesMS, ms)
			res.PerCall = append(res.PerCall, r)
			recs = append(recs, float64(rec.Microseconds())/1e3)
			reads = append(reads, float64((dt-rec).Microseconds())/1e3)
		} else {
			res.WarmupMS = append(res.WarmupMS, ms)
		}
		res.Output = out
	}
	if res.Timing, err = hook("end", -1); err != nil {
		return nil, err
	}
	st := sortStats(res.TimesMS)
	res.MedianMS, res.MinMS, res.MaxMS, res.MeanMS = st.median, st.min, st.max, st.mean
	res.RecordMS, res.ReadMS = sortStats(recs).median, sortStats(reads).median
	if res.MedianMS > 0 {
		res.GFLOPSAtMedian = round3(gf / (res.MedianMS / 1e3))
		res.GFLOPSAtMin = round3(gf / (res.MinMS / 1e3))
	}
	if in.Want != nil && res.Output != nil {
		if res.Check, err = Compare(res.Output, in.Want); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// call is one timed call: permute and upload the inputs, run the UNet,
// read back and permute the output. rec is the time until Forward returned.
func call(ctx context.Context, b tensor.Backend, u *unet.UNet, in *PeerInput) (out []float32, rec time.Duration, err error) {
	t0 := time.Now()
	s := in.SampleShape
	x := b.FromF32("sample", nchwToNHWC(in.Sample, s), s[0], s[2], s[3], s[1])
	c := b.FromF32("context", in.Context, in.ContextShape...)
	y, err := u.Forward(b, x, []float32{in.Timestep}, c, nil)
	rec = time.Since(t0)
	var v []float32
	if err == nil {
		v, err = b.Read(ctx, y)
	}
	b.Free(x, c, y)
	if err != nil {
		return nil, 0, fmt.Errorf("bench: unet call: %w", err)
	}
	return nhwcToNCHW(v, y.Shape), rec, nil
}

// nchwToNHWC permutes a [B, C, H, W] array into [B, H, W, C].
func nchwToNHWC(v []float32, s []int) []float32 {
	nb, c, h, w := s[0], s[1], s[2], s[3]
	out := make([]float32, len(v))
	for bi := range nb {
		for ci := range c {
			src := v[(bi*c+ci)*h*w:]
			for p := range h * w {
				out[(bi*h*w+p)*c+ci] = src[p]
			}
		}
	}
	return out
}

// nhwcToNCHW permutes a [B, H, W, C] array into [B, C, H, W].
func nhwcToNCHW(v []float32, s []int) []float32 {
	nb, h, w, c := s[0], s[1], s[2], s[3]
	out := make([]float32, len(v))
	for bi := range nb {
		for ci := range c {
			dst := out[(bi*c+ci)*h*w:]
			for p := range h * w {
				dst[p] = v[(bi*h*w+p)*c+ci]
			}
		}
	}
	return out
}

type stats struct{ median, min, max, mean float64 }

func sortStats(ms []float64) stats {
	if len(ms) == 0 {
		return stats{}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{median: round3(med), min: round3(s[0]), max: round3(s[len(s)-1]), mean: round3(sum / float64(len(s)))}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
