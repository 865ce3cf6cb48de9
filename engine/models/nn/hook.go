// hook.go defines how a denoiser's attention layers are named, observed
// and altered from outside (the Harmony method reads cross-attention
// probabilities and swaps self-attention keys and values), and how models
// hand out intermediate tensors. Any UNet-like model lists its layers as
// Sites and calls a Hook, so the method never imports the model.
package nn

import "harmony/engine/tensor"

// Site identifies one attention layer.
type Site struct {
	Name  string // full module path, e.g. "up_blocks.1.attentions.0.transformer_blocks.0.attn1"
	Block string // "down", "mid", "up"
	Index int    // block index
	Level int    // resolution level: number of downsamplings of the latent (0 = full res)
	Cross bool   // keys are the context tokens (attn2, or attn1 with only_cross_attention)
	H, W  int    // spatial size of the layer's tokens
}

// Hook observes and alters attention layers.
type Hook interface {
	// Attention is called before each attention layer; it returns extra
	// options (ProbCols, Swap) for this call (zero values = plain attention).
	Attention(site Site) (probCols [2]int, swap *tensor.Swap)
	// Probs receives the head-averaged probabilities when probCols was set
	// (the hook owns and frees the tensor).
	Probs(site Site, probs *tensor.Tensor)
}

// Sited is a model whose attention layers a Hook sees: Sites lists them in
// call order for a latent of h×w.
type Sited interface {
	Sites(h, w int) []Site
}

// Trace receives intermediate tensors by module path. The tensor belongs
// to the model and is freed after the call returns: read it, do not keep
// it. Off (nil) it costs a model one nil check per module.
type Trace func(name string, t *tensor.Tensor)

// Record hands t to the trace when there is one.
func (tr Trace) Record(name string, t *tensor.Tensor) {
	if tr != nil {
		tr(name, t)
	}
}
