// attention.go: fused multi-head attention on the GPU (shaders/attention.wgsl):
// online softmax without an Nq×Nk buffer, causal and key-bias masks, the
// head-averaged probabilities of a key-column range, and the Harmony
// self-attention swap. engine/cpu/attention.go is the reference.
package kernels

import (
	"fmt"
	"strconv"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// attnParams are attention.wgsl's Params (both entries).
type attnParams struct {
	B, Nq, Nk, H uint32  // batch entries, query rows, key rows, heads
	Dk, Dv       uint32  // head dims of q/k and of v/out
	VChunks      uint32  // value-column chunks of DVC per head
	QBlocks      uint32  // main: workgroups along the query rows
	Scale        float32 // multiplies q·k
	Tiles        uint32  // main: workgroups with work (the rest exit)
	C0, NC       uint32  // probability columns [C0, C0+NC)
	QOff, KOff   uint32  // element offsets of q and k in their bindings
	VOff, KBOff  uint32  // … of v and of the key bias
	RMOff, KMOff uint32  // … of the swap row mask and key mask
	OOff, SOff   uint32  // … of out and of the (m, l) stats scratch
	POff         uint32  // … of probs
	CChunks      uint32  // probs: column chunks of PC per row
	_            [2]uint32
	Partner      [maxSwapBatch]int32 // swap partner per entry, −1 for none
}

// maxSwapBatch is how many batch entries a swap can describe (the partner
// table rides in Params).
const maxSwapBatch = 16

// attnConfig is the tiling of attention.wgsl: each thread owns four query
// rows (packed in vec4s) and walks the keys KB at a time, WG threads per
// workgroup; one thread accumulates at most MaxDVC value columns (wider heads
// are split into chunks, each recomputing q·k); the probs entry gives PC
// columns to a thread. Benchmarks time others through Backend.cfg.attn.
//
// Measured on lavapipe (N = 1024–2048, 8 heads of 40, GFLOP per CPU-second,
// ±25 % noise on the shared machine): KB 16 ≈ 5.3, 8 ≈ 4.5, 4 ≈ 3.5;
// keeping the query rows in registers instead of re-reading them per key
// block did not help (4.0 against 3.6 at KB 4). A whole head per thread is
// fastest (d 80 in one chunk 5.9, in two 1.9), but LLVM's compile time grows
// steeply with the chunk (cold, KB 16: 3 s at 40 columns, 11 s at 80; earlier
// layouts took 40 s at 256 and 2 min at 512) — hence chunks of at most 80.
type attnConfig struct {
	KB     int // keys per block a thread walks at a time
	WG     int // threads per workgroup
	MaxDVC int // value columns one thread accumulates at most
	PC     int // probability columns per thread (probs entry)
}

// attnVariant is one compiled form of attention.wgsl: the main entry, or
// with probs the entry that computes the head-averaged probabilities.
type attnVariant struct {
	probs   bool // probs_main (PROBS_PASS), else main
	kb, wg  int  // main: keys per block; both: threads per workgroup
	dvc     int  // main: value columns per chunk, a multiple of 4
	pc      int  // probs: columns per thread
	vec     bool // head dims read as vec4 (VEC)
	vout    bool // main: out written as vec4 (VOUT)
	stats   bool // main: keeps each row's (max, sum) for the probs pass (STATS)
	causal  bool // CAUSAL
	keyBias bool // KEYBIAS
	swap    bool // the Harmony swap (SWAP)
	swapKV  bool // with swap: SWAP_KV, else SWAP_MAP
}

func (v attnVariant) build() gpu.Kernel {
	var defs []string
	entry := "main"
	if v.probs {
		entry = "probs_main"
		defs = append(defs, "PROBS_PASS", "1", "WG", strconv.Itoa(v.wg), "PC", strconv.Itoa(v.pc))
	} else {
		defs = append(defs, "KB", strconv.Itoa(v.kb), "WG", strconv.Itoa(v.wg),
			"DVC", strconv.Itoa(v.dvc), "DVC4", strconv.Itoa(v.dvc/4))
	}
	flags := []struct {
		on   bool
		name string
	}{
		{v.vec, "VEC"}, {v.causal, "CAUSAL"}, {v.keyBias, "KEYBIAS"}, {v.swap, "SWAP"},
		{v.swap && v.swapKV, "SWAP_KV"}, {v.swap && !v.swapKV, "SWAP_MAP"},
		{!v.probs && v.stats, "STATS"}, {!v.probs && v.vout, "VOUT"},
	}
	for _, f := range flags {
		if f.on {
			defs = append(defs, f.name, "1")
		}
	}
	return gpu.Kernel{Shader: "attention.wgsl", Entry: entry, Defines: shaders.Defines(defs...)}
}

// Attention implements tensor.Backend (the reference is
// cpu.Backend.Attention). For entry b, head h, query row i:
//
//	s_j = scale·q[b,i,h]·k[b,j,h] + keyBias[b,j]   (j ≤ i when causal)
//	p = softmax(s);  out[b,i,h] = Σ_j p_j·v[b,j,h]
//	probs[b,i,c] = mean_h p_{c0+c}
//
// with the swap substitutions documented on tensor.Swap. The scores are never
// stored: a single pass keeps each row's running max and sum; the
// probabilities take a second, small kernel that recomputes the scores of the
// requested columns and normalizes them with the final (max, sum).
func (b *Backend) Attention(q, k, v *tensor.Tensor, o tensor.AttnOpts) (*tensor.Tensor, *tensor.Tensor) {
	g, err := tensor.AttnDims(q, k, v, o)
	if b.failed(err) {
		return b.placeholder([]int{1}), nil
	}
	sw := o.Swap
	if sw != nil && g.B > maxSwapBatch {
		b.SetErr(fmt.Errorf("kernels: attention swap over %d batch entries; at most %d", g.B, maxSwapBatch))
		return b.placeholder([]int{1}), nil
	}
	out := b.out("attention", g.B, g.Nq, g.H*g.Dv)
	nc := g.C1 - g.C0
	var probs, stats *tensor.Tensor
	if nc > 0 {
		probs = b.out("attention.probs", g.B, g.Nq, nc)
		stats = b.New("attention.stats", tensor.F32, g.B*g.H*g.Nq*2)
		defer b.Free(stats)
	}
	if b.Err() != nil {
		return out, probs
	}

	qa, ka, va, oa := b.arg(q), b.arg(k), b.arg(v), b.arg(out)
	kba := b.optArg(o.KeyBias)
	var rma, kma Arg
	if sw != nil {
		rma, kma = b.arg(sw.RowMask), b.optArg(sw.KeyMask)
	} else {
		rma, kma = b.optArg(nil), b.optArg(nil)
	}
	var sa Arg
	if stats != nil {
		sa = b.arg(stats)
	}

	c := b.cfg.attn
	// Value chunks: as few as c.MaxDVC allows, evenly sized, in quads.
	vchunks := ceilDiv(g.Dv, c.MaxDVC)
	dvc := (ceilDiv(g.Dv, vchunks) + 3) &^ 3
	qblocks := ceilDiv(g.Nq, c.WG*4)
	p := attnParams{
		B: uint32(g.B), Nq: uint32(g.Nq), Nk: uint32(g.Nk), H: uint32(g.H),
		Dk: uint32(g.Dk), Dv: uint32(g.Dv), VChunks: uint32(vchunks), QBlocks: uint32(qblocks),
		Scale: o.Scale, Tiles: uint32(g.B * g.H * vchunks * qblocks),
		C0: uint32(g.C0), NC: uint32(max(nc, 0)),
		QOff: qa.Off, KOff: ka.Off, VOff: va.Off, KBOff: kba.Off,
		RMOff: rma.Off, KMOff: kma.Off, OOff: oa.Off, SOff: sa.Off,
	}
	for i := range p.Partner {
		p.Partner[i] = -1
	}
	mv := attnVariant{
		kb: c.KB, wg: c.WG, dvc: dvc,
		vec:    g.Dk%4 == 0 && g.Dv%4 == 0 && qa.Off%4 == 0 && ka.Off%4 == 0 && va.Off%4 == 0,
		vout:   g.Dv%4 == 0 && oa.Off%4 == 0,
		stats:  stats != nil,
		causal: o.Causal, keyBias: o.KeyBias != nil,
		swap: sw != nil, swapKV: sw != nil && sw.Mode == tensor.SwapKV,
	}
	if sw != nil {
		for i, pt := range sw.Partner {
			p.Partner[i] = int32(pt)
		}
	}
	args := []Arg{qa, ka, va, kba, rma, kma, oa}
	if stats != nil {
		args = append(args, sa) // without probs the kernel declares no stats binding
	}
	b.run(kernelOf(mv), int(p.Tiles), p, args...)

	if probs != nil {
		pa := b.arg(probs)
		p.POff = pa.Off
		p.CChunks = uint32(ceilDiv(nc, c.PC))
		pv := attnVariant{probs: true, wg: c.WG, pc: c.PC,
			vec: mv.vec, causal: mv.causal, keyBias: mv.keyBias, swap: mv.swap, swapKV: mv.swapKV}
		b.run(kernelOf(pv), ceilDiv(g.B*g.Nq*int(p.CChunks), c.WG), p, qa, ka, kba, rma, kma, sa, pa)
	}
	return out, probs
}
