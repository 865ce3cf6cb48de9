// hook.go: Harmony's UNet hook (nn.Hook), the part of the method that
// runs inside the UNet calls: it asks the mask layers for their
// subject-column probabilities, turns them into subject masks after each
// call, and swaps the main process's self-attention
// one call later. The denoising loop drives it, and so does the full-size
// benchmark (engine/bench), so both run the same layers and columns.
package pipeline

import (
	"context"
	"fmt"

	"harmony/engine/harmony"
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// HookLayout is what the hook needs to know besides the options: the
// model's attention sites and text layout, and where the processes sit in
// the UNet batch.
type HookLayout struct {
	Sites   []nn.Site      // the UNet's attention sites at the latent size (unet.UNet.Sites)
	Text    harmony.Layout // where the subject embeddings sit in the text sequence
	TextLen int            // text positions (77)
	// Processes is the number of processes in each half of the batch: the
	// main one first, the visual-only one second, any others after.
	Processes int
	CFG       bool // the batch is [uncond × Processes, cond × Processes]
	// PromptIDs (main, visual-only) and ClassIDs, the target class's token
	// ids, locate the class rows: only mask-tokens visual+class needs them.
	PromptIDs [2][]int32
	ClassIDs  []int32
	// SubjectCols, when set, are the text positions (main, visual-only)
	// whose attention makes each process's mask, replacing the rule above:
	// ELITE's processes each have their own placeholder row.
	SubjectCols [2][]int
}

// HarmonyHook is the Harmony UNet hook of one generation. Drive it with
// Begin before each UNet call and End after its output is read.
type HarmonyHook struct {
	b     tensor.Backend
	sets  harmony.LayerSets
	mask  map[string]bool // mask-layer site names
	swap  map[string]bool // swap-layer site names
	cols  [2]int          // probability columns requested from the mask layers
	pcols [2][]int        // per process (main, visual): columns to average, relative to cols[0]
	entry [2]int          // batch entries of the main and visual conditional branches
	batch int
	// partner pairs each main entry with its visual twin, per guidance half.
	partner []int
	mainIdx []int // batch entries of the main process (each guidance half)
	visIdx  []int // batch entries of the visual process
	mode    tensor.SwapMode
	tau     float64
	sched   *harmony.MaskSchedule
	inject  func(int) (harmony.Mask, harmony.Mask, bool)

	// per call
	call     int
	active   bool
	useMain  harmony.Mask
	useVis   harmony.Mask
	probs    []siteProbs
	swapBufs map[[2]int]*swapTensors

	// outputs
	masksMain, masksVis, usedMain []harmony.Mask
	softMain, softVis             []harmony.Map
	lastUsedSoft                  *harmony.Map
}

type siteProbs struct {
	site nn.Site
	p    *tensor.Tensor
}

type swapTensors struct {
	swap *tensor.Swap // nil: nothing to swap at this size
	row  *tensor.Tensor
	key  *tensor.Tensor
}

// NewHarmonyHook builds the hook for o's Harmony options (and o.Steps, which
// a fractional swap-start refers to) on b.
func NewHarmonyHook(b tensor.Backend, o *Options, l HookLayout) (*HarmonyHook, error) {
	h := &o.Harmony
	if l.Processes < 2 {
		return nil, fmt.Errorf("pipeline: the Harmony hook needs the main and visual-only processes, got %d process(es)", l.Processes)
	}
	sets, err := harmony.SelectLayers(l.Sites, harmony.LayerOptions{MaskLevel: h.MaskLevel, SwapLayers: h.SwapLayers})
	if err != nil {
		return nil, err
	}
	np := l.Processes
	batch := np
	if l.CFG {
		batch = 2 * np
	}
	c := &HarmonyHook{b: b, sets: sets, mask: map[string]bool{}, swap: map[string]bool{}, batch: batch,
		mode: h.SwapMode, tau: h.MaskThreshold, inject: h.InjectMasks, swapBufs: map[[2]int]*swapTensors{}}
	if c.mode == 0 {
		c.mode = tensor.SwapKV
	}
	for _, s := range sets.Mask {
		c.mask[s.Name] = true
	}
	for _, s := range sets.Swap {
		c.swap[s.Name] = true
	}
	condBase := 0
	if l.CFG {
		condBase = np
	}
	c.entry = [2]int{condBase + 0, condBase + 1}
	c.partner = make([]int, batch)
	for i := range c.partner {
		c.partner[i] = -1
	}
	halves := []int{condBase}
	if l.CFG {
		halves = []int{0, np}
	}
	for _, h := range halves {
		c.partner[h+0] = h + 1
		c.mainIdx = append(c.mainIdx, h+0)
		c.visIdx = append(c.visIdx, h+1)
	}
	switch {
	case l.SubjectCols[0] != nil || l.SubjectCols[1] != nil:
		lo, hi := l.TextLen, 0
		for _, cols := range l.SubjectCols {
			if len(cols) == 0 {
				return nil, fmt.Errorf("pipeline: the Harmony hook got no subject columns for a process")
			}
			for _, j := range cols {
				if j < 0 || j >= l.TextLen {
					return nil, fmt.Errorf("pipeline: subject column %d outside the %d text positions", j, l.TextLen)
				}
				lo, hi = min(lo, j), max(hi, j+1)
			}
		}
		c.cols = [2]int{lo, hi}
		for k, cols := range l.SubjectCols {
			for _, j := range cols {
				c.pcols[k] = append(c.pcols[k], j-lo)
			}
		}
	case h.MaskTokens == MaskVisualClass:
		c.cols = [2]int{0, l.TextLen}
		for k, ids := range l.PromptIDs {
			rows, err := harmony.ClassifyRows(ids, l.ClassIDs, l.Text)
			if err != nil {
				return nil, err
			}
			c.pcols[k] = harmony.SubjectColumns(rows, true)
		}
	default:
		c.cols = [2]int{l.Text.CtxBegin, l.Text.CtxBegin + l.Text.NumCtx}
		for k := range c.pcols {
			for j := 0; j < l.Text.NumCtx; j++ {
				c.pcols[k] = append(c.pcols[k], j)
			}
		}
	}
	c.sched = harmony.NewMaskSchedule(h.SwapStart.Index(o.Steps))
	return c, nil
}

// Grid is the size of the mask grid, the masks' size.
func (c *HarmonyHook) Grid() (h, w int) { return c.sets.GridH, c.sets.GridW }

// MaskLayers is the number of layers whose probabilities each call reads.
func (c *HarmonyHook) MaskLayers() int { return len(c.sets.Mask) }

// Masks returns, per call so far, the binary masks computed for the main
// and visual-only processes and the main mask each call swapped with
// (zeros when it did not swap).
func (c *HarmonyHook) Masks() (main, visual, usedMain []harmony.Mask) {
	return c.masksMain, c.masksVis, c.usedMain
}

// SoftMasks returns, per call so far, the min–max normalized subject maps
// of the main and visual-only processes the binary masks were cut from (a
// primed call's are the primed masks).
func (c *HarmonyHook) SoftMasks() (main, visual []harmony.Map) {
	return c.softMain, c.softVis
}

// LastUsedMask is the soft main mask of the last call that swapped (nil
// when none did).
func (c *HarmonyHook) LastUsedMask() *harmony.Map { return c.lastUsedSoft }

// Begin prepares call i: whether it swaps, and with which masks. Calls
// come in order from 0.
func (c *HarmonyHook) Begin(call int) error {
	c.call = call
	c.freeSwap()
	c.probs = c.probs[:0]
	active, mm, mv, err := c.sched.Begin(call)
	if err != nil {
		return err
	}
	c.active, c.useMain, c.useVis = active, mm, mv
	used := harmony.Mask{H: c.sets.GridH, W: c.sets.GridW, V: make([]uint8, c.sets.GridH*c.sets.GridW)}
	if active {
		used = mm
		soft := c.softMain[call-1]
		c.lastUsedSoft = &soft
	}
	c.usedMain = append(c.usedMain, used)
	return nil
}

// Prime stands in for call 0 without running it: main and vis (grid
// masks) are recorded as that call's masks, so call 1, begun next, swaps
// with them when swap-start allows. The benchmark times one swapped call
// this way.
func (c *HarmonyHook) Prime(main, vis harmony.Mask) error {
	for _, m := range []harmony.Mask{main, vis} {
		if m.H != c.sets.GridH || m.W != c.sets.GridW || len(m.V) != m.H*m.W {
			return fmt.Errorf("pipeline: a primed mask is %d×%d, the mask grid %d×%d", m.H, m.W, c.sets.GridH, c.sets.GridW)
		}
	}
	if err := c.Begin(0); err != nil {
		return err
	}
	var soft [2]harmony.Map
	for k, m := range []harmony.Mask{main, vis} {
		soft[k] = harmony.Map{H: m.H, W: m.W, V: make([]float32, len(m.V))}
		for i, v := range m.V {
			soft[k].V[i] = float32(v)
		}
	}
	c.record(main, vis, soft[0], soft[1])
	return nil
}

// Attention implements nn.Hook.
func (c *HarmonyHook) Attention(s nn.Site) ([2]int, *tensor.Swap) {
	if c.mask[s.Name] {
		return c.cols, nil
	}
	if !c.active || !c.swap[s.Name] {
		return [2]int{}, nil
	}
	st := c.swapBufs[[2]int{s.H, s.W}]
	if st == nil {
		st = c.swapAt(s.H, s.W)
		c.swapBufs[[2]int{s.H, s.W}] = st
	}
	return [2]int{}, st.swap
}

// swapAt builds the swap of one layer size: both grid masks resized by
// nearest neighbour to H×W.
func (c *HarmonyHook) swapAt(h, w int) *swapTensors {
	mm := harmony.ResizeNearest(c.useMain, h, w)
	mv := harmony.ResizeNearest(c.useVis, h, w)
	if mm.Count() == 0 || (c.mode == tensor.SwapKV && mv.Count() == 0) {
		return &swapTensors{} // nothing swaps at this layer size
	}
	n := h * w
	row := make([]float32, c.batch*n)
	for _, e := range c.mainIdx {
		for i, v := range mm.V {
			row[e*n+i] = float32(v)
		}
	}
	st := &swapTensors{row: c.b.FromF32("swap.rows", row, c.batch, n)}
	sw := &tensor.Swap{Mode: c.mode, Partner: c.partner, RowMask: st.row}
	if c.mode == tensor.SwapKV {
		key := make([]float32, c.batch*n)
		for _, e := range c.visIdx {
			for i, v := range mv.V {
				key[e*n+i] = float32(v)
			}
		}
		st.key = c.b.FromF32("swap.keys", key, c.batch, n)
		sw.KeyMask = st.key
	}
	st.swap = sw
	return st
}

// Probs implements nn.Hook.
func (c *HarmonyHook) Probs(s nn.Site, p *tensor.Tensor) {
	c.probs = append(c.probs, siteProbs{site: s, p: p})
}

// End reads the mask layers' probabilities of call i and computes both
// processes' subject masks on the mask grid.
func (c *HarmonyHook) End(ctx context.Context, call int) error {
	defer func() {
		for _, sp := range c.probs {
			c.b.Free(sp.p)
		}
		c.probs = c.probs[:0]
	}()
	if len(c.probs) != len(c.sets.Mask) {
		return fmt.Errorf("pipeline: call %d: got attention probabilities from %d of the %d mask layers", call, len(c.probs), len(c.sets.Mask))
	}
	var layers [2][]harmony.Map
	for _, sp := range c.probs {
		v, err := c.b.Read(ctx, sp.p)
		if err != nil {
			return err
		}
		nq, nc := sp.p.Shape[1], sp.p.Shape[2]
		for k := 0; k < 2; k++ {
			e := c.entry[k]
			avg, err := harmony.AverageColumns(v[e*nq*nc:(e+1)*nq*nc], nq, nc, c.pcols[k])
			if err != nil {
				return err
			}
			layers[k] = append(layers[k], harmony.Map{H: sp.site.H, W: sp.site.W, V: avg})
		}
	}
	var masks [2]harmony.Mask
	var softs [2]harmony.Map
	for k := 0; k < 2; k++ {
		_, soft, mask, err := harmony.SubjectMask(layers[k], c.sets.GridH, c.sets.GridW, c.tau)
		if err != nil {
			return err
		}
		masks[k], softs[k] = mask, soft
	}
	if c.inject != nil {
		if mm, mv, ok := c.inject(call); ok {
			masks[0], masks[1] = mm, mv
		}
	}
	c.record(masks[0], masks[1], softs[0], softs[1])
	return nil
}

// record keeps the call's masks as the outputs and for the next call.
func (c *HarmonyHook) record(main, vis harmony.Mask, softMain, softVis harmony.Map) {
	c.masksMain = append(c.masksMain, main)
	c.masksVis = append(c.masksVis, vis)
	c.softMain = append(c.softMain, softMain)
	c.softVis = append(c.softVis, softVis)
	c.sched.Record(main, vis)
}

func (c *HarmonyHook) freeSwap() {
	for k, st := range c.swapBufs {
		c.b.Free(st.row, st.key)
		delete(c.swapBufs, k)
	}
}

// Free releases the hook's tensors (the swap masks and any probabilities
// not yet read).
func (c *HarmonyHook) Free() {
	c.freeSwap()
	for _, sp := range c.probs {
		c.b.Free(sp.p)
	}
	c.probs = c.probs[:0]
}
