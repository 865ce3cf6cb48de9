// whole.go splits a whole CLIPModel checkpoint (both towers and their
// projections in one file, as openai/clip-vit-* are released) into the
// two towers' weights, so that each model owns exactly its own tensors.

package clip

import (
	"strings"

	"harmony/engine/tensor"
)

// SplitWhole moves w's tensors into vision (vision_model.*,
// visual_projection.*) and text (text_model.*, text_projection.*) sets and
// frees the rest (logit_scale); w is empty afterwards. Each set can then
// be given to LoadVision and LoadText, which own it.
func SplitWhole(b tensor.Backend, w *tensor.Weights) (vision, text *tensor.Weights) {
	vision, text = tensor.NewWeights(w.Component+".vision"), tensor.NewWeights(w.Component+".text")
	for _, name := range w.Names() {
		t, err := w.Get(name)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, visionPrefix+"."), strings.HasPrefix(name, "visual_projection."):
			vision.Put(name, t)
		case strings.HasPrefix(name, prefix+"."), strings.HasPrefix(name, "text_projection."):
			text.Put(name, t)
		default:
			b.Free(t)
		}
	}
	// The tensors now belong to the two sets: forget them here without
	// freeing.
	*w = *tensor.NewWeights(w.Component)
	return vision, text
}
