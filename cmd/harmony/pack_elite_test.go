// pack_elite_test.go: "harmony pack --base elite" makes one pack of the
// tiny ELITE folder that loads back as an ELITE model, and refuses ELITE
// flags without --base elite and a folder that lacks the image encoder.

//go:build !js

package main

import (
	"context"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestPackELITE(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	if err := runPack(ctx, []string{"--base", "elite", "--model", golden.Path(t, "elite-tiny"), "--out", out, "-q"}); err != nil {
		t.Fatal(err)
	}
	b := cpu.New()
	m, err := loader.LoadELITE(ctx, loader.ELITESources{Base: loader.NewDirSource(out)}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"unet", "vae", "text_encoder", "image_encoder", "global_mapper", "local_mapper"} {
		if m.Weights[c] == nil || len(m.Weights[c].Names()) == 0 {
			t.Errorf("%s: not in the pack", c)
		}
	}
	m.Free(b)
	if err := runPack(ctx, []string{"--model", golden.Path(t, "elite-tiny"), "--mappers", out, "--out", t.TempDir(), "-q"}); err == nil || !strings.Contains(err.Error(), "--base elite") {
		t.Errorf("--mappers without --base elite: err = %v", err)
	}
	err = runPack(ctx, []string{"--base", "elite", "--model", golden.Path(t, "blipdiffusion-tiny"), "--out", t.TempDir(), "-q"})
	if err == nil || !strings.Contains(err.Error(), "image_encoder/config.json") {
		t.Errorf("a folder without image_encoder/: err = %v", err)
	}
}
