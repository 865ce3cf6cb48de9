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
	"encoding/json"
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

// LoadELITE loads an ELITE model onto b: Base's Stable Diffusion
// components (opt.Components, when set, further restricts them and the
// parts below), the vision tower and the two mappers as the components
// image_encoder, global_mapper and local_mapper (weights as stored: names of
// a CLIPModel's vision half, the mappers' state-dict names). The model's
// Configs gain image_encoder's config.json and its index the three
// components. A Base that is a pack (WriteELITEPack) holds every part. On
// failure nothing stays on b.
func LoadELITE(ctx context.Context, s ELITESources, b tensor.Backend, opt *Options) (*Model, error) {
	if s.ImageEncoder == nil && s.Mappers == nil {
		if f, err := s.Base.Open(ctx, ManifestName); err == nil {
			f.Close()
			m, err := LoadPack(ctx, s.Base, b, opt)
			if err != nil {
				return nil, err
			}
			for _, c := range []string{ELITEImageEncoder, ELITEGlobalMapper, ELITELocalMapper} {
				if _, ok := m.Component(c); !ok {
					m.Free(b)
					return nil, fmt.Errorf("loader: %s: the pack has no %s: not an ELITE pack", s.Base.String(), c)
				}
			}
			return m, nil
		}
	}
	o := opt.defaults()
	d, err := openELITE(ctx, s, &o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	ws, err := d.toBackend(ctx, b, &o)
	if err != nil {
		return nil, err
	}
	m := d.model
	m.Weights = ws
	for _, dc := range d.comps {
		if m.Weights[dc.c.Name] == nil {
			m.Weights[dc.c.Name] = tensor.NewWeights(dc.c.Name)
		}
	}
	return m, nil
}

// WriteELITEPack writes the ELITE model of s as one pack (WritePack): its
// index lists image_encoder, global_mapper and local_mapper beside the
// Stable Diffusion components, and LoadELITE (or Load) reads it back.
func WriteELITEPack(ctx context.Context, s ELITESources, outDir string, opt *PackOptions) (*Manifest, error) {
	var po PackOptions
	if opt != nil {
		po = *opt
	}
	o := po.options()
	d, err := openELITE(ctx, s, &o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	return writePack(ctx, d, outDir, po, o)
}

// openELITE opens the three sources as one layout: Base's model
// components, then image_encoder and the mappers, each a component with
// its own files. o.Keep gains the vision-half filter.
func openELITE(ctx context.Context, s ELITESources, o *Options) (*diffusers, error) {
	base := *o
	base.Components = []string{}
	for _, c := range ELITEBaseComponents {
		if o.wants(c) {
			base.Components = append(base.Components, c)
		}
	}
	d, err := openDiffusers(ctx, s.Base, &base)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	keep := o.Keep
	o.Keep = func(comp, name string) bool {
		if comp == ELITEImageEncoder && !visionTensor(name) {
			return false
		}
		return keep == nil || keep(comp, name)
	}

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
	add := func(c Component, src Source, names ...string) error {
		d.model.Components = append(d.model.Components, c)
		if !o.wants(c.Name) {
			return nil
		}
		var w *weightFile
		var err error
		for _, n := range names {
			if w, err = openWeightFile(ctx, src, n); !notFound(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("loader: ELITE %s (tried %s in %s): %w", c.Name, strings.Join(names, ", "), src.String(), err)
		}
		d.comps = append(d.comps, &diffComp{c: c, files: []*weightFile{w}})
		return nil
	}
	var encNames []string
	for _, n := range imageEncoderWeights {
		encNames = append(encNames, prefix+n)
	}
	if err := add(Component{Name: ELITEImageEncoder, Library: "transformers", Class: "CLIPVisionModel", Kind: KindModel}, enc, encNames...); err != nil {
		return nil, err
	}
	d.model.Configs[ELITEImageEncoder] = cfg
	ms := s.Mappers
	if ms == nil {
		ms = s.Base
	}
	for _, comp := range []string{ELITEGlobalMapper, ELITELocalMapper} {
		f := ELITEMapperFiles[comp]
		// A whole ELITE-library/ELITE repository keeps them in checkpoints/.
		if err := add(Component{Name: comp, Library: "elite", Class: "Mapper", Kind: KindModel}, ms, f, ELITEMapperDir+"/"+f); err != nil {
			return nil, err
		}
	}
	if d.model.Index, err = eliteIndex(d.model.Index); err != nil {
		return nil, formatErr(s.Base.String()+"/model_index.json", "", "%v", err)
	}
	ok = true
	return d, nil
}

// eliteIndex adds ELITE's three components to a model_index.json.
func eliteIndex(idx []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(idx, &m); err != nil {
		return nil, err
	}
	m[ELITEImageEncoder] = json.RawMessage(`["transformers", "CLIPVisionModel"]`)
	m[ELITEGlobalMapper] = json.RawMessage(`["elite", "Mapper"]`)
	m[ELITELocalMapper] = json.RawMessage(`["elite", "MapperLocal"]`)
	return json.MarshalIndent(m, "", "  ")
}
