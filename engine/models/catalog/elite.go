// elite.go is the ELITE checkpoint: Stable Diffusion v1-4's components
// (text encoder, UNet, VAE, tokenizer, scheduler), the CLIP ViT-L/14 vision
// tower as image_encoder, and ELITE's global and local mappers, whose files
// (global_mapper.pt, local_mapper.pt, at the model's top) have no config:
// they are sized from their tensors when they load. The UNet loads after
// the mappers and takes their attention projections (unet.LoadELITE).
package catalog

import (
	"errors"
	"fmt"
	"maps"

	"harmony/engine/models/clip"
	"harmony/engine/models/elite"
	"harmony/engine/models/released"
	"harmony/engine/models/unet"
	"harmony/engine/models/vae"
	"harmony/engine/tensor"
)

// ELITE lists the components in load order: the mappers before the UNet.
var ELITE = Table{
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
	Define(Spec[clip.VisionConfig, *clip.VisionModel]{
		Name:       "image_encoder",
		WeightFile: "model.safetensors",
		Parse:      clip.ParseVisionConfig,
		Tensors:    clip.VisionTensors,
		Stored: func(cfg clip.VisionConfig) map[string][]int {
			m := clip.VisionTensors(cfg)
			m["vision_model.embeddings.position_ids"] = []int{1, cfg.Positions()} // transformers 4.26 saves the buffer
			return m
		},
		Load: clip.LoadVision,
	}),
	mapperComponent("global_mapper", func(b tensor.Backend, cfg elite.MapperConfig, w *tensor.Weights) (Model, error) {
		return elite.LoadMapper(b, cfg, w)
	}),
	mapperComponent("local_mapper", func(b tensor.Backend, cfg elite.MapperConfig, w *tensor.Weights) (Model, error) {
		return elite.LoadMapperLocal(b, cfg, w)
	}),
	Define(Spec[*unet.Config, *unet.UNet]{
		Name:       "unet",
		WeightFile: "diffusion_pytorch_model.safetensors",
		Parse:      unet.ParseConfig,
		Tensors:    unet.Tensors,
		Load:       unet.Load,
		LoadAfter:  loadELITEUNet,
	}),
	Define(Spec[*vae.Config, *vae.Decoder]{
		Name:       "vae",
		WeightFile: "diffusion_pytorch_model.safetensors",
		Parse:      vae.ParseConfig,
		Tensors:    vae.Tensors,
		Stored: func(cfg *vae.Config) map[string][]int {
			c := *cfg
			c.LegacyAttentionNames = true // SD v1-4's VAE file keeps the diffusers ≤ 0.16 attention names
			return vae.Tensors(&c)
		},
		Load: vae.Load,
	}),
	{Name: "scheduler", ConfigFile: "scheduler/scheduler_config.json"},
	{Name: "tokenizer", ConfigFile: "tokenizer/tokenizer_config.json"},
}

// mapperComponent is a mapper file at the model's top. Its config is the
// file itself: Parse ignores its input and Load sizes the mapper from the
// tensors (elite.MapperConfigOf), so Tensors (for the zero config) checks
// nothing before then. Stored is the released file.
func mapperComponent(name string, load func(tensor.Backend, elite.MapperConfig, *tensor.Weights) (Model, error)) Component {
	file := name + ".pt"
	return Component{
		Name:       name,
		WeightFile: file,
		Parse:      func([]byte) (any, error) { return elite.MapperConfig{}, nil },
		Tensors:    func(cfg any) map[string][]int { return elite.MapperTensors(cfg.(elite.MapperConfig)) },
		Stored:     func(any) map[string][]int { return ReleasedMapperTensors() },
		Load: func(b tensor.Backend, _ any, w *tensor.Weights) (Model, error) {
			cfg, err := elite.MapperConfigOf(file, w)
			if err != nil {
				return nil, err
			}
			return load(b, cfg, w)
		},
	}
}

// ReleasedMapperTensors is every tensor of ELITE's released
// global_mapper.pt (local_mapper.pt has the same names and shapes): the
// mapping networks and the attention projections of SD v1-4's UNet.
func ReleasedMapperTensors() map[string][]int {
	r := released.ELITEMapper
	cfg, err := unet.ParseConfig([]byte(released.UNet))
	if err != nil {
		panic(fmt.Sprintf("catalog: the released UNet config does not parse: %v", err))
	}
	return MapperFileTensors(elite.MapperConfig{In: r.In, Hidden: r.Hidden, Out: r.Out, Words: r.Words}, cfg)
}

// MapperFileTensors is every tensor of an ELITE mapper file for a mapper of
// cfg beside a UNet of ucfg (ELITE's mappers: In = the vision tower's width,
// Out = the UNet's cross_attention_dim, Hidden 1024, Words 5).
func MapperFileTensors(cfg elite.MapperConfig, ucfg *unet.Config) map[string][]int {
	m := elite.MapperTensors(cfg)
	maps.Copy(m, unet.MapperKVTensors(ucfg))
	return m
}

// loadELITEUNet builds ELITE's UNet from SD's weights and the attention
// projections the mappers loaded before it set aside.
func loadELITEUNet(b tensor.Backend, cfg *unet.Config, w *tensor.Weights, loaded map[string]Model) (*unet.UNet, error) {
	g, ok1 := loaded["global_mapper"].(*elite.Mapper)
	l, ok2 := loaded["local_mapper"].(*elite.MapperLocal)
	if !ok1 || !ok2 || g.KV == nil || l.KV == nil {
		return nil, errors.New("unet: ELITE's UNet loads after global_mapper and local_mapper (their attention projections)")
	}
	u, err := unet.LoadELITE(b, cfg, w, g.KV, l.KV)
	if err != nil {
		return nil, err
	}
	// The UNet took the projections; what else the files held is freed
	// with the mappers.
	return u, nil
}
