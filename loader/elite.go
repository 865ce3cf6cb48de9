// elite.go loads an ELITE model, which is three sources together: a Stable
// Diffusion diffusers folder or repository (unet, vae, text_encoder,
// tokenizer, scheduler), a CLIP vision tower (a CLIPVisionModel folder, or
// a whole CLIPModel checkpoint of which only the vision half is read), and
// ELITE's two mapper checkpoints (global_mapper.pt, local_mapper.pt, torch
// zip pickles). As one local folder it is the Stable Diffusion layout plus
// image_encoder/ and the two mapper files at its top.
package loader

import (
	"context"
	"fmt"
	"strings"

	"harmony/engine/tensor"
)

// ELITE's component names beyond the Stable Diffusion layout.
const (
	ELITEImageEncoder = "image_encoder"
	ELITEGlobalMapper = "global_mapper"
	ELITELocalMapper  = "local_mapper"
)

// ELITEMapperFiles are the mapper checkpoints' file names, by component.
var ELITEMapperFiles = map[string]string{ELITEGlobalMapper: "global_mapper.pt", ELITELocalMapper: "local_mapper.pt"}

// ELITEMapperDir is where ELITE's repository keeps the mapper files; they
// are looked for there when the mappers' folder has none at its top.
const ELITEMapperDir = "checkpoints"

// DefaultELITE are the released parts' locations: Stable Diffusion v1-4
// (ELITE's UNet and VAE; its text encoder and tokenizer are
// clip-vit-large-patch14's), the CLIP ViT-L/14 checkpoint whose vision half
// is ELITE's image encoder, and ELITE's repository with the mappers under
// checkpoints/.
var DefaultELITE = struct{ Base, ImageEncoder, Mappers string }{
	Base:         "CompVis/stable-diffusion-v1-4",
	ImageEncoder: "openai/clip-vit-large-patch14",
	Mappers:      "ELITE-library/ELITE",
}

// OpenELITE opens the three locations of an ELITE model (folders, URLs or
// Hub repository ids, as OpenLocation); an empty imageEncoder or mappers
// means the base's own (an ELITE folder).
func OpenELITE(base, imageEncoder, mappers string) (ELITESources, error) {
	var s ELITESources
	for _, p := range []struct {
		loc string
		dst *Source
	}{{base, &s.Base}, {imageEncoder, &s.ImageEncoder}, {mappers, &s.Mappers}} {
		if p.loc == "" {
			continue
		}
		src, file, err := OpenLocation(p.loc)
		if err != nil {
			return s, err
		}
		if file != "" {
			return s, &SourceError{URL: p.loc, Op: "open", Err: fmt.Errorf("a folder or repository is needed, not a file")}
		}
		*p.dst = src
	}
	if s.Base == nil {
		return s, &SourceError{URL: base, Op: "open", Err: fmt.Errorf("no Stable Diffusion location")}
	}
	return s, nil
}

// ELITEBaseComponents are the model components read from the Stable
// Diffusion source (its safety checker is not).
var ELITEBaseComponents = []string{"text_encoder", "unet", "vae"}

// ELITESources says where each part of an ELITE model comes from.
type ELITESources struct {
	// Base is the Stable Diffusion folder or repository
	// (CompVis/stable-diffusion-v1-4), or a whole ELITE folder.
	Base Source
	// ImageEncoder is a folder or repository holding a CLIPVisionModel or
	// a whole CLIPModel (config.json and model.safetensors or
	// pytorch_model.bin at its top: openai/clip-vit-large-patch14); nil
	// reads Base's image_encoder/.
	ImageEncoder Source
	// Mappers is the folder holding global_mapper.pt and local_mapper.pt
	// (ELITE-library/ELITE's checkpoints/); nil reads Base's top.
	Mappers Source
}

// imageEncoderWeights are the weight files tried for the vision tower.
var imageEncoderWeights = []string{"model.safetensors", "pytorch_model.bin"}

// visionTensor keeps the vision half of a whole CLIPModel checkpoint.
func visionTensor(name string) bool {
	return strings.HasPrefix(name, "vision_model.") || strings.HasPrefix(name, "visual_projection.")
}

// LoadELITE loads an ELITE model onto b: Base through LoadDiffusers
// (opt.Components, when set, further restricts its model components), then
// the vision tower and the two mappers as the components image_encoder,
// global_mapper and local_mapper (weights as they are stored: names of a
// CLIPModel's vision half, the mappers' state-dict names). The model's
// Configs gain image_encoder's config.json. On failure nothing stays on b.
func LoadELITE(ctx context.Context, s ELITESources, b tensor.Backend, opt *Options) (*Model, error) {
	o := opt.defaults()
	base := o
	base.Components = nil
	for _, c := range ELITEBaseComponents {
		if o.wants(c) {
			base.Components = append(base.Components, c)
		}
	}
	if base.Components == nil {
		base.Components = []string{}
	}
	m, err := LoadDiffusers(ctx, s.Base, b, &base)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Free(b)
		}
	}()
	// The other parts are single files: their shapes are checked when the
	// models load (they have no config to check them against here).
	single := o
	single.Shapes = nil
	single.Components = nil

	enc, prefix := s.ImageEncoder, ""
	if enc == nil {
		enc, prefix = s.Base, ELITEImageEncoder+"/"
	}
	cfg, err := ReadAll(ctx, enc, prefix+"config.json", maxConfig)
	if err != nil {
		return nil, fmt.Errorf("loader: ELITE image encoder: %w", err)
	}
	if !isJSONObject(cfg) {
		return nil, formatErr(enc.String()+"/"+prefix+"config.json", "", "bad JSON")
	}
	if o.wants(ELITEImageEncoder) {
		vision := single
		vision.Keep = func(_, name string) bool { return visionTensor(name) }
		var w *tensor.Weights
		for _, n := range imageEncoderWeights {
			w, err = LoadFile(ctx, enc, prefix+n, ELITEImageEncoder, b, &vision)
			if !notFound(err) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("loader: ELITE image encoder (tried %s in %s/%s): %w", strings.Join(imageEncoderWeights, ", "), enc.String(), strings.TrimSuffix(prefix, "/"), err)
		}
		m.Weights[ELITEImageEncoder] = w
	}
	m.Configs[ELITEImageEncoder] = cfg
	m.Components = append(m.Components, Component{Name: ELITEImageEncoder, Library: "transformers", Class: "CLIPVisionModel", Kind: KindModel})

	ms := s.Mappers
	if ms == nil {
		ms = s.Base
	}
	for _, comp := range []string{ELITEGlobalMapper, ELITELocalMapper} {
		m.Components = append(m.Components, Component{Name: comp, Library: "elite", Class: "Mapper", Kind: KindModel})
		if !o.wants(comp) {
			continue
		}
		w, err := LoadFile(ctx, ms, ELITEMapperFiles[comp], comp, b, &single)
		if notFound(err) {
			// A whole ELITE-library/ELITE repository keeps them there.
			w, err = LoadFile(ctx, ms, ELITEMapperDir+"/"+ELITEMapperFiles[comp], comp, b, &single)
		}
		if err != nil {
			return nil, fmt.Errorf("loader: ELITE %s: %w", comp, err)
		}
		m.Weights[comp] = w
	}
	ok = true
	return m, nil
}
