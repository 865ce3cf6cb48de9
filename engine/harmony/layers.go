// layers.go describes the UNet's attention sites and selects the mask and
// swap layers of harmony-method.md §3 ("UNet levels", "Subject masks"
// step 1, "Swap"). The UNet author provides the sites (or
// SitesFromUNetConfig derives them from config.json); this file only
// chooses among them.
package harmony

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// BlockKind is the UNet part an attention layer belongs to.
type BlockKind uint8

const (
	BlockDown BlockKind = iota // down_blocks.i
	BlockMid                   // mid_block
	BlockUp                    // up_blocks.i
)

func (k BlockKind) String() string {
	switch k {
	case BlockDown:
		return "down"
	case BlockMid:
		return "mid"
	case BlockUp:
		return "up"
	}
	return fmt.Sprintf("BlockKind(%d)", uint8(k))
}

// AttnSite is one attention layer of the UNet.
type AttnSite struct {
	Name       string    // state-dict prefix, e.g. "up_blocks.1.attentions.0.transformer_blocks.0.attn1"
	Block      BlockKind // down, mid or up block
	BlockIndex int       // i of down_blocks.i / up_blocks.i (0 for the mid block)
	Level      int       // number of downsamplings of the latent at this layer's resolution
	Cross      bool      // cross-attention (attn2, keys = text) rather than self-attention (attn1)
	H, W       int       // the layer's feature-map size (query positions H·W)
}

// Module is the Transformer2DModel the site belongs to: Name without the
// ".transformer_blocks.N.attnK" tail ("up_blocks.1.attentions.0").
func (s AttnSite) Module() string {
	if i := strings.Index(s.Name, ".transformer_blocks."); i >= 0 {
		return s.Name[:i]
	}
	return s.Name
}

// LayerOptions are the layer-selection knobs.
type LayerOptions struct {
	MaskLevel  *int     // mask-level: nil = Lm, the coarsest level whose down or up block has attention
	SwapLayers []string // swap-layers: nil, "decoder" or "all" = every attn1 of the up blocks; else name prefixes of attn1 sites
}

// LayerSets is the outcome of SelectLayers.
type LayerSets struct {
	MaskLevel    int        // Lm
	GridH, GridW int        // the mask grid: the latent's size at level Lm
	Mask         []AttnSite // attn2 of the down and up blocks at levels Lm and Lm − 1
	Swap         []AttnSite // attn1 sites that swap
}

// SelectLayers picks the mask and swap layers among the UNet's sites (in
// the given order).
func SelectLayers(sites []AttnSite, opt LayerOptions) (LayerSets, error) {
	var out LayerSets
	coarsest := -1
	for _, s := range sites {
		if s.Block != BlockMid {
			coarsest = max(coarsest, s.Level)
		}
	}
	if coarsest < 0 {
		return out, errors.New("harmony: the UNet has no attention in its down or up blocks")
	}
	out.MaskLevel = coarsest
	if opt.MaskLevel != nil {
		out.MaskLevel = *opt.MaskLevel
		if out.MaskLevel < 0 || out.MaskLevel > coarsest {
			return out, fmt.Errorf("harmony: mask-level %d outside [0, %d]", out.MaskLevel, coarsest)
		}
	}
	lm := out.MaskLevel
	for _, s := range sites {
		if s.Cross && s.Block != BlockMid && (s.Level == lm || s.Level == lm-1) {
			out.Mask = append(out.Mask, s)
		}
	}
	if len(out.Mask) == 0 {
		return out, fmt.Errorf("harmony: no cross-attention in the down or up blocks at levels %d and %d", lm, lm-1)
	}
	var err error
	if out.GridH, out.GridW, err = levelSize(sites, lm); err != nil {
		return out, err
	}

	sel := opt.SwapLayers
	if len(sel) == 0 || (len(sel) == 1 && (sel[0] == "decoder" || sel[0] == "all")) {
		for _, s := range sites {
			if !s.Cross && s.Block == BlockUp {
				out.Swap = append(out.Swap, s)
			}
		}
		if len(out.Swap) == 0 {
			return out, errors.New("harmony: the UNet's up blocks have no self-attention to swap")
		}
		return out, nil
	}
	hit := make([]bool, len(sel))
	for _, s := range sites {
		if s.Cross {
			continue
		}
		take := false
		for i, p := range sel {
			if p = strings.TrimSpace(p); s.Name == p || strings.HasPrefix(s.Name, p+".") {
				hit[i], take = true, true
			}
		}
		if take {
			out.Swap = append(out.Swap, s)
		}
	}
	for i, h := range hit {
		if !h {
			return out, fmt.Errorf("harmony: swap-layers entry %q matches no self-attention layer", sel[i])
		}
	}
	return out, nil
}

// levelSize returns the feature size at a level: from a site at that level,
// or by halving (⌈·/2⌉, as Downsample2D) the size of a finer one.
func levelSize(sites []AttnSite, level int) (h, w int, err error) {
	best := -1
	for i, s := range sites {
		if s.Level <= level && (best < 0 || s.Level > sites[best].Level) {
			best = i
		}
	}
	if best < 0 {
		return 0, 0, fmt.Errorf("harmony: no attention layer at or above the resolution of level %d", level)
	}
	h, w = sites[best].H, sites[best].W
	for range level - sites[best].Level {
		h, w = (h+1)/2, (w+1)/2
	}
	return h, w, nil
}

// unetConfig holds the config.json fields that place attention layers.
type unetConfig struct {
	DownBlockTypes            []string        `json:"down_block_types"`
	UpBlockTypes              []string        `json:"up_block_types"`
	MidBlockType              json.RawMessage `json:"mid_block_type"`
	LayersPerBlock            json.RawMessage `json:"layers_per_block"`
	TransformerLayersPerBlock json.RawMessage `json:"transformer_layers_per_block"`
	ReverseTransformerLayers  json.RawMessage `json:"reverse_transformer_layers_per_block"`
	OnlyCrossAttention        json.RawMessage `json:"only_cross_attention"`
}

// SitesFromUNetConfig lists the attention sites of a diffusers
// UNet2DConditionModel from its config.json, for a latent of latentH ×
// latentW, in module order (down blocks, mid block, up blocks; within a
// transformer block attn1 before attn2).
func SitesFromUNetConfig(configJSON []byte, latentH, latentW int) ([]AttnSite, error) {
	var c unetConfig
	if err := json.Unmarshal(configJSON, &c); err != nil {
		return nil, fmt.Errorf("harmony: unet config: %w", err)
	}
	n := len(c.DownBlockTypes)
	if n == 0 || len(c.UpBlockTypes) != n {
		return nil, fmt.Errorf("harmony: unet config has %d down and %d up blocks", n, len(c.UpBlockTypes))
	}
	if only, err := perBlockBool(c.OnlyCrossAttention, n); err != nil {
		return nil, err
	} else if anyTrue(only) {
		return nil, errors.New("harmony: only_cross_attention UNets are not supported")
	}
	layers, err := perBlockInt(c.LayersPerBlock, n, 2, "layers_per_block")
	if err != nil {
		return nil, err
	}
	tl, err := perBlockInt(c.TransformerLayersPerBlock, n, 1, "transformer_layers_per_block")
	if err != nil {
		return nil, err
	}
	revTL := make([]int, n)
	for i := range n {
		revTL[i] = tl[n-1-i]
	}
	if len(c.ReverseTransformerLayers) > 0 && string(c.ReverseTransformerLayers) != "null" {
		if revTL, err = perBlockInt(c.ReverseTransformerLayers, n, 1, "reverse_transformer_layers_per_block"); err != nil {
			return nil, err
		}
	}
	hs, ws := make([]int, n), make([]int, n)
	hs[0], ws[0] = latentH, latentW
	for l := 1; l < n; l++ {
		hs[l], ws[l] = (hs[l-1]+1)/2, (ws[l-1]+1)/2
	}

	var sites []AttnSite
	add := func(prefix string, kind BlockKind, idx, level, numAttn, numTB int) {
		for a := range numAttn {
			for b := range numTB {
				for _, cross := range []bool{false, true} {
					name := fmt.Sprintf("%s.attentions.%d.transformer_blocks.%d.attn1", prefix, a, b)
					if cross {
						name = name[:len(name)-1] + "2"
					}
					sites = append(sites, AttnSite{Name: name, Block: kind, BlockIndex: idx, Level: level, Cross: cross, H: hs[level], W: ws[level]})
				}
			}
		}
	}
	for i, t := range c.DownBlockTypes {
		switch t {
		case "CrossAttnDownBlock2D":
			add(fmt.Sprintf("down_blocks.%d", i), BlockDown, i, i, layers[i], tl[i])
		case "DownBlock2D":
		default:
			return nil, fmt.Errorf("harmony: down block type %q not supported", t)
		}
	}
	// mid_block_type: missing means the class default; null means none.
	mid := "UNetMidBlock2DCrossAttn"
	if len(c.MidBlockType) > 0 {
		mid = ""
		if string(c.MidBlockType) != "null" {
			if err := json.Unmarshal(c.MidBlockType, &mid); err != nil {
				return nil, fmt.Errorf("harmony: unet config mid_block_type: %s", c.MidBlockType)
			}
		}
	}
	switch mid {
	case "UNetMidBlock2DCrossAttn":
		add("mid_block", BlockMid, 0, n-1, 1, tl[n-1])
	case "UNetMidBlock2D", "":
	default:
		return nil, fmt.Errorf("harmony: mid block type %q not supported", mid)
	}
	revLayers := make([]int, n)
	for i := range n {
		revLayers[i] = layers[n-1-i]
	}
	for j, t := range c.UpBlockTypes {
		switch t {
		case "CrossAttnUpBlock2D":
			add(fmt.Sprintf("up_blocks.%d", j), BlockUp, j, n-1-j, revLayers[j]+1, revTL[j])
		case "UpBlock2D":
		default:
			return nil, fmt.Errorf("harmony: up block type %q not supported", t)
		}
	}
	return sites, nil
}

// perBlockInt reads an int-or-list config field (missing: def for all).
func perBlockInt(raw json.RawMessage, n, def int, name string) ([]int, error) {
	out := make([]int, n)
	if len(raw) == 0 || string(raw) == "null" {
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		for i := range out {
			out[i] = one
		}
		return out, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != n {
		return nil, fmt.Errorf("harmony: unet config %s: want an integer or %d integers, got %s", name, n, raw)
	}
	return list, nil
}

// perBlockBool reads a bool-or-list config field (missing: false).
func perBlockBool(raw json.RawMessage, n int) ([]bool, error) {
	out := make([]bool, n)
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	var one bool
	if err := json.Unmarshal(raw, &one); err == nil {
		for i := range out {
			out[i] = one
		}
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != n {
		return nil, fmt.Errorf("harmony: unet config only_cross_attention: %s", raw)
	}
	return out, nil
}

func anyTrue(v []bool) bool {
	for _, b := range v {
		if b {
			return true
		}
	}
	return false
}
