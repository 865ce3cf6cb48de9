// layers.go selects the mask layers (the cross-attention layers whose
// probabilities make the subject masks) and the swap layers (the
// self-attention layers the main process swaps) among the UNet's
// attention sites, as any model implementing nn.Sited lists them.
package harmony

import (
	"errors"
	"fmt"
	"strings"

	"harmony/engine/models/nn"
)

// AttnSite is one attention layer of the UNet, as the UNet lists it
// (nn.Sited): name, block kind ("down", "mid", "up"), block index,
// resolution level, self or cross, and feature-map size.
type AttnSite = nn.Site

// Module is the Transformer2DModel a site belongs to: its name without the
// ".transformer_blocks.N.attnK" tail ("up_blocks.1.attentions.0").
func Module(s AttnSite) string {
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
		if s.Block != "mid" {
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
		if s.Cross && s.Block != "mid" && (s.Level == lm || s.Level == lm-1) {
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
			if !s.Cross && s.Block == "up" {
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
