package harmony

import (
	"os"
	"slices"
	"testing"

	"harmony/engine/models/unet"
	"harmony/loader/golden"
)

func modules(sites []AttnSite) []string {
	var out []string
	for _, s := range sites {
		out = append(out, Module(s))
	}
	return out
}

// TestLayersTinyUNet derives the tiny golden UNet's sites from its
// config.json and reproduces summary.json's layer sets and sizes.
func TestLayersTinyUNet(t *testing.T) {
	sum := loadSummary(t)
	cfg, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := unet.ParseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scale := 1 << (c.Levels() - 1) // the VAE/latent factor (8 for SD 1.x)
	sites := unet.SitesFor(c, sum.Args.Height/scale, sum.Args.Width/scale)
	for _, run := range maskRuns {
		info := sum.Runs[run]
		for _, s := range sites {
			if hw, ok := info.LayerHW[Module(s)]; !ok || hw != [2]int{s.H, s.W} {
				t.Errorf("%s: %s at %d×%d, summary %v", run, s.Name, s.H, s.W, hw)
			}
		}
		if len(info.LayerHW) != len(sites)/2 {
			t.Errorf("%d attention modules, summary has %d", len(sites)/2, len(info.LayerHW))
		}
		sets, err := SelectLayers(sites, LayerOptions{MaskLevel: info.Options.MaskLevel, SwapLayers: []string{info.Options.SwapLayers}})
		if err != nil {
			t.Fatal(err)
		}
		if sets.MaskLevel != info.MaskLevel || [2]int{sets.GridH, sets.GridW} != info.MaskGrid {
			t.Errorf("%s: mask level %d grid %d×%d, summary %d %v", run, sets.MaskLevel, sets.GridH, sets.GridW, info.MaskLevel, info.MaskGrid)
		}
		if got := modules(sets.Mask); !slices.Equal(got, info.MaskLayers) {
			t.Errorf("%s: mask layers %v, summary %v", run, got, info.MaskLayers)
		}
		if got := modules(sets.Swap); !slices.Equal(got, info.SwapLayers) {
			t.Errorf("%s: swap layers %v, summary %v", run, got, info.SwapLayers)
		}
		for _, s := range sets.Mask {
			if !s.Cross {
				t.Errorf("mask layer %s is not a cross-attention", s.Name)
			}
		}
		for _, s := range sets.Swap {
			if s.Cross || s.Block != "up" {
				t.Errorf("swap layer %s is not an up-block self-attention", s.Name)
			}
		}
	}
}

// sdUNet is the SD-1.x topology of BLIP-Diffusion's UNet.
const sdUNet = `{
  "block_out_channels": [320, 640, 1280, 1280],
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "layers_per_block": 2,
  "mid_block_type": "UNetMidBlock2DCrossAttn"
}`

func TestLayersSD(t *testing.T) {
	c, err := unet.ParseConfig([]byte(sdUNet))
	if err != nil {
		t.Fatal(err)
	}
	sites := unet.SitesFor(c, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 2*16 {
		t.Fatalf("%d sites, want 32 (16 transformer blocks)", len(sites))
	}
	sets, err := SelectLayers(sites, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Mask level Lm = 2: ten mask layers at 32² and 16²
	// (down_blocks.1–2, up_blocks.1–2); nine swap layers at 16², 32², 64².
	if sets.MaskLevel != 2 || sets.GridH != 16 || sets.GridW != 16 {
		t.Errorf("mask level %d grid %d×%d", sets.MaskLevel, sets.GridH, sets.GridW)
	}
	wantMask := []string{
		"down_blocks.1.attentions.0", "down_blocks.1.attentions.1", "down_blocks.2.attentions.0", "down_blocks.2.attentions.1",
		"up_blocks.1.attentions.0", "up_blocks.1.attentions.1", "up_blocks.1.attentions.2",
		"up_blocks.2.attentions.0", "up_blocks.2.attentions.1", "up_blocks.2.attentions.2",
	}
	if got := modules(sets.Mask); !slices.Equal(got, wantMask) {
		t.Errorf("mask layers %v", got)
	}
	var sizes []int
	for _, s := range sets.Swap {
		sizes = append(sizes, s.H)
	}
	if !slices.Equal(sizes, []int{16, 16, 16, 32, 32, 32, 64, 64, 64}) {
		t.Errorf("swap layer sizes %v", sizes)
	}
	for _, s := range sites {
		if s.Block == "mid" && (s.H != 8 || s.Level != 3) {
			t.Errorf("mid block site %+v", s)
		}
	}

	// Knobs.
	one := 1
	k, err := SelectLayers(sites, LayerOptions{MaskLevel: &one, SwapLayers: []string{"up_blocks.3", "up_blocks.1.attentions.2"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.GridH != 32 || len(k.Mask) != 10 || k.Mask[0].Name != "down_blocks.0.attentions.0.transformer_blocks.0.attn2" {
		t.Errorf("mask-level 1: grid %d, %d layers, first %s", k.GridH, len(k.Mask), k.Mask[0].Name)
	}
	if got := modules(k.Swap); !slices.Equal(got, []string{"up_blocks.1.attentions.2", "up_blocks.3.attentions.0", "up_blocks.3.attentions.1", "up_blocks.3.attentions.2"}) {
		t.Errorf("swap-layers knob: %v", got)
	}
	five := 5
	for _, bad := range []LayerOptions{{MaskLevel: &five}, {SwapLayers: []string{"up_blocks.9"}}, {SwapLayers: []string{"up_blocks.1.attentions.1.transformer_blocks.0.attn2"}}} {
		if _, err := SelectLayers(sites, bad); err == nil {
			t.Errorf("options %+v: no error", bad)
		}
	}
}
