//go:build js

// parts.go: an ELITE model given in parts (the page's image-encoder and
// mappers fields) seen as the one ELITE folder the loader reads: the
// Stable Diffusion model, image_encoder/… from the encoder's source (a
// CLIPVisionModel or whole CLIPModel folder or repository) and
// global_mapper.pt, local_mapper.pt from the mappers' source (at its top,
// or under checkpoints/ as in ELITE's Hub repository).
package main

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall/js"

	"harmony/loader"
)

type partsSource struct {
	model, enc, mappers loader.Source // enc, mappers: nil to read them from model
}

func (p *partsSource) String() string { return p.model.String() }

func (p *partsSource) Open(ctx context.Context, name string) (loader.File, error) {
	if rest, ok := strings.CutPrefix(name, "image_encoder/"); ok && p.enc != nil {
		return p.enc.Open(ctx, rest)
	}
	if (name == "global_mapper.pt" || name == "local_mapper.pt") && p.mappers != nil {
		f, err := p.mappers.Open(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			if g, gerr := p.mappers.Open(ctx, "checkpoints/"+name); gerr == nil {
				return g, nil
			}
		}
		return f, err
	}
	return p.model.Open(ctx, name)
}

// eliteParts wraps model with the request's imageEncoder and mappers
// sources, when given ({source, url, files} like the model's own).
func eliteParts(req js.Value, model loader.Source) (loader.Source, error) {
	p := &partsSource{model: model}
	for _, part := range []struct {
		key string
		dst *loader.Source
	}{{"imageEncoder", &p.enc}, {"mappers", &p.mappers}} {
		r := req.Get(part.key)
		if r.Type() != js.TypeObject {
			continue
		}
		src, _, err := modelSource(r)
		if err != nil {
			return nil, err
		}
		*part.dst = src
	}
	if p.enc == nil && p.mappers == nil {
		return model, nil
	}
	return p, nil
}
