// tuning_test.go: kernel variants map to their WGSL defines, and each
// backend owns its tuning.
package kernels

import (
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// TestVariantDefines: each variant field turns into its WGSL define, and
// kernelOf hands out the kernel its variant builds.
func TestVariantDefines(t *testing.T) {
	tile := gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8}
	tileDefs := []string{"TM", "8", "TN", "16", "WGM", "8", "WGN", "8", "WG", "64", "TN4", "4"}
	for _, c := range []struct {
		v    variantBuilder
		want gpu.Kernel
	}{
		{denseVariant{tile: tile, weight: weightF16, act: tensor.ActGELU, bias: true, vec: true, vout: true, w8: true},
			gpu.Kernel{Shader: "matmul.wgsl", Entry: "main", Defines: shaders.Defines(append(tileDefs,
				"F16", "1", "ACT_GELU", "1", "BIAS", "1", "VEC", "1", "VOUT", "1", "W8", "1")...)}},
		{denseVariant{tile: tile, weight: weightF16N, res: true, subgroup: 4, split: true, geglu: true},
			gpu.Kernel{Shader: "matmul.wgsl", Entry: "main", Defines: shaders.Defines(append(tileDefs,
				"F16N", "1", "RES", "1", "SG", "4", "SGL", "4", "SPLIT", "1", "GEGLU", "1")...)}},
		{denseVariant{conv: true, tile: tile, act: tensor.ActSiLU, chanBias: true, upsample: true, vec: true, taps: 9, tapsW: 3},
			gpu.Kernel{Shader: "conv2d.wgsl", Entry: "main", Defines: shaders.Defines(append(tileDefs,
				"ACT_SILU", "1", "CHANBIAS", "1", "UPSAMPLE", "1", "VEC", "1", "TAPS", "1", "KK", "9", "KW", "3")...)}},
		{attnVariant{kb: 16, wg: 64, dvc: 40, stats: true, vout: true, causal: true, swap: true, swapKV: true},
			gpu.Kernel{Shader: "attention.wgsl", Entry: "main", Defines: shaders.Defines(
				"KB", "16", "WG", "64", "DVC", "40", "DVC4", "10", "STATS", "1", "VOUT", "1", "CAUSAL", "1", "SWAP", "1", "SWAP_KV", "1")}},
		{attnVariant{probs: true, wg: 64, pc: 8, kb: 16, dvc: 40, stats: true, vout: true, vec: true, keyBias: true, swap: true},
			gpu.Kernel{Shader: "attention.wgsl", Entry: "probs_main", Defines: shaders.Defines(
				"PROBS_PASS", "1", "WG", "64", "PC", "8", "VEC", "1", "KEYBIAS", "1", "SWAP", "1", "SWAP_MAP", "1")}},
		{unaryVariant{"quick_gelu"},
			gpu.Kernel{Shader: "elementwise.wgsl", Entry: "unary", Defines: "ACT=quick_gelu,UNARY=1"}},
		{embedVariant{f16: true},
			gpu.Kernel{Shader: "layout.wgsl", Entry: "embedding", Defines: "EMBED=1,F16=1"}},
		{convertVariant{src16: false, dst16: true},
			gpu.Kernel{Shader: "layout.wgsl", Entry: "convert", Defines: "CONVERT=1,DST16=1,SRC16=0"}},
		{gnFusedVariant{vec: true, silu: true},
			gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_fused", Defines: shaders.Defines(
				"GN_FUSED", "1", "GNF_WG", "64", "GNF_WG4", "16", "VEC", "1", "SILU", "1")}},
	} {
		if got := c.v.build(); got != c.want {
			t.Errorf("%+v:\n got %v\nwant %v", c.v, got, c.want)
		}
		if got := c.v.kernel(); got != c.want {
			t.Errorf("%+v: kernelOf gave %v, want %v", c.v, got, c.want)
		}
	}
}

// variantBuilder lets the table above hold variants of every type.
type variantBuilder interface {
	build() gpu.Kernel
	kernel() gpu.Kernel
}

func (v denseVariant) kernel() gpu.Kernel   { return kernelOf(v) }
func (v attnVariant) kernel() gpu.Kernel    { return kernelOf(v) }
func (v gnFusedVariant) kernel() gpu.Kernel { return kernelOf(v) }
func (v unaryVariant) kernel() gpu.Kernel   { return kernelOf(v) }
func (v embedVariant) kernel() gpu.Kernel   { return kernelOf(v) }
func (v convertVariant) kernel() gpu.Kernel { return kernelOf(v) }

// TestDefaultTuning: New gives a backend the defaults, and changing one
// backend's knobs leaves another's alone (what lets tests run in
// parallel on one device).
func TestDefaultTuning(t *testing.T) {
	d := defaultTuning()
	for _, g := range []gemmTile{d.denseTile, d.linearTile, d.w8Tile, d.gegluTile, d.sgLinearTile, d.convTapsTile} {
		if g.TN%4 != 0 || g.WGM*g.WGN > 256 {
			t.Errorf("tile %+v: TN must be a multiple of 4 and the workgroup at most 256 threads", g)
		}
	}
	a, b := &Backend{cfg: defaultTuning()}, &Backend{cfg: defaultTuning()}
	a.cfg.convTaps, a.cfg.bindLimit = false, 1024
	if !b.cfg.convTaps || b.cfg.bindLimit != 0 {
		t.Error("one backend's tuning leaked into another's")
	}
}
