// elite_hub_test.go: an ELITE model from three stand-in Hub repositories
// (the stand-in serves natively only).

//go:build !js

package loader_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"harmony/loader"
	"harmony/loader/golden"
	"harmony/loader/hubtest"
)

// TestLoadELITEHub loads the three parts from three stand-in Hub
// repositories, the mappers from a repository's checkpoints/ folder as
// ELITE-library/ELITE keeps them.
func TestLoadELITEHub(t *testing.T) {
	base := t.TempDir()
	copyDir(t, golden.Path(t, "elite-tiny"), base)
	ckpt := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(filepath.Join(ckpt, "checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"global_mapper.pt", "local_mapper.pt"} {
		if err := os.Rename(filepath.Join(base, f), filepath.Join(ckpt, "checkpoints", f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(base, "image_encoder")); err != nil {
		t.Fatal(err)
	}
	start := func(root, repo string) string {
		h, err := hubtest.Start(root, repo, hubtest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h.URL()
	}
	src, err := loader.OpenELITE(start(base, "CompVis/sd-tiny"), start(golden.Path(t, "clip-tiny"), "openai/clip-tiny"), start(ckpt, "ELITE-library/ELITE"))
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend()
	m, err := loader.LoadELITE(context.Background(), src, b, &loader.Options{PieceSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"unet", "image_encoder", "global_mapper", "local_mapper"} {
		if m.Weights[c] == nil || len(m.Weights[c].Names()) == 0 {
			t.Fatalf("%s: no weights", c)
		}
	}
	m.Free(b)
	if _, err := loader.OpenELITE("", "", ""); err == nil {
		t.Fatal("no base accepted")
	}
}
