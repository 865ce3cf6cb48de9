// elite.go: ELITE's cross-attention (Wei et al., ICCV 2023). Every attn2
// reads its keys and values from the text embeddings through ELITE's
// fine-tuned global projections (SD's own attn2 to_k/to_v are replaced at
// load), and a conditional call adds a local term:
//
//	P  = softmax(Q·Kᵀ·d^-½)              global probabilities [B·H, N, T]
//	Pl = softmax(Q·Klᵀ·d^-½)             Kl, Vl = to_k_local/to_v_local(L)
//	M  = P[:, :, s_b] / max M            the placeholder's column, per head
//	O  = P·V + λ_b·(Pl ⊙ M)·Vl
//
// computed as three attention calls (global; the column, read out of the
// softmax with one-hot values; local) and LocalMix. M's maximum is taken per
// batch entry, which is what ELITE computes for a batch of one (it runs its
// conditional and unconditional passes as separate calls); entries without
// a placeholder (index −1: the unconditional rows of a batched call) get no
// local term.
package unet

import (
	"fmt"
	"sort"
	"strings"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// Local is ELITE's local branch for one UNet call.
type Local struct {
	// Features are the local mapper's output [B, Nl, cross_attention_dim]
	// (masked patches zero: they stay in the local softmax). Rows whose
	// Index is −1 are read but add nothing.
	Features *tensor.Tensor
	// Index is, per batch entry, the placeholder's row in the context
	// (ELITE's LOCAL_INDEX), or −1 for no local term.
	Index []int
	// Lambda is λ (ELITE's LAMBDA, 0.8 in its scripts): one value for
	// every entry, or one per entry.
	Lambda []float32
}

// weights is λ per batch entry, 0 where there is no placeholder.
func (l *Local) weights(nb int) []float32 {
	w := make([]float32, nb)
	for i := range w {
		if l.Index[i] >= 0 {
			w[i] = l.Lambda[min(i, len(l.Lambda)-1)]
		}
	}
	return w
}

// MapperName is the name ELITE's mapper checkpoints give an attention
// projection: the module path with "." → "_", then "_<proj>.weight"
// ("down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.weight").
func MapperName(attnPath, proj string) string {
	return strings.ReplaceAll(attnPath, ".", "_") + "_" + proj + ".weight"
}

// attn2Paths lists the module path of every attn2 of cfg, in call order.
func attn2Paths(cfg *Config) []string {
	var out []string
	for _, s := range SitesFor(cfg, 8, 8) {
		if strings.HasSuffix(s.Name, ".attn2") {
			out = append(out, s.Name)
		}
	}
	return out
}

// MapperKVTensors lists the attention projections an ELITE mapper
// checkpoint (global_mapper.pt, local_mapper.pt) holds for a UNet of cfg:
// to_k and to_v of every attn2 under MapperName, [inner, cross_attention_dim].
func MapperKVTensors(cfg *Config) map[string][]int {
	shapes := Tensors(cfg)
	out := map[string][]int{}
	for _, p := range attn2Paths(cfg) {
		for _, proj := range []string{"to_k", "to_v"} {
			out[MapperName(p, proj)] = shapes[p+"."+proj+".weight"]
		}
	}
	return out
}

// ELITETensors lists every state-dict name an ELITE UNet reads (after
// LoadELITE's renaming): Tensors plus attn2's to_k_local/to_v_local.
func ELITETensors(cfg *Config) map[string][]int {
	v := nn.Recorder()
	build(v, cfg, true)
	return v.Shapes()
}

// LoadELITE builds ELITE's UNet: w holds Stable Diffusion's UNet, global
// and local the attention projections of ELITE's global and local mapper
// checkpoints (MapperKVTensors; other tensors there are ignored). Every
// attn2's to_k/to_v become global's (SD's own are freed: ELITE never uses
// them) and its to_k_local/to_v_local local's. Shapes are checked before
// anything moves; on success the UNet owns w and the tensors taken from
// global and local.
func LoadELITE(b tensor.Backend, cfg *Config, w, global, local *tensor.Weights) (*UNet, error) {
	kv := MapperKVTensors(cfg)
	names := make([]string, 0, len(kv))
	for n := range kv {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, src := range []*tensor.Weights{global, local} {
		for _, n := range names {
			if _, err := src.Shaped(n, kv[n]...); err != nil {
				return nil, fmt.Errorf("unet: load: %w", err)
			}
		}
	}
	for _, p := range attn2Paths(cfg) {
		for _, proj := range []string{"to_k", "to_v"} {
			mn := MapperName(p, proj)
			g, _ := global.Take(mn)
			l, _ := local.Take(mn)
			if old, err := w.Take(p + "." + proj + ".weight"); err == nil && old != g {
				b.Free(old)
			}
			w.Put(p+"."+proj+".weight", g)
			w.Put(p+"."+proj+"_local.weight", l)
		}
	}
	v := nn.NewVars(b, w)
	u := build(v, cfg, true)
	if err := v.Finish("unet"); err != nil {
		return nil, err
	}
	u.weights = w
	u.fused = v.Fused()
	return u, nil
}

// ELITE reports whether the UNet has ELITE's local branch.
func (u *UNet) ELITE() bool { return u.elite }

// checkLocal validates ForwardLocal's local branch.
func (u *UNet) checkLocal(sample, ctx *tensor.Tensor, l *Local) error {
	if l == nil {
		return nil
	}
	if !u.elite {
		return fmt.Errorf("unet: a local branch was given to a UNet without ELITE's local projections (load it with LoadELITE)")
	}
	nb := sample.Shape[0]
	f := l.Features
	if f == nil || len(f.Shape) != 3 || f.Shape[0] != nb || f.DType != tensor.F32 || f.Shape[1] == 0 {
		return fmt.Errorf("unet: local features %v must be f32 [%d, Nl, D]", f, nb)
	}
	for _, d := range u.contextDims {
		if f.Shape[2] != d {
			return fmt.Errorf("unet: local feature width %d, the config's cross_attention_dim is %d", f.Shape[2], d)
		}
	}
	if len(l.Index) != nb {
		return fmt.Errorf("unet: %d placeholder indices for batch %d", len(l.Index), nb)
	}
	for i, s := range l.Index {
		if s < -1 || s >= ctx.Shape[1] {
			return fmt.Errorf("unet: placeholder index %d of batch entry %d outside [0, %d) (−1: no local term)", s, i, ctx.Shape[1])
		}
	}
	if len(l.Lambda) != 1 && len(l.Lambda) != nb {
		return fmt.Errorf("unet: %d local weights for batch %d (want 1 or %d)", len(l.Lambda), nb, nb)
	}
	return nil
}

// oneHotValues is [B, Nk, heads] with 1 at key Index[b] of entry b (every
// head), else 0: attention over it returns each head's probability of the
// placeholder's key, [B, N, heads].
func (f *fwd) oneHotValues(b tensor.Backend, heads, nb, nk int) *tensor.Tensor {
	if t := f.oneHot[heads]; t != nil {
		return t
	}
	v := make([]float32, nb*nk*heads)
	for bi, s := range f.local.Index {
		if s >= 0 {
			for h := range heads {
				v[(bi*nk+s)*heads+h] = 1
			}
		}
	}
	t := b.FromF32("elite.onehot", v, nb, nk, heads)
	if f.oneHot == nil {
		f.oneHot = map[int]*tensor.Tensor{}
	}
	f.oneHot[heads] = t
	return t
}

// addLocal adds ELITE's local term to the global attention output o (freed)
// of the layer's queries q over the context keys k.
func (a *attention) addLocal(b tensor.Backend, f *fwd, site nn.Site, q, k, o *tensor.Tensor) *tensor.Tensor {
	nb, nk := k.Shape[0], k.Shape[1]
	col, _ := a.Attend(b, q, k, f.oneHotValues(b, a.Heads, nb, nk), tensor.AttnOpts{})
	f.trace.Record(site.Name+".placeholder_probs", col)
	var kl, vl *tensor.Tensor
	if a.lctx != nil {
		t := f.contextProjection(b, a.lctx, f.local.Features)
		kl, vl = slab(b, t, 2*a.lslot), slab(b, t, 2*a.lslot+1)
	} else {
		kl = a.kLocal.Forward(b, f.local.Features, tensor.Epilogue{})
		vl = a.vLocal.Forward(b, f.local.Features, tensor.Epilogue{})
		defer b.Free(kl, vl)
	}
	ol, _ := a.Attend(b, q, kl, vl, tensor.AttnOpts{})
	out := b.LocalMix(o, ol, col, f.local.weights(nb))
	b.Free(o, ol, col)
	return out
}

// attentionNamed finds the attention layer at a module path
// ("down_blocks.0.attentions.0.transformer_blocks.0.attn2").
func (u *UNet) attentionNamed(name string) *attention {
	var found *attention
	visit := func(ts []*transformer2D) {
		for _, t := range ts {
			if t == nil {
				continue
			}
			for _, bb := range t.blocks {
				for _, a := range []*attention{&bb.attn1, &bb.attn2} {
					if a.site.Name == name {
						found = a
					}
				}
			}
		}
	}
	for _, d := range u.down {
		visit(d.attns)
	}
	if u.mid != nil {
		visit(u.mid.attns)
	}
	for _, ub := range u.up {
		visit(ub.attns)
	}
	return found
}

// ForwardAttention runs one attention layer on its normalized input x
// [B, N, C] (N = h·w) as the UNet would, output projection included and
// no residual: self-attention for an attn1, cross-attention over context
// (with ELITE's local branch when local is given) for an attn2. Module-level
// tests and tools read one layer with it; the Trace receives what the
// layer records ("<name>.placeholder_probs").
func (u *UNet) ForwardAttention(b tensor.Backend, name string, x, context *tensor.Tensor, local *Local, hook nn.Hook, h, w int) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	a := u.attentionNamed(name)
	if a == nil {
		return nil, fmt.Errorf("unet: no attention layer %q", name)
	}
	if x == nil || len(x.Shape) != 3 || x.Shape[1] != h*w || x.DType != tensor.F32 {
		return nil, fmt.Errorf("unet: attention input %v must be f32 [B, %d, C]", x, h*w)
	}
	kv := x
	if a.site.Cross {
		if context == nil || len(context.Shape) != 3 || context.Shape[0] != x.Shape[0] {
			return nil, fmt.Errorf("unet: %s reads a context [%d, T, D], not %v", name, x.Shape[0], context)
		}
		kv = context
		sample := &tensor.Tensor{Shape: []int{x.Shape[0], h, w, u.Config.InChannels}}
		if err := u.checkLocal(sample, context, local); err != nil {
			return nil, err
		}
	} else if local != nil {
		return nil, fmt.Errorf("unet: %s is a self-attention: no local branch", name)
	}
	f := &fwd{hook: hook, trace: u.Trace, chunk: u.FFChunkElems, context: context, local: local}
	defer f.free(b)
	out := a.forward(b, x, kv, nil, f, h, w)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}
