// blipdiffusion.go is the BLIP-Diffusion checkpoint (Salesforce/blipdiffusion's
// diffusers folder and its state dicts): text encoder, subject encoder, UNet and VAE, then the scheduler
// and image processor configs.
package catalog

import (
	"harmony/engine/models/blip2"
	"harmony/engine/models/clip"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
)

// BLIPDiffusion lists the components in the order their files are
// written.
var BLIPDiffusion = Table{
	Define(Spec[clip.Config, *clip.TextModel]{
		Name:       "text_encoder",
		WeightFile: "model.safetensors",
		Parse:      clip.ParseConfig,
		Tensors:    clip.Tensors,
		Stored: func(cfg clip.Config) map[string][]int {
			m := clip.Tensors(cfg)
			m["text_model.embeddings.position_ids"] = []int{1, cfg.MaxPositions}
			return m
		},
		Load: clip.Load,
	}),
	Define(Spec[blip2.Config, *blip2.QFormer]{
		Name:       "qformer",
		WeightFile: "model.safetensors",
		Parse:      blip2.ParseConfig,
		Tensors:    blip2.Tensors,
		Stored: func(cfg blip2.Config) map[string][]int {
			m := blip2.Tensors(cfg)
			m["embeddings.position_ids"] = []int{1, cfg.QFormer.MaxPositions}
			return m
		},
		Load: blip2.Load,
	}),
	Define(Spec[*unet.Config, *unet.UNet]{
		Name:       "unet",
		WeightFile: "diffusion_pytorch_model.safetensors",
		Parse:      unet.ParseConfig,
		Tensors:    unet.Tensors,
		Load:       unet.Load,
	}),
	Define(Spec[*vae.Config, *vae.Decoder]{
		Name:       "vae",
		WeightFile: "diffusion_pytorch_model.safetensors",
		Parse:      vae.ParseConfig,
		Tensors:    vae.Tensors,
		Stored: func(cfg *vae.Config) map[string][]int {
			c := *cfg
			c.LegacyAttentionNames = true // the released VAE was saved by diffusers ≤ 0.16 (query/key/value/proj_attn names)
			return vae.Tensors(&c)
		},
		Load: vae.Load,
	}),
	{Name: "scheduler", ConfigFile: "scheduler/scheduler_config.json"},
	{Name: "image_processor", ConfigFile: "image_processor/preprocessor_config.json"},
}
