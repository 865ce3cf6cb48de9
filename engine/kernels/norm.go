// norm.go: GroupNorm (optionally fused with SiLU) and LayerNorm on the GPU,
// kernels in shaders/norm.wgsl. The CPU references are
// cpu.Backend.GroupNorm and cpu.Backend.LayerNorm (two-pass float64
// statistics, biased variance); here statistics are f32, Welford/Chan for
// GroupNorm and two-pass tree sums for LayerNorm.
package kernels

import (
	"fmt"
	"strconv"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

var (
	kGNStats         = gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_stats", Defines: shaders.Defines("GN_STATS", "1")}
	kGNMerge         = gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_merge", Defines: shaders.Defines("GN_MERGE", "1")}
	kGNApply         = gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_apply", Defines: shaders.Defines("GN_APPLY", "1")}
	kGNApplySiLU     = gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_apply", Defines: shaders.Defines("GN_APPLY", "1", "SILU", "1")}
	kLayerNorm       = gpu.Kernel{Shader: "norm.wgsl", Entry: "ln_main", Defines: shaders.Defines("LN", "1")}
	kLayerNormRow    = gpu.Kernel{Shader: "norm.wgsl", Entry: "ln_row", Defines: shaders.Defines("LN_ROW", "1")}
	kLayerNormRowVec = gpu.Kernel{Shader: "norm.wgsl", Entry: "ln_row", Defines: shaders.Defines("LN_ROW", "1", "VEC", "1")}
)

// gnStatsParams is GN_STATS's Params.
type gnStatsParams struct {
	S       uint32 // positions per batch entry
	C       uint32 // channels
	CG      uint32 // channels per group
	Groups  uint32 // groups G
	GB      uint32 // groups per block
	Blocks  uint32 // blocks per batch entry
	Chunk   uint32 // positions per workgroup
	Chunks  uint32 // chunks per batch entry
	NC      uint32 // thread columns
	Rows    uint32 // thread rows
	RowsP2  uint32 // Rows rounded up to a power of two
	W       uint32 // thread columns per group
	WP2     uint32 // W rounded up to a power of two
	Total   uint32 // workgroups
	XOff    uint32 // elements: x within its binding
	PartOff uint32 // vec4s: partials within their binding
	Stride  uint32 // partials per (batch entry, group): the whole tensor's chunks
	Chunk0  uint32 // first chunk of this dispatch among them (windows)
	_       [2]uint32
}

// gnMergeParams is GN_MERGE's Params.
type gnMergeParams struct {
	BG       uint32  // (batch entry, group) pairs
	Chunks   uint32  // partials per pair
	PartOff  uint32  // vec4s: partials within their binding
	StatsOff uint32  // vec4s: statistics within their binding
	Eps      float32 // added to the variance
	_        [3]uint32
}

// gnApplyParams is GN_APPLY's Params.
type gnApplyParams struct {
	N        uint32 // elements
	C        uint32 // channels
	S        uint32 // positions per batch entry
	CG       uint32 // channels per group
	Groups   uint32 // groups G
	XOff     uint32 // elements: x within its binding
	GOff     uint32 // elements: gamma within its binding
	BOff     uint32 // elements: beta within its binding
	StatsOff uint32 // vec4s: statistics within their binding
	OutOff   uint32 // elements: out within its binding
	_        [2]uint32
}

// gnFusedParams is GN_FUSED's Params.
type gnFusedParams struct {
	S      uint32  // positions per batch entry (H·W)
	C      uint32  // channels
	CG     uint32  // channels per group
	Groups uint32  // groups G
	BG     uint32  // workgroups with work: B·G
	NC     uint32  // thread columns: channels, or channel quads with VEC
	Rows   uint32  // thread rows: GNF_WG/NC
	XOff   uint32  // elements: x within its binding
	GOff   uint32  // elements: gamma within its binding
	BOff   uint32  // elements: beta within its binding
	OutOff uint32  // elements: out within its binding
	Eps    float32 // added to the variance
}

// gnFusedWG is GN_FUSED's workgroup size: few threads, because each barrier
// on lavapipe switches every 8-lane slice of the workgroup.
const gnFusedWG = 64

// gnFusedVariant is one compiled form of GN_FUSED.
type gnFusedVariant struct {
	vec  bool // channels read as vec4 (VEC)
	silu bool // SiLU applied to the output (SILU)
}

func (v gnFusedVariant) build() gpu.Kernel {
	defs := []string{"GN_FUSED", "1", "GNF_WG", strconv.Itoa(gnFusedWG), "GNF_WG4", strconv.Itoa(gnFusedWG / 4)}
	if v.vec {
		defs = append(defs, "VEC", "1")
	}
	if v.silu {
		defs = append(defs, "SILU", "1")
	}
	return gpu.Kernel{Shader: "norm.wgsl", Entry: "gn_fused", Defines: shaders.Defines(defs...)}
}

// groupNormFused records GN_FUSED: one dispatch, one workgroup per (batch
// entry, group).
func (b *Backend) groupNormFused(x, gamma, beta, out *tensor.Tensor, nb, s, c, groups int, eps float32, silu bool) {
	cg := c / groups
	xa, ga, ba, oa := b.arg(x), b.arg(gamma), b.arg(beta), b.arg(out)
	vec := cg%4 == 0 && xa.Off%4 == 0 && oa.Off%4 == 0
	units := cg
	if vec {
		units = cg / 4
	}
	nc := min(units, gnFusedWG)
	b.run(kernelOf(gnFusedVariant{vec: vec, silu: silu}), nb*groups, gnFusedParams{
		S: uint32(s), C: uint32(c), CG: uint32(cg), Groups: uint32(groups), BG: uint32(nb * groups),
		NC: uint32(nc), Rows: uint32(gnFusedWG / nc),
		XOff: xa.Off, GOff: ga.Off, BOff: ba.Off, OutOff: oa.Off, Eps: eps,
	}, xa, ga, ba, oa)
}

// useGNFused reports whether a group of n elements goes to GN_FUSED.
func (b *Backend) useGNFused(n int) bool {
	if b.dev.Info().Fallback {
		return n <= b.cfg.gnFusedMaxCPU
	}
	return n <= b.cfg.gnFusedMax
}

// lnParams is LN's Params.
type lnParams struct {
	Rows   uint32  // rows
	C      uint32  // row width
	TPR    uint32  // threads per row (power of two ≤ 256)
	XOff   uint32  // elements: x within its binding
	GOff   uint32  // elements: gamma within its binding
	BOff   uint32  // elements: beta within its binding
	OutOff uint32  // elements: out within its binding
	Eps    float32 // added to the variance
}

// gnPlan is how GN_STATS splits the work: a workgroup reads a chunk of
// positions of a block of neighbouring groups, nc channels side by side
// (≤ 64 unless one group is wider) in rows of threads.
type gnPlan struct {
	gb, blocks  int // groups per block, blocks per batch entry
	nc, rows, w int // thread columns, thread rows, columns per group
	chunk       int // positions per workgroup
	chunks      int // chunks per batch entry
}

// gnMaxChunks bounds the partials per group, so that GN_MERGE's 256 threads
// each merge at most 16.
const gnMaxChunks = 4096

// gnElemsPerThread is how many elements a GN_STATS thread folds into its
// Welford state: enough to amortize the workgroup reduction.
const gnElemsPerThread = 16

func planGroupNorm(s, c, groups int) gnPlan {
	cg := c / groups
	var p gnPlan
	p.gb = min(max(1, 64/cg), groups)
	p.blocks = ceilDiv(groups, p.gb)
	span := p.gb * cg
	p.nc = min(span, 256)
	p.rows = 256 / p.nc
	p.w = min(cg, p.nc)
	perPos := ceilDiv(span, p.nc) // channels a thread reads per position
	p.chunk = p.rows * max(1, gnElemsPerThread/perPos)
	if ceilDiv(s, p.chunk) > gnMaxChunks {
		p.chunk = ceilDiv(ceilDiv(s, gnMaxChunks), p.rows) * p.rows
	}
	p.chunks = ceilDiv(s, p.chunk)
	return p
}

// nextPow2 is the smallest power of two ≥ n (n ≥ 1).
func nextPow2(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// scratch allocates an f32 buffer for intermediate results of one op.
func (b *Backend) scratch(name string, n int) *tensor.Tensor {
	return b.alloc(name, tensor.F32, []int{n}, false)
}

// GroupNorm implements tensor.Backend; reference cpu.Backend.GroupNorm:
//
//	y = (x − mean_bg)/√(var_bg + eps)·gamma[c] + beta[c], then SiLU if silu,
//
// over batch entry b and group g (S positions × C/G channels). A tensor
// larger than a storage binding may be (the 512×512 VAE decode has a
// 256 MiB [1, 512, 512, 256] map; the default limit is 128 MiB) is read
// and written in windows of positions, each a whole number of GN_STATS
// chunks, with one statistics and one apply dispatch per window.
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32, silu bool) *tensor.Tensor {
	const op = "group_norm"
	nb, s, c, err := tensor.NormDims(op, x, gamma, beta, groups)
	if err == nil && groups <= 0 {
		err = &tensor.ShapeError{Op: op, Msg: fmt.Sprintf("%d groups", groups)}
	}
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out := b.out(op, x.Shape...)
	if x.Numel() == 0 {
		return out
	}
	fits := b.bindBytes(x) <= b.bindLimit() && b.bindBytes(out) <= b.bindLimit()
	if fits && b.useGNFused(s*(c/groups)) {
		b.groupNormFused(x, gamma, beta, out, nb, s, c, groups, eps, silu)
		return out
	}
	pl := planGroupNorm(s, c, groups)
	win := s // positions per window
	if !fits {
		lim := b.windowLimit()
		maxPos := int(lim / uint64(4*c))
		if maxPos == 0 {
			b.SetErr(&gpu.LimitError{What: fmt.Sprintf("group_norm %v: one position", x), Need: uint64(4 * c), Have: lim})
			return out
		}
		if maxPos < pl.chunk { // only with stand-in limits in tests
			pl.chunk = maxPos
			pl.chunks = ceilDiv(s, pl.chunk)
		}
		win = min(maxPos/pl.chunk*pl.chunk, s)
	}
	part := b.scratch(op+".partials", nb*groups*pl.chunks*4)
	stats := b.scratch(op+".stats", nb*groups*4)
	defer b.Free(part, stats)
	if b.Err() != nil {
		return out
	}
	pa, sa := b.arg(part), b.arg(stats)
	if pa.Off%4 != 0 || sa.Off%4 != 0 {
		b.SetErr(fmt.Errorf("kernels: group_norm: scratch not vector aligned (%d, %d)", pa.Off, sa.Off))
		return out
	}
	// windows yields (batch entries, first entry, first position,
	// positions) of each dispatch: the whole tensor at once when it fits.
	windows := func(f func(n, b0, s0, sw int)) {
		if fits {
			f(nb, 0, 0, s)
			return
		}
		for bi := range nb {
			for s0 := 0; s0 < s; s0 += win {
				f(1, bi, s0, min(win, s-s0))
			}
		}
	}
	view := func(t *tensor.Tensor, n, b0, s0, sw int) *tensor.Tensor {
		if n == nb && sw == s {
			return t
		}
		return b.View(t, (b0*s+s0)*c, n, sw, c)
	}
	windows(func(n, b0, s0, sw int) {
		xa := b.arg(view(x, n, b0, s0, sw))
		cw := ceilDiv(sw, pl.chunk)
		total := n * pl.blocks * cw
		b.run(kGNStats, total, gnStatsParams{
			S: uint32(sw), C: uint32(c), CG: uint32(c / groups), Groups: uint32(groups),
			GB: uint32(pl.gb), Blocks: uint32(pl.blocks), Chunk: uint32(pl.chunk), Chunks: uint32(cw),
			NC: uint32(pl.nc), Rows: uint32(pl.rows), RowsP2: uint32(nextPow2(pl.rows)),
			W: uint32(pl.w), WP2: uint32(nextPow2(pl.w)), Total: uint32(total),
			XOff: xa.Off, PartOff: pa.Off/4 + uint32(b0*groups*pl.chunks),
			Stride: uint32(pl.chunks), Chunk0: uint32(s0 / pl.chunk),
		}, xa, pa)
	})
	b.run(kGNMerge, nb*groups, gnMergeParams{
		BG: uint32(nb * groups), Chunks: uint32(pl.chunks), PartOff: pa.Off / 4, StatsOff: sa.Off / 4, Eps: eps,
	}, pa, sa)
	k := kGNApply
	if silu {
		k = kGNApplySiLU
	}
	ga, ba := b.arg(gamma), b.arg(beta)
	windows(func(n, b0, s0, sw int) {
		xa, oa := b.arg(view(x, n, b0, s0, sw)), b.arg(view(out, n, b0, s0, sw))
		ne := n * sw * c
		b.run(k, ceilDiv(ne, 1024), gnApplyParams{
			N: uint32(ne), C: uint32(c), S: uint32(sw), CG: uint32(c / groups), Groups: uint32(groups),
			XOff: xa.Off, GOff: ga.Off, BOff: ba.Off, StatsOff: sa.Off/4 + uint32(b0*groups), OutOff: oa.Off,
		}, xa, ga, ba, sa, oa)
	})
	return out
}

// lnThreadsPerRow gives a row of width c 16 to 32 elements per thread,
// between 16 threads (16 rows per workgroup) and 256. Few threads per row
// means few barriers in the tree sums: on lavapipe a [8192, 320] LayerNorm
// took ~45 ms with 16 threads per row, ~75 ms with 32 and ~400 ms with 128.
func lnThreadsPerRow(c int) int {
	return min(max(nextPow2(ceilDiv(c, 32)), 16), 256)
}

// useLNRow reports whether rows of width c go to LN_ROW.
func (b *Backend) useLNRow(c int) bool {
	return c <= b.cfg.lnRowMax || (b.dev.Info().Fallback && b.cfg.lnRowMax >= 0)
}

// LayerNorm implements tensor.Backend; reference cpu.Backend.LayerNorm: per
// row of the last dimension, y = (x − mean)/√(var + eps)·gamma + beta.
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) *tensor.Tensor {
	const op = "layer_norm"
	_, _, c, err := tensor.NormDims(op, x, gamma, beta, 0)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out := b.out(op, x.Shape...)
	rows := x.Numel() / max(c, 1)
	if rows == 0 || c == 0 {
		return out
	}
	xa, ga, ba, oa := b.arg(x), b.arg(gamma), b.arg(beta), b.arg(out)
	if b.useLNRow(c) {
		k := kLayerNormRow
		if c%4 == 0 && xa.Off%4 == 0 && oa.Off%4 == 0 {
			k = kLayerNormRowVec
		}
		b.run(k, ceilDiv(rows, 64), lnParams{
			Rows: uint32(rows), C: uint32(c),
			XOff: xa.Off, GOff: ga.Off, BOff: ba.Off, OutOff: oa.Off, Eps: eps,
		}, xa, ga, ba, oa)
		return out
	}
	tpr := lnThreadsPerRow(c)
	b.run(kLayerNorm, ceilDiv(rows, 256/tpr), lnParams{
		Rows: uint32(rows), C: uint32(c), TPR: uint32(tpr),
		XOff: xa.Off, GOff: ga.Off, BOff: ba.Off, OutOff: oa.Off, Eps: eps,
	}, xa, ga, ba, oa)
	return out
}
