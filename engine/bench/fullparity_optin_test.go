//go:build optin

// fullparity_optin_test.go: the full-size parity test (opt-in).
package bench

import (
	"context"
	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/www"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFullParity compares the engine at full size, in f32 and in the
// WebGPU default-limits mode (128 MiB bindings), with the reference's
// outputs in testdata/fullsize. Opt-in (build tag optin): it needs the 3.1 GB synthetic
// checkpoint and, on lavapipe, most of the time of the full-size stages
// (BENCHMARKS.md: about 11 minutes on an idle 2-core machine; far longer
// on a loaded one).
//
//	go test -tags optin ./engine/bench -run TestFullParity -timeout 60m -v
//
// It writes the checkpoint into a temporary folder (half a minute), or
// reads the one `harmony synth --out DIR --pack none` wrote when
// HARMONY_SYNTH_DIR=DIR is set. HARMONY_FULLSIZE_CHECKS=unet,vae runs a
// subset of qformer, text, unet, vae.
func TestFullParity(t *testing.T) {
	golden, err := os.ReadFile("../../testdata/fullsize/fullsize.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	photo, err := os.ReadFile("../../testdata/inputs/reference_96x64.png")
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("HARMONY_SYNTH_DIR")
	if dir == "" {
		dir = t.TempDir()
		s, err := Plan()
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := s.Write(context.Background(), dir, WriteOptions{Tokenizer: www.DemoModel()}); err != nil {
			t.Fatal(err)
		}
		t.Logf("synthetic checkpoint written in %v", time.Since(t0).Round(time.Second))
	}
	t0 := time.Now()
	if err := CheckSynthDir(dir, golden); err != nil {
		t.Fatal(err)
	}
	t.Logf("synthetic checkpoint digests checked in %v", time.Since(t0).Round(time.Second))
	var checks []string
	if c := os.Getenv("HARMONY_FULLSIZE_CHECKS"); c != "" {
		checks = strings.Split(c, ",")
	}
	dev := gputest.Open(t, gpu.Options{DefaultLimits: true})
	t0 = time.Now()
	res, err := FullParity(context.Background(), dev, FullParityOptions{
		Source: loader.NewDirSource(dir), Golden: golden, Photo: photo, Checks: checks, Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full-size parity: %d outputs in %v", len(res), time.Since(t0).Round(time.Second))
	if len(res) == 0 {
		t.Fatal("nothing compared")
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s %s: max|err| %.4g > %.4g (max|ref| %.4g) %s", r.Check, r.Output, r.MaxErr, r.Tol, r.MaxRef, r.Note)
		}
	}
}
