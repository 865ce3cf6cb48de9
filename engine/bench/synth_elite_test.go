//go:build !js

package bench

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/catalog"
	"harmony/loader"
	"harmony/loader/golden"
)

// TestSynthELITE plans ELITE at the tiny model's sizes, writes it (mappers
// as torch zip checkpoints) and checks every file against the tiny model's
// real ones (names and shapes), that it loads through catalog.ELITE and
// packs; and that the full-size plan holds the released mapper files.
func TestSynthELITE(t *testing.T) {
	tiny := golden.Path(t, "elite-tiny")
	configs := map[string][]byte{}
	for c, f := range map[string]string{"text_encoder": "text_encoder/config.json", "image_encoder": "image_encoder/config.json",
		"unet": "unet/config.json", "vae": "vae/config.json", "scheduler": "scheduler/scheduler_config.json"} {
		b, err := os.ReadFile(filepath.Join(tiny, f))
		if err != nil {
			t.Fatal(err)
		}
		configs[c] = b
	}
	idx, err := os.ReadFile(filepath.Join(tiny, "model_index.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := PlanELITEFrom(idx, configs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.Write(context.Background(), dir, WriteOptions{Tokenizer: os.DirFS(tiny)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"global_mapper.pt", "local_mapper.pt"} {
		shapes := func(path string) map[string][]int {
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _ := fh.Stat()
			tf, err := loader.ReadTorchZip(fh, st.Size(), path)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string][]int{}
			for _, ti := range tf.Tensors {
				m[ti.Name] = ti.Shape
			}
			return m
		}
		got, want := shapes(filepath.Join(dir, f)), shapes(filepath.Join(tiny, f))
		if len(got) != len(want) {
			t.Fatalf("%s: %d tensors, the tiny model's has %d", f, len(got), len(want))
		}
		for n, sh := range want {
			if !slices.Equal(got[n], sh) {
				t.Errorf("%s: %s is %v, want %v", f, n, got[n], sh)
			}
		}
	}
	ctx := context.Background()
	b := cpu.New()
	m, err := loader.LoadELITE(ctx, loader.ELITESources{Base: loader.NewDirSource(dir)}, b, &loader.Options{Shapes: catalog.ELITE.Shapes})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]catalog.Model{}
	for _, c := range catalog.ELITE.Models() {
		cfg, err := c.Parse(m.Configs[c.Name])
		if err != nil {
			t.Fatal(err)
		}
		if loaded[c.Name], err = c.LoadIn(b, cfg, m.Weights[c.Name], loaded); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
	}
	for _, x := range loaded {
		x.Free(b)
	}
	if _, err := loader.WriteELITEPack(ctx, loader.ELITESources{Base: loader.NewDirSource(dir)}, filepath.Join(dir, "pack"), &loader.PackOptions{Shapes: catalog.ELITE.Shapes}); err != nil {
		t.Fatal(err)
	}

	full, err := PlanELITE()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var bytes int64
	for _, x := range full.Tensors {
		if x.Component == "global_mapper" {
			n++
			bytes += x.Numel()
		}
	}
	if n != 132 || bytes != 48074240 {
		t.Errorf("full-size global_mapper: %d tensors, %d parameters; want 132, 48074240", n, bytes)
	}
}
