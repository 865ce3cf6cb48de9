// denoise.go: stage 6, the denoising loop over all processes, and the
// Harmony controller that plugs into the UNet's attention hook: it asks the
// mask layers for their subject-column probabilities, turns them into
// subject masks after each call (harmony-method.md §3), and swaps the main
// process's self-attention one call later.
package pipeline

import (
	"context"
	"fmt"
	"time"

	"harmony/engine/harmony"
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// denoise runs every UNet call of the schedule.
func (r *run) denoise(ctx context.Context, procs []*process, uncond *tensor.Tensor) error {
	m, b, o, res := r.m, r.b, &r.o, r.res
	np := len(procs)
	c, h, w := m.LatentChannels, r.lh, r.lw
	cfg := uncond != nil
	batch := np
	if cfg {
		batch = 2 * np
	}
	// The text context is the same at every call: [uncond × P, cond_1 … cond_P].
	var parts []*tensor.Tensor
	if cfg {
		for range procs {
			parts = append(parts, uncond)
		}
	}
	for _, p := range procs {
		parts = append(parts, p.cond)
	}
	text := parts[0]
	if len(parts) > 1 {
		text = b.Concat(0, parts...)
		defer b.Free(text)
	}

	var ctl *controller
	if o.Method == MethodHarmony && o.Harmony.Swap {
		var err error
		if ctl, err = r.newController(procs, batch, cfg); err != nil {
			return err
		}
		defer ctl.free()
	}

	ts := res.Timesteps
	res.Timings.Calls, res.Timings.Batch = len(ts), batch
	n := c * h * w
	t0 := time.Now()
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := make([]float32, 0, batch*n)
		if cfg {
			for _, p := range procs {
				in = append(in, nchwToNHWC(p.latents, 1, c, h, w)...)
			}
		}
		for _, p := range procs {
			in = append(in, nchwToNHWC(p.latents, 1, c, h, w)...)
		}
		sample := b.FromF32("sample", in, batch, h, w, c)
		var hook nn.Hook
		if ctl != nil {
			if err := ctl.begin(i); err != nil {
				b.Free(sample)
				return err
			}
			hook = ctl
		}
		out, err := m.UNet.Forward(b, sample, []float32{float32(t)}, text, hook)
		if err != nil {
			b.Free(sample)
			return err
		}
		vals, err := b.Read(ctx, out)
		b.Free(sample, out)
		if err != nil {
			return err
		}
		if ctl != nil {
			if err := ctl.end(ctx, i); err != nil {
				return err
			}
		}
		eps := nhwcToNCHW(vals, batch, c, h, w)
		g := float32(o.Guidance)
		for k, p := range procs {
			var e []float32
			if cfg {
				u, cd := eps[k*n:(k+1)*n], eps[(np+k)*n:(np+k+1)*n]
				e = make([]float32, n)
				for j := range e {
					// uncond + g·(cond − uncond), each op rounded to f32 as
					// in the reference (no fused multiply-add).
					e[j] = u[j] + float32(g*(cd[j]-u[j]))
				}
			} else {
				e = eps[k*n : (k+1)*n]
			}
			if p.latents, err = p.sch.Step(e, t, p.latents); err != nil {
				return fmt.Errorf("pipeline: scheduler step %d: %w", i, err)
			}
		}
		if o.Progress != nil {
			done := i + 1
			el := time.Since(t0)
			pr := Progress{Stage: "denoise", Call: done, Calls: len(ts), Elapsed: time.Since(r.start)}
			pr.ETA = time.Duration(float64(el) / float64(done) * float64(len(ts)-done))
			if o.PreviewEvery > 0 && (done%o.PreviewEvery == 0 || done == len(ts)) {
				pr.Preview = latentPreview(procs[0].latents, c, h, w)
			}
			o.Progress(pr)
		}
	}
	if ctl != nil {
		res.MasksMain, res.MasksVisual, res.MasksUsedMain = ctl.masksMain, ctl.masksVis, ctl.usedMain
		if ctl.lastUsedSoft != nil {
			res.Mask = ctl.lastUsedSoft
		}
	}
	return nil
}

// controller is the Harmony UNet hook of one generation.
type controller struct {
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
	softMain                      []harmony.Map
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

func (r *run) newController(procs []*process, batch int, cfg bool) (*controller, error) {
	m, o := r.m, &r.o.Harmony
	sets, err := harmony.SelectLayers(m.UNet.Sites(r.lh, r.lw), harmony.LayerOptions{MaskLevel: o.MaskLevel, SwapLayers: o.SwapLayers})
	if err != nil {
		return nil, err
	}
	np := len(procs)
	c := &controller{b: r.b, sets: sets, mask: map[string]bool{}, swap: map[string]bool{}, batch: batch,
		mode: o.SwapMode, tau: o.MaskThreshold, inject: o.InjectMasks, swapBufs: map[[2]int]*swapTensors{}}
	for _, s := range sets.Mask {
		c.mask[s.Name] = true
	}
	for _, s := range sets.Swap {
		c.swap[s.Name] = true
	}
	condBase := 0
	if cfg {
		condBase = np
	}
	c.entry = [2]int{condBase + 0, condBase + 1}
	c.partner = make([]int, batch)
	for i := range c.partner {
		c.partner[i] = -1
	}
	halves := []int{condBase}
	if cfg {
		halves = []int{0, np}
	}
	for _, h := range halves {
		c.partner[h+0] = h + 1
		c.mainIdx = append(c.mainIdx, h+0)
		c.visIdx = append(c.visIdx, h+1)
	}
	lay := r.layout()
	switch o.MaskTokens {
	case MaskVisualClass:
		c.cols = [2]int{0, m.TextLen}
		classIDs := m.CLIP.Encode(r.o.TargetClass)
		for k, p := range procs[:2] {
			rows, err := harmony.ClassifyRows(p.ids, classIDs, lay)
			if err != nil {
				return nil, err
			}
			c.pcols[k] = harmony.SubjectColumns(rows, true)
		}
	default:
		c.cols = [2]int{m.CtxBeginPos, m.CtxBeginPos + m.NumQuery}
		for k := range c.pcols {
			for j := 0; j < m.NumQuery; j++ {
				c.pcols[k] = append(c.pcols[k], j)
			}
		}
	}
	c.sched = harmony.NewMaskSchedule(o.SwapStart.Index(r.o.Steps))
	return c, nil
}

// begin prepares call i: whether it swaps, and with which masks.
func (c *controller) begin(call int) error {
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

// Attention implements nn.Hook.
func (c *controller) Attention(s nn.Site) ([2]int, *tensor.Swap) {
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
func (c *controller) swapAt(h, w int) *swapTensors {
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
func (c *controller) Probs(s nn.Site, p *tensor.Tensor) {
	c.probs = append(c.probs, siteProbs{site: s, p: p})
}

// end reads the mask layers' probabilities of call i and computes both
// processes' subject masks on the mask grid.
func (c *controller) end(ctx context.Context, call int) error {
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
	c.masksMain = append(c.masksMain, masks[0])
	c.masksVis = append(c.masksVis, masks[1])
	c.softMain = append(c.softMain, softs[0])
	c.sched.Record(masks[0], masks[1])
	return nil
}

func (c *controller) freeSwap() {
	for k, st := range c.swapBufs {
		c.b.Free(st.row, st.key)
		delete(c.swapBufs, k)
	}
}

func (c *controller) free() {
	c.freeSwap()
	for _, sp := range c.probs {
		c.b.Free(sp.p)
	}
}
