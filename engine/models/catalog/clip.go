// clip.go lists the CLIP vision tower as a component: ELITE's
// image_encoder folder (CLIPVisionModel) and the image side of a whole
// CLIPModel checkpoint read the same way, names under vision_model. and,
// with a projection, visual_projection.
package catalog

import "harmony/engine/models/clip"

// CLIPImageEncoder is the image_encoder component of a checkpoint that
// carries a CLIP vision tower (config.json a CLIPVisionConfig or a whole
// CLIPConfig).
// transformers ≥ 4.31 no longer saves the position_ids buffer, so the
// stored tensors are the ones read.
var CLIPImageEncoder = Define(Spec[clip.VisionConfig, *clip.VisionModel]{
	Name:       "image_encoder",
	WeightFile: "model.safetensors",
	Parse:      clip.ParseVisionConfig,
	Tensors:    clip.VisionTensors,
	Load:       clip.LoadVision,
})
