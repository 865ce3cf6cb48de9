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

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/www"
)

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
