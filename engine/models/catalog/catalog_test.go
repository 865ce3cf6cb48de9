// catalog_test.go checks the CLIP image encoder component against the tiny
// CLIP checkpoint, and the BLIP-Diffusion table against the released
// checkpoint's tensor table: for every component, what the released
// configs imply is what the released files hold, and what the model reads
// is the float part of it.
package catalog

import (
	"os"
	"testing"

	"harmony/engine/models/modeltest"
	"harmony/engine/models/released"
	"harmony/loader/golden"

	"github.com/stretchr/testify/require"
)

func TestBLIPDiffusionMatchesRelease(t *testing.T) {
	configs := map[string]string{
		"text_encoder": released.TextEncoder,
		"qformer":      released.QFormer,
		"unet":         released.UNet,
		"vae":          released.VAE,
	}
	rows := modeltest.ReleasedTensors(t)
	for _, c := range BLIPDiffusion.Models() {
		t.Run(c.Name, func(t *testing.T) {
			stored := map[string][]int{}
			for _, r := range rows {
				if r.Component == c.Name {
					stored[r.Name] = r.Shape
				}
			}
			got, err := BLIPDiffusion.StoredShapes(c.Name, []byte(configs[c.Name]))
			if err != nil {
				t.Fatal(err)
			}
			modeltest.CompareTensorLists(t, got, stored)
			if c.Name == "vae" {
				return // the model reads the current attention spelling, the files hold the old one
			}
			read, err := BLIPDiffusion.Shapes(c.Name, []byte(configs[c.Name]))
			if err != nil {
				t.Fatal(err)
			}
			modeltest.CompareTensorLists(t, read, modeltest.SpecTensors(t, c.Name))
		})
	}
}

func TestTableFiles(t *testing.T) {
	for _, c := range BLIPDiffusion {
		if c.ConfigFile == "" {
			t.Errorf("%s: no config file", c.Name)
		}
		if c.HasWeights() != (c.WeightFile != "") {
			t.Errorf("%s: weight file %q, has weights %v", c.Name, c.WeightFile, c.HasWeights())
		}
	}
	if _, ok := BLIPDiffusion.Component("unet"); !ok {
		t.Error("no unet component")
	}
	if s, err := BLIPDiffusion.Shapes("scheduler", []byte(released.Scheduler)); s != nil || err != nil {
		t.Errorf("scheduler shapes = %v, %v; want none", s, err)
	}
}

// The image encoder component parses the tiny whole-CLIPModel config and
// lists the tensors its checkpoint stores for the vision tower.
func TestCLIPImageEncoder(t *testing.T) {
	data, err := os.ReadFile(golden.Path(t, "clip-tiny", "config.json"))
	require.NoError(t, err)
	shapes, err := Table{CLIPImageEncoder}.StoredShapes("image_encoder", data)
	require.NoError(t, err)
	f := golden.Open(t, "clip-tiny", "model.safetensors")
	for name, s := range shapes {
		info := f.Find(name)
		require.NotNil(t, info, name)
		require.Equal(t, s, info.Shape, name)
	}
	require.Contains(t, shapes, "visual_projection.weight")
	require.Equal(t, 1+17*16+7, len(shapes))
}
