// tuning.go holds the backend's kernel-selection knobs and the typed
// kernel variants. The knobs live in a value each Backend owns (set to the
// measured defaults by New), so a test or benchmark that tries another
// tiling or forces a code path changes only its own backend, and tests
// sharing a device can run in parallel. A variant is a comparable struct
// that says which compiled form of a shader a dispatch needs; its
// gpu.Kernel (with the WGSL define string) is built once per variant.
package kernels

import (
	"sync"

	"harmony/engine/gpu"
)

// tuning is a backend's kernel-selection knobs.
type tuning struct {
	// denseTile is the tiling of Conv2D's general form: 64 threads (a
	// multiple of every SIMD width in use, well under the 256-invocation
	// default limit) holding 8×8 accumulators each, a 64×64 output tile.
	// Loads dominate on lavapipe; with the block written out straight-line
	// (matmul.wgsl) bigger blocks keep winning up to about 16×16, but the
	// shader compile time grows with the block (BenchmarkLinearVariants has
	// the figures). linearTile serves Linear (f32 weights, or f16 ones read
	// four at a time), w8Tile f16 weights read eight at a time (W8),
	// gegluTile the GEGLU form, which holds value and gate accumulators.
	denseTile, linearTile, w8Tile, gegluTile gemmTile
	// sgLinearTile is the Linear tiling with subgroups (not GEGLU, whose
	// value and gate accumulators keep gegluTile): with the weights shared
	// across a subgroup, wider column blocks pay (BenchmarkLinearVariants
	// v10).
	sgLinearTile gemmTile
	// convTapsTile is the tiling of Conv2D's TAPS form (3×3 kernels reading
	// the weights of a channel quad in storage order). 16×16 blocks run
	// ~20 % faster but take LLVM ~11 s to compile per pipeline variant on
	// lavapipe (8×8: ~2 s), and every UNet convolution flavour is one; see
	// BenchmarkConvVariants. With subgroups the same block runs in sgTile's
	// arrangement (conv2d.wgsl's SG).
	convTapsTile gemmTile
	// matmulW8 lets f16 weights take W8 (BenchmarkLinearVariants times the
	// alternatives).
	matmulW8 bool
	// convTaps enables Conv2D's TAPS form.
	convTaps bool
	// attn is the tiling of attention.wgsl.
	attn attnConfig
	// gnFusedMax bounds the elements of one group (S·C/G) that GN_FUSED
	// handles: one workgroup reads them three times, which is cheap next to
	// two more dispatches on CPU adapters and on small maps, but leaves a
	// big GPU under-occupied when groups are large (the VAE at 512²: 32
	// workgroups of a million elements). CPU adapters take up to
	// gnFusedMaxCPU. Tests force either path with them.
	gnFusedMax, gnFusedMaxCPU int
	// lnRowMax is the widest row LN_ROW (a row per thread, no barriers)
	// takes on a GPU; CPU adapters, where barriers are dear and threads
	// few, take every row width there unless it is negative. Tests force
	// either path with it.
	lnRowMax int
	// bindLimit, when nonzero, stands in for a smaller storage-binding
	// limit than the device's, bytes: tests make the band and chunk
	// splitting run on small tensors.
	bindLimit uint64
}

// defaultTuning is what New gives every backend.
func defaultTuning() tuning {
	return tuning{
		denseTile:     gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8},
		linearTile:    gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8},
		w8Tile:        gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8},
		gegluTile:     gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8},
		sgLinearTile:  gemmTile{TM: 8, TN: 32, WGM: 16, WGN: 4},
		convTapsTile:  gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8},
		matmulW8:      true,
		convTaps:      true,
		attn:          attnConfig{KB: 16, WG: 64, MaxDVC: 80, PC: 8},
		gnFusedMax:    1 << 17,
		gnFusedMaxCPU: 1 << 21,
		lnRowMax:      128,
	}
}

// variant is a comparable description of one compiled form of a shader.
type variant interface {
	comparable
	build() gpu.Kernel
}

// kernelTable maps each variant used so far to its gpu.Kernel. Variants do not
// depend on the device, so one table serves every backend.
var kernelTable sync.Map

// kernelOf returns v's gpu.Kernel, building its define string on first use.
func kernelOf[V variant](v V) gpu.Kernel {
	if k, ok := kernelTable.Load(v); ok {
		return k.(gpu.Kernel)
	}
	k := v.build()
	kernelTable.Store(v, k)
	return k
}
