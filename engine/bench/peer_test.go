package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/unet"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestPermutesRoundTrip(t *testing.T) {
	for _, s := range [][]int{{1, 1, 1, 1}, {2, 4, 3, 5}, {2, 3, 1, 7}} {
		n := s[0] * s[1] * s[2] * s[3]
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i)
		}
		nhwc := nchwToNHWC(v, s)
		// Element (b, c, y, x) of NCHW sits at ((b·H+y)·W+x)·C+c in NHWC.
		b, c, y, x := s[0]-1, s[1]-1, s[2]-1, 0
		if got, want := nhwc[((b*s[2]+y)*s[3]+x)*s[1]+c], v[((b*s[1]+c)*s[2]+y)*s[3]+x]; got != want {
			t.Errorf("%v: NHWC element %v, want %v", s, got, want)
		}
		back := nhwcToNCHW(nhwc, []int{s[0], s[2], s[3], s[1]})
		if !slices.Equal(back, v) {
			t.Errorf("%v: round trip differs", s)
		}
	}
}

func TestCompare(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		name      string
		got, want []float32
		maxAbs    float64
		rel       float64
		nonfinite int
		err       bool
	}{
		{"equal", []float32{1, -2}, []float32{1, -2}, 0, 0, 0, false},
		{"off", []float32{1.5, -2}, []float32{1, -2}, 0.5, 0.25, 0, false},
		{"nan skipped", []float32{nan, -2}, []float32{1, -2.5}, 0.5, 0.2, 1, false},
		{"length", []float32{1}, []float32{1, 2}, 0, 0, 0, true},
	} {
		d, err := Compare(c.got, c.want)
		if (err != nil) != c.err {
			t.Fatalf("%s: err %v", c.name, err)
		}
		if err != nil {
			continue
		}
		if d.MaxAbs != c.maxAbs || math.Abs(d.Relative-c.rel) > 1e-12 || d.Nonfinite != c.nonfinite {
			t.Errorf("%s: %+v, want max %v rel %v nonfinite %d", c.name, d, c.maxAbs, c.rel, c.nonfinite)
		}
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// goldenIO writes a golden_io.safetensors like the harness's.
func goldenIO(t *testing.T, in *PeerInput, withOut bool, tsLen int) []byte {
	t.Helper()
	ts := make([]byte, 8*tsLen)
	for i := range tsLen {
		binary.LittleEndian.PutUint64(ts[8*i:], uint64(in.Timestep))
	}
	tensors := []loader.SafetensorsTensor{
		{Name: "sample", DType: loader.F32, Shape: in.SampleShape, Data: f32Bytes(in.Sample)},
		{Name: "timestep", DType: loader.I64, Shape: []int{tsLen}, Data: ts},
		{Name: "encoder_hidden_states", DType: loader.F32, Shape: in.ContextShape, Data: f32Bytes(in.Context)},
	}
	if withOut {
		tensors = append(tensors, loader.SafetensorsTensor{Name: "out_sample", DType: loader.F32, Shape: in.SampleShape, Data: f32Bytes(in.Sample)})
	}
	var buf bytes.Buffer
	if err := loader.WriteSafetensors(&buf, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// smallConfig is a two-level UNet small enough for the CPU reference.
const smallConfig = `{"block_out_channels": [8, 16], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1, "norm_num_groups": 4,
 "cross_attention_dim": 12, "attention_head_dim": 2, "in_channels": 4, "out_channels": 4, "sample_size": 8}`

func TestReadPeerInput(t *testing.T) {
	cfg, err := unet.ParseConfig([]byte(smallConfig))
	if err != nil {
		t.Fatal(err)
	}
	in := SyntheticInput(cfg, 2, 4, 6, 5, 1)
	got, err := ReadPeerInput(goldenIO(t, in, true, 1), "io")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Sample, in.Sample) || !slices.Equal(got.SampleShape, []int{2, 4, 4, 6}) || got.Timestep != 500 ||
		!slices.Equal(got.ContextShape, []int{2, 5, 12}) || !slices.Equal(got.Want, in.Sample) {
		t.Errorf("read back %v %v %v %v", got.SampleShape, got.Timestep, got.ContextShape, len(got.Want))
	}
	if got, err := ReadPeerInput(goldenIO(t, in, false, 1), "io"); err != nil || got.Want != nil {
		t.Errorf("without out_sample: %v, want %v", err, got)
	}
	if _, err := ReadPeerInput(goldenIO(t, in, false, 2), "io"); err == nil {
		t.Error("two timesteps accepted")
	}
	if _, err := ReadPeerInput([]byte("nonsense"), "io"); err == nil {
		t.Error("garbage accepted")
	}
}

// TestRunPeerUNet runs the timing loop on the CPU reference: hook phases in
// order, one time per timed call, and an output that the reference run of
// the same UNet reproduces exactly.
func TestRunPeerUNet(t *testing.T) {
	cfg, err := unet.ParseConfig([]byte(smallConfig))
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New()
	u, err := SyntheticUNet(b, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	in := SyntheticInput(cfg, 2, 4, 6, 5, 4)
	var phases []string
	hook := func(phase string, i int) (any, error) {
		phases = append(phases, phase)
		if phase == "after" {
			return i, nil
		}
		return nil, nil
	}
	res, err := RunPeerUNet(context.Background(), b, nil, u, in, Rule{Warmup: 1, Runs: 3}, hook)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"before", "after", "start", "before", "after", "before", "after", "before", "after", "end"}
	if !slices.Equal(phases, want) {
		t.Errorf("hook phases %v, want %v", phases, want)
	}
	if len(res.WarmupMS) != 1 || len(res.TimesMS) != 3 || res.MinMS > res.MedianMS || res.MedianMS > res.MaxMS {
		t.Errorf("times: warm-up %v, timed %v, median %v min %v max %v", res.WarmupMS, res.TimesMS, res.MedianMS, res.MinMS, res.MaxMS)
	}
	if !slices.Equal(res.PerCall, []any{1, 2, 3}) {
		t.Errorf("per-call records %v, want the timed calls' [1 2 3]", res.PerCall)
	}
	if res.Check != nil {
		t.Error("a check without a reference output")
	}
	// The same call done by hand, in NHWC.
	x := b.FromF32("x", nchwToNHWC(in.Sample, in.SampleShape), 2, 4, 6, 4)
	c := b.FromF32("c", in.Context, in.ContextShape...)
	y, err := u.Forward(b, x, []float32{in.Timestep}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Read(context.Background(), y)
	if err != nil {
		t.Fatal(err)
	}
	in.Want = nhwcToNCHW(v, y.Shape)
	res, err = RunPeerUNet(context.Background(), b, nil, u, in, Rule{Runs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Check == nil || res.Check.MaxAbs != 0 || res.Check.N != len(v) {
		t.Errorf("check against the hand-made call: %+v", res.Check)
	}
	if res.GFLOPPerCall <= 0 {
		t.Errorf("GFLOP per call %v", res.GFLOPPerCall)
	}
}

// TestGFLOP checks the dry-run count against the harness's figures: 0.937
// GFLOP for the tiny UNet (its export_info.json: 468,733,952 MACs) and
// 18.1 for the medium one.
func TestGFLOP(t *testing.T) {
	med, err := unet.ParseConfig(MediumConfig)
	if err != nil {
		t.Fatal(err)
	}
	g, err := GFLOP(med, &PeerInput{SampleShape: []int{2, 4, 32, 32}, ContextShape: []int{2, 77, 768}, Timestep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(g-18.1) > 0.05 {
		t.Errorf("medium: %.3f GFLOP, want 18.1", g)
	}
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := unet.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	g, err = GFLOP(tiny, &PeerInput{SampleShape: []int{2, 4, 16, 24}, ContextShape: []int{2, 77, 32}, Timestep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * 468733952 / 1e9; g != want {
		t.Errorf("tiny: %.9f GFLOP, want %.9f", g, want)
	}
}
