// elitegen.go: stages 2–3 of a generation on ELITE (elite.md A.2–A.9),
// with Harmony as elite.md B.3–B.4 adapt it:
//
//  2. the reference: the photo and its mask → the global input (the whole
//     photo) and the object input (background black) → the CLIP vision
//     tower → the global mapper's w0 and the local mapper's patch
//     features, zeroed outside the subject's patch mask;
//  3. the prompts: w0 injected at the placeholder's row of the prompt
//     (ELITE's word rule), the negative prompt plain; with Harmony the
//     placeholder row orthogonalised against the prompt's text rows (only
//     that row changes, after the text encoder), and the visual-only
//     process's prompt ("a S") with w0 injected, not orthogonalised.
//
// Stages 4–8 are the common ones (sample): every UNet call carries all
// processes, [uncond…, cond…], the conditional rows with ELITE's local
// branch at their own placeholder row and λ, the unconditional ones
// without it.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"harmony/engine/harmony"
	"harmony/engine/models/elite"
	"harmony/engine/tensor"
)

// eliteRun is what an ELITE generation adds to the run.
type eliteRun struct {
	local  *tensor.Tensor // the local mapper's features [1, Nl, D], masked
	lambda float32
}

// WholePhotoWarning is the warning of an ELITE run without a mask.
const WholePhotoWarning = "no subject mask was given: the whole photo is the subject (ELITE's local branch sees the background too)"

// encodeReference is stage 2 on ELITE: w0 [1, 1, D] and the masked local
// features [1, Nl, D]. The caller frees both.
//
// The last photo's encoding is kept on the host: generating again from the
// same photo and mask (another prompt, seed or knob) skips the vision tower
// and the mappers.
func (r *run) encodeReference(ctx context.Context) (w0, local *tensor.Tensor, err error) {
	m, b, o := r.m, r.b, &r.o
	e := m.elite
	key := referenceKey(o.Image, o.Mask)
	if c := e.cache; c != nil && c.key == key {
		if c.wholePhoto {
			r.res.Warnings = append(r.res.Warnings, WholePhotoWarning)
		}
		return b.FromF32("w0", c.w0, c.w0Shape...), b.FromF32("local", c.local, c.localShape...), nil
	}
	w0, local, whole, err := r.encodePhoto(ctx)
	if err != nil {
		return nil, nil, err
	}
	if whole {
		r.res.Warnings = append(r.res.Warnings, WholePhotoWarning)
	}
	c := &referenceCache{key: key, wholePhoto: whole, w0Shape: slices.Clone(w0.Shape), localShape: slices.Clone(local.Shape)}
	if c.w0, err = b.Read(ctx, w0); err == nil {
		c.local, err = b.Read(ctx, local)
	}
	if err != nil {
		b.Free(w0, local)
		return nil, nil, err
	}
	e.cache = c
	return w0, local, nil
}

// referenceCache is one photo's encoding on the host.
type referenceCache struct {
	key                 [sha256.Size]byte
	wholePhoto          bool
	w0, local           []float32
	w0Shape, localShape []int
}

// referenceKey identifies a photo and its mask.
func referenceKey(photo, mask []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, d := range [][]byte{photo, mask} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	if mask == nil {
		h.Write([]byte{1}) // no mask, as opposed to an empty one
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// encodePhoto runs the vision tower and both mappers on the photo.
func (r *run) encodePhoto(ctx context.Context) (w0, local *tensor.Tensor, wholePhoto bool, err error) {
	m, b, o := r.m, r.b, &r.o
	e := m.elite
	ref, err := EliteInputs(o.ImageName, o.Image, o.MaskName, o.Mask, e.VisionSize, e.VisionGrid)
	if err != nil {
		return nil, nil, false, err
	}
	wholePhoto = ref.WholePhoto
	s := ref.Size
	features := func(name string, px []float32) ([]*tensor.Tensor, func(), error) {
		pixels := b.FromF32(name, px, 1, s, s, 3)
		out, err := e.Vision.Forward(b, pixels)
		b.Free(pixels)
		if err != nil {
			return nil, nil, err
		}
		feats, err := elite.Features(out.Hidden)
		if err != nil {
			out.Free(b)
			return nil, nil, err
		}
		return feats, func() { out.Free(b) }, nil
	}
	gf, freeG, err := features("pixel_values_clip", ref.Global)
	if err != nil {
		return nil, nil, false, err
	}
	words, err := e.Global.Forward(b, gf)
	freeG()
	if err != nil {
		return nil, nil, false, err
	}
	w0 = b.Slice(words, 1, 0, 1)
	b.Free(words)
	if err := ctx.Err(); err != nil {
		b.Free(w0)
		return nil, nil, false, err
	}
	of, freeO, err := features("pixel_values_obj", ref.Object)
	if err != nil {
		b.Free(w0)
		return nil, nil, false, err
	}
	mask := b.FromF32("mask16", ref.Mask, 1, len(ref.Mask))
	local, err = e.Local.Forward(b, of, mask)
	b.Free(mask)
	freeO()
	if err != nil {
		b.Free(w0)
		return nil, nil, false, err
	}
	if err := b.Err(); err != nil {
		b.Free(w0, local)
		return nil, nil, false, err
	}
	return w0, local, wholePhoto, nil
}

// elitePromptFor tokenizes an ELITE prompt to the text length and finds its
// placeholder row, refusing a prompt whose row is 0 (no placeholder: ELITE
// would overwrite BOS) or beyond the text.
func (r *run) elitePromptFor(option, text string) (elitePrompt, error) {
	m, o := r.m, &r.o
	idx := PlaceholderIndex(text, o.Placeholder)
	if idx == 0 {
		return elitePrompt{}, optErr(option, text, "must contain the placeholder word %q", o.Placeholder)
	}
	if idx >= m.TextLen {
		return elitePrompt{}, optErr(option, text, "puts the placeholder at word %d, past the text encoder's %d positions", idx, m.TextLen)
	}
	enc, err := m.CLIP.EncodePadded(text, m.TextLen)
	if err != nil {
		return elitePrompt{}, err
	}
	if enc.Truncated {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("the prompt %q needs %d tokens; like ELITE, it is truncated to %d", text, enc.Needed, m.TextLen))
	}
	ph := m.CLIP.Encode(o.Placeholder)
	if len(ph) > 0 && enc.IDs[idx] != ph[0] {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("in %q the placeholder is word %d, but token %d is not its token: ELITE's rule counts one token per word, so the subject is injected there anyway", text, idx-1, idx))
	}
	return elitePrompt{text: text, ids: enc.IDs, index: idx}, nil
}

// visualPromptText is the visual-only prompt with S replaced by the
// placeholder word.
func visualPromptText(template, placeholder string) string {
	words := strings.Split(template, " ")
	for i, w := range words {
		if w == "S" {
			words[i] = placeholder
		}
	}
	return strings.Join(words, " ")
}

// generateELITE runs stages 2–3 on ELITE, then the common stages.
func (r *run) generateELITE(ctx context.Context) (*Result, error) {
	m, b, o, res := r.m, r.b, &r.o, r.res
	harmonyOn := o.Method == MethodHarmony

	// 2. The reference.
	w0, local, err := r.encodeReference(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Free(w0)
	r.elite = &eliteRun{local: local, lambda: float32(o.LocalWeight)}
	defer b.Free(local)
	if res.W0, err = b.Read(ctx, w0); err != nil {
		return nil, err
	}
	if res.Local, err = b.Read(ctx, local); err != nil {
		return nil, err
	}
	res.LocalShape = append([]int(nil), local.Shape...)
	res.W0Shape = append([]int(nil), w0.Shape...)

	// 3. The prompts.
	mp, err := r.elitePromptFor("prompt", o.Prompt)
	if err != nil {
		return nil, err
	}
	cond, err := m.Text.EncodeInjected(b, [][]int32{mp.ids}, w0, []int{mp.index})
	if err != nil {
		return nil, err
	}
	main := &process{name: "main", cond: cond, ids: mp.ids, index: mp.index}
	procs := []*process{main}
	defer func() {
		seen := map[*tensor.Tensor]bool{cond: true}
		b.Free(cond)
		for _, p := range procs {
			if !seen[p.cond] {
				seen[p.cond] = true
				b.Free(p.cond)
			}
		}
	}()
	var uncond *tensor.Tensor
	if o.Guidance > 1 {
		if uncond, err = r.encodeNegative(); err != nil {
			return nil, err
		}
		defer b.Free(uncond)
	}
	var visual, base *process
	if harmonyOn {
		if res.Embedding, err = b.Read(ctx, cond); err != nil {
			return nil, err
		}
		res.EmbeddingShape = []int{1, m.TextLen, m.Hidden}
		res.EmbeddingOrtho = res.Embedding
		if o.Harmony.Ortho {
			orth, err := r.orchestrateELITE(mp, res.Embedding)
			if err != nil {
				return nil, err
			}
			res.EmbeddingOrtho = orth
			main.cond = b.FromF32("cond.ortho", orth, 1, m.TextLen, m.Hidden)
		}
		if o.Harmony.Swap {
			vp, err := r.elitePromptFor("visual-prompt", visualPromptText(o.Harmony.VisualPrompt, o.Placeholder))
			if err != nil {
				return nil, err
			}
			vc, err := m.Text.EncodeInjected(b, [][]int32{vp.ids}, w0, []int{vp.index})
			if err != nil {
				return nil, err
			}
			visual = &process{name: "visual", cond: vc, ids: vp.ids, index: vp.index}
			procs = append(procs, visual)
		}
		if o.Compare {
			base = &process{name: "baseline", cond: cond, ids: mp.ids, index: mp.index}
			procs = append(procs, base)
		}
		if o.Harmony.MainFromVisual && visual != nil {
			if main.cond != cond {
				b.Free(main.cond)
			}
			main.cond, main.ids, main.index = b.Reshape(visual.cond, visual.cond.Shape...), visual.ids, visual.index
		}
	}
	res.Timings.Encode = time.Since(r.start)
	return r.sample(ctx, procs, uncond, main, visual, base)
}

// eliteClassIDs is the class word's ids when one is given (B.4.2).
func (r *run) eliteClassIDs() []int32 {
	if c := strings.TrimSpace(r.o.TargetClass); c != "" {
		return r.m.CLIP.Encode(c)
	}
	return nil
}

// orchestrateELITE projects the placeholder's row of the main prompt's
// embedding off the span of its text rows (elite.md B.3.1–3, B.4.1–3).
func (r *run) orchestrateELITE(p elitePrompt, E []float32) ([]float32, error) {
	m := r.m
	rows, err := harmony.ClassifyInjectedRows(p.ids, p.index, m.CLIP.Encode(r.o.Placeholder), r.eliteClassIDs(), m.CLIP.BOS(), m.CLIP.EOS())
	if err != nil {
		return nil, err
	}
	opt := harmony.DefaultOrthoOptions()
	opt.Mode, opt.ExcludeClass = r.o.Harmony.OrthoMode, r.o.Harmony.ExcludeClass
	res, err := harmony.Orthogonalize(E, m.Hidden, rows, opt)
	if err != nil {
		return nil, err
	}
	if res.Warning != "" {
		r.res.Warnings = append(r.res.Warnings, res.Warning)
	}
	return res.E, nil
}

// eliteSubjectCols are a process's mask columns: its placeholder row, and
// with mask-tokens visual+class its class rows (none without a class word).
func (r *run) eliteSubjectCols(p *process) ([]int, error) {
	cols := []int{p.index}
	if r.o.Harmony.MaskTokens != MaskVisualClass {
		return cols, nil
	}
	m := r.m
	rows, err := harmony.ClassifyInjectedRows(p.ids, p.index, m.CLIP.Encode(r.o.Placeholder), r.eliteClassIDs(), m.CLIP.BOS(), m.CLIP.EOS())
	if err != nil {
		return nil, err
	}
	return harmony.SubjectColumns(rows, true), nil
}

// eliteLocal is the local branch of one UNet call for the batch
// [uncond × P, cond × P] (cfg) or [cond × P]: the same features in every
// row, each conditional row at its process's placeholder row, the
// unconditional rows without the local term. The caller frees Features.
func (r *run) eliteLocal(procs []*process, cfg bool) (*tensor.Tensor, []int) {
	var idx []int
	if cfg {
		for range procs {
			idx = append(idx, -1)
		}
	}
	for _, p := range procs {
		idx = append(idx, p.index)
	}
	parts := make([]*tensor.Tensor, len(idx))
	for i := range parts {
		parts[i] = r.elite.local
	}
	return r.b.Concat(0, parts...), idx
}
