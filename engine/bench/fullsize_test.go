//go:build !js

package bench

import (
	"context"
	"slices"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/loader/golden"
	"harmony/www"
)

// TestRunStagesTiny runs every full-size stage on the tiny demo model in
// the default-limits mode: the code of the full-size run, at test size.
func TestRunStagesTiny(t *testing.T) {
	dev := gputest.Open(t, gpu.Options{DefaultLimits: true})
	res, err := RunStages(context.Background(), dev, StageOptions{
		Source: loader.NewFSSource(www.DemoModel(), "demo"),
		Latent: 8,
		Photo:  www.DemoPhoto(),
		Log:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"qformer": {1, 16, 32}, "text": {2, 77, 32},
		"unet-b2": {2, 8, 8, 4}, "unet-b4": {4, 8, 8, 4}, "vae": {1, 16, 16, 3},
	}
	if len(res) != len(want) {
		t.Fatalf("%d stages ran, want %d", len(res), len(want))
	}
	for _, r := range res {
		if !slices.Equal(r.Output, want[r.Stage]) {
			t.Errorf("%s: output %v, want %v", r.Stage, r.Output, want[r.Stage])
		}
		if r.Weights <= 0 || r.Activations <= 0 || r.GFLOP <= 0 || r.PeakAllocated < uint64(r.Weights) || r.PeakInUse > r.PeakAllocated {
			t.Errorf("%s: implausible figures %+v", r.Stage, r)
		}
		// Within the target, so nothing a stage leaves behind (the
		// UNet's joined weights once were) lifts the next one.
		t.Logf("%s: peak allocated %d, in use %d, weights %d + activations %d, target %d", r.Stage, r.PeakAllocated, r.PeakInUse, r.Weights, r.Activations, r.Target)
		if r.PeakAllocated > uint64(r.Target) {
			t.Errorf("%s: peak GPU allocation %d over the target %d", r.Stage, r.PeakAllocated, r.Target)
		}
		if r.OutputRMS <= 0 || r.OutputRMS > 100 {
			t.Errorf("%s: output RMS %g", r.Stage, r.OutputRMS)
		}
		if r.Host.GoHeap == 0 || r.Host.GoSys < r.Host.GoHeap {
			t.Errorf("%s: host figures %+v", r.Stage, r.Host)
		}
	}
	if _, err := RunStages(context.Background(), dev, StageOptions{Source: loader.NewFSSource(www.DemoModel(), "demo"), Stages: []string{"unet-b3"}}); err == nil {
		t.Error("an unknown stage was accepted")
	}
}

// TestRunELITEStagesTiny runs every ELITE stage on a pack of the tiny
// ELITE model in the default-limits mode: the code of the full-size run,
// at test size.
func TestRunELITEStagesTiny(t *testing.T) {
	ctx := context.Background()
	pack := t.TempDir()
	if _, err := loader.WriteELITEPack(ctx, loader.ELITESources{Base: loader.NewDirSource(golden.Path(t, "elite-tiny"))}, pack, nil); err != nil {
		t.Fatal(err)
	}
	dev := gputest.Open(t, gpu.Options{DefaultLimits: true})
	res, err := RunELITEStages(ctx, dev, StageOptions{Source: loader.NewDirSource(pack), Latent: 8, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"image-encoder": {2, 257, 16}, "mappers": {1, 256, 32}, "text": {2, 77, 32},
		"unet-b2": {2, 8, 8, 4}, "unet-b4": {4, 8, 8, 4}, "vae": {1, 16, 16, 3},
	}
	if len(res) != len(want) {
		t.Fatalf("%d stages ran, want %d", len(res), len(want))
	}
	for _, r := range res {
		if !slices.Equal(r.Output, want[r.Stage]) {
			t.Errorf("%s: output %v, want %v", r.Stage, r.Output, want[r.Stage])
		}
		t.Logf("%s: peak allocated %d, weights %d + activations %d, target %d", r.Stage, r.PeakAllocated, r.Weights, r.Activations, r.Target)
		if r.Weights <= 0 || r.GFLOP <= 0 || r.PeakAllocated < uint64(r.Weights) || r.OutputRMS <= 0 || r.OutputRMS > 100 {
			t.Errorf("%s: implausible figures %+v", r.Stage, r)
		}
	}
	if _, err := RunELITEStages(ctx, dev, StageOptions{Source: loader.NewDirSource(pack), Stages: []string{"qformer"}}); err == nil {
		t.Error("a BLIP-Diffusion stage was accepted")
	}
}
