//go:build !js

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/www"
)

// TestFullParity compares the engine at full size, in f32 and in the
// WebGPU default-limits mode (128 MiB bindings), with the reference's
// outputs in testdata/fullsize. Opt-in: it needs the 3.1 GB synthetic
// checkpoint and, on lavapipe, most of the time of the full-size stages
// (BENCHMARKS.md: about 11 minutes on an idle 2-core machine; far longer
// on a loaded one).
//
//	HARMONY_FULLSIZE=1 go test ./engine/bench -run TestFullParity -timeout 60m -v
//
// It writes the checkpoint into a temporary folder (half a minute), or
// reads the one `harmony synth --out DIR --pack none` wrote when
// HARMONY_SYNTH_DIR=DIR is set. HARMONY_FULLSIZE_CHECKS=unet,vae runs a
// subset of qformer, text, unet, vae.
func TestFullParity(t *testing.T) {
	if os.Getenv("HARMONY_FULLSIZE") != "1" {
		t.Skip("opt-in: HARMONY_FULLSIZE=1 (minutes; see the comment)")
	}
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

// TestFullParityRefusesBadInput: an unknown check and a golden file that
// is not one are errors, not results.
func TestFullParityRefusesBadInput(t *testing.T) {
	dev := gputest.Open(t, gpu.Options{})
	src := loader.NewFSSource(www.DemoModel(), "demo")
	if _, err := FullParity(context.Background(), dev, FullParityOptions{Source: src, Golden: []byte("not safetensors")}); err == nil {
		t.Error("a malformed golden file was accepted")
	}
}

// TestCheckSynthDir: the weight files' digests in the golden file's
// metadata are checked; a changed file is named.
func TestCheckSynthDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "unet"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "unet", "w.safetensors")
	if err := os.WriteFile(name, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("weights"))
	golden := func(meta map[string]string) []byte {
		var buf bytes.Buffer
		if err := loader.WriteSafetensorsHeader(&buf, nil, meta); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	withSum := golden(map[string]string{"synth_sha256": `{"unet/w.safetensors": "` + hex.EncodeToString(sum[:]) + `"}`})
	if err := CheckSynthDir(dir, withSum); err != nil {
		t.Fatal(err)
	}
	if err := CheckSynthDir(dir, golden(map[string]string{"format": "pt"})); err != nil {
		t.Fatalf("no digests: %v", err)
	}
	if err := os.WriteFile(name, []byte("other weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckSynthDir(dir, withSum); err == nil || !strings.Contains(err.Error(), "unet/w.safetensors") {
		t.Fatalf("a changed file: error %v", err)
	}
}
