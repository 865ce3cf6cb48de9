// elite_test.go: an ELITE model from one local folder (testdata/elite-tiny:
// SD layout, image_encoder/, mapper checkpoints of strided shared-storage
// views) and from three sources (the vision half of a whole CLIPModel
// checkpoint elsewhere, the mappers elsewhere); missing parts are named.
package loader_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestLoadELITEFolder(t *testing.T) {
	dir := golden.Path(t, "elite-tiny")
	for _, p := range []loader.Precision{loader.PrecisionF32, loader.PrecisionF16} {
		b := newBackend()
		m, err := loader.LoadELITE(context.Background(), loader.ELITESources{Base: loader.NewDirSource(dir)}, b, &loader.Options{Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"text_encoder", "unet", "vae", "image_encoder", "global_mapper", "local_mapper"} {
			if w := m.Weights[c]; w == nil || len(w.Names()) == 0 {
				t.Fatalf("%s: no weights", c)
			}
		}
		if len(m.Configs["image_encoder"]) == 0 || m.Configs["unet"] == nil {
			t.Fatal("configs missing")
		}
		if n := len(m.Weights["global_mapper"].Names()); n != 112 {
			t.Errorf("global_mapper: %d tensors, want 112", n)
		}
		x, err := m.Weights["global_mapper"].Get("mapping_0.3.weight")
		if err != nil || x.DType != loader.StorageType(p, "mapping_0.3.weight", []int{1024, 1024}) {
			t.Fatalf("mapping_0.3.weight %v, %v", x, err)
		}
		m.Free(b)
		if a := b.Allocated(); a != 0 {
			t.Errorf("%d bytes left after Free", a)
		}
	}
}

func TestLoadELITEThreeSources(t *testing.T) {
	// Base without image_encoder/ and mappers; those come from elsewhere.
	base := t.TempDir()
	copyDir(t, golden.Path(t, "elite-tiny"), base)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.RemoveAll(filepath.Join(base, "image_encoder")))
	maps := t.TempDir()
	for _, f := range []string{"global_mapper.pt", "local_mapper.pt"} {
		must(os.Rename(filepath.Join(base, f), filepath.Join(maps, f)))
	}
	b := newBackend()
	ctx := context.Background()
	src := loader.ELITESources{Base: loader.NewDirSource(base), ImageEncoder: loader.NewDirSource(golden.Path(t, "clip-tiny")), Mappers: loader.NewDirSource(maps)}
	m, err := loader.LoadELITE(ctx, src, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := m.Weights["image_encoder"].Names()
	for _, n := range names {
		if !strings.HasPrefix(n, "vision_model.") && !strings.HasPrefix(n, "visual_projection.") {
			t.Fatalf("image_encoder holds %q from the text half of the CLIPModel", n)
		}
	}
	if len(names) == 0 || !strings.Contains(string(m.Configs["image_encoder"]), "vision_config") {
		t.Fatalf("image encoder: %d tensors, config %q", len(names), m.Configs["image_encoder"])
	}
	m.Free(b)

	// A missing part is named, and nothing stays on the backend.
	src.Mappers = loader.NewDirSource(t.TempDir())
	_, err = loader.LoadELITE(ctx, src, b, nil)
	if err == nil || !strings.Contains(err.Error(), "global_mapper") {
		t.Fatalf("err = %v, want one naming global_mapper", err)
	}
	src.Mappers, src.ImageEncoder = loader.NewDirSource(maps), nil
	_, err = loader.LoadELITE(ctx, src, b, nil)
	if err == nil || !strings.Contains(err.Error(), "image encoder") || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("err = %v, want one naming the image encoder's config.json", err)
	}
	if a := b.Allocated(); a != 0 {
		t.Errorf("%d bytes left after failed loads", a)
	}
	var _ tensor.Backend = b
}

// TestELITEPack writes the tiny ELITE folder as one pack and loads it back:
// the same components, names and bits as loading the folder in fp16.
func TestELITEPack(t *testing.T) {
	ctx := context.Background()
	src := loader.ELITESources{Base: loader.NewDirSource(golden.Path(t, "elite-tiny"))}
	out := t.TempDir()
	man, err := loader.WriteELITEPack(ctx, src, out, &loader.PackOptions{ShardSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	direct, db := func() (*loader.Model, tensor.Backend) {
		b := newBackend()
		m, err := loader.LoadELITE(ctx, src, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m, b
	}()
	pb := newBackend()
	packed, err := loader.LoadELITE(ctx, loader.ELITESources{Base: loader.NewDirSource(out)}, pb, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := sameWeights(t, "ELITE pack", direct, db, packed, pb)
	if n != len(man.Tensors) || len(packed.Configs["image_encoder"]) == 0 {
		t.Fatalf("%d tensors compared, the manifest has %d; image encoder config %q", n, len(man.Tensors), packed.Configs["image_encoder"])
	}
	// A plain pack is no ELITE model.
	plain := t.TempDir()
	if _, err := loader.WritePack(ctx, loader.NewDirSource(tinyST(t)), plain, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := loader.LoadELITE(ctx, loader.ELITESources{Base: loader.NewDirSource(plain)}, pb, nil); err == nil || !strings.Contains(err.Error(), "not an ELITE pack") {
		t.Fatalf("err = %v", err)
	}
}
