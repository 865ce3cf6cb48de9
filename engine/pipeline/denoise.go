// denoise.go: stage 6, the denoising loop over all processes, with
// Harmony's hook (hook.go) in every UNet call.
package pipeline

import (
	"context"
	"fmt"
	"time"

	"harmony/engine/models/nn"
	"harmony/engine/models/unet"
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

	// ELITE's local branch: the same for every call.
	var local *unet.Local
	if r.elite != nil {
		feats, idx := r.eliteLocal(procs, cfg)
		defer b.Free(feats)
		local = &unet.Local{Features: feats, Index: idx, Lambda: []float32{r.elite.lambda}}
	}

	var ctl *HarmonyHook
	if o.Method == MethodHarmony && o.Harmony.Swap {
		l, err := r.hookLayout(procs, cfg)
		if err != nil {
			return err
		}
		if ctl, err = NewHarmonyHook(b, o, l); err != nil {
			return err
		}
		defer ctl.Free()
	}

	ts := res.Timesteps
	res.Timings.Calls, res.Timings.Batch = len(ts), batch
	n := c * h * w
	t0 := time.Now()
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The UNet's input (scaled for LMS), per process.
		scaled := make([][]float32, np)
		for k, p := range procs {
			x, err := p.sch.ScaleModelInput(p.latents, t)
			if err != nil {
				return fmt.Errorf("pipeline: scheduler input %d: %w", i, err)
			}
			scaled[k] = nchwToNHWC(x, 1, c, h, w)
		}
		in := make([]float32, 0, batch*n)
		if cfg {
			for k := range procs {
				in = append(in, scaled[k]...)
			}
		}
		for k := range procs {
			in = append(in, scaled[k]...)
		}
		sample := b.FromF32("sample", in, batch, h, w, c)
		var hook nn.Hook
		if ctl != nil {
			if err := ctl.Begin(i); err != nil {
				b.Free(sample)
				return err
			}
			hook = ctl
		}
		out, err := m.UNet.ForwardLocal(b, sample, []float32{float32(t)}, text, local, hook)
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
			if err := ctl.End(ctx, i); err != nil {
				return err
			}
		}
		// The UNet's output is read back at every call anyway: a NaN or
		// Inf here (or after the scheduler step below) would only spread.
		if err := checkFinite(vals, "denoise", i+1, "noise prediction"); err != nil {
			return err
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
			if err := checkFinite(p.latents, "denoise", i+1, p.name+" latents"); err != nil {
				return err
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
		res.MasksMain, res.MasksVisual, res.MasksUsedMain = ctl.Masks()
		res.Mask = ctl.LastUsedMask()
	}
	return nil
}

// hookLayout places the processes (main and visual-only first) for the
// Harmony hook.
func (r *run) hookLayout(procs []*process, cfg bool) (HookLayout, error) {
	m := r.m
	l := HookLayout{Sites: m.UNet.Sites(r.lh, r.lw), TextLen: m.TextLen, Processes: len(procs), CFG: cfg}
	if r.elite != nil {
		for k := range l.SubjectCols {
			cols, err := r.eliteSubjectCols(procs[k])
			if err != nil {
				return l, err
			}
			l.SubjectCols[k] = cols
		}
		return l, nil
	}
	l.Text = r.layout()
	if r.o.Harmony.MaskTokens == MaskVisualClass {
		l.PromptIDs = [2][]int32{procs[0].ids, procs[1].ids}
		l.ClassIDs = m.CLIP.Encode(r.o.TargetClass)
	}
	return l, nil
}
