// evalmodels.go: the CLIP and DINO models behind `harmony eval` and
// `harmony dreambench`, opened on the GPU from --clip and --dino.
package main

import (
	"context"
	"fmt"

	"harmony/engine/eval"
	"harmony/engine/eval/embed"
	"harmony/engine/gpu"
	"harmony/engine/kernels"
	"harmony/loader"
)

// evalModelSpec names the models to open.
type evalModelSpec struct {
	clip, dino    string
	precision     loader.Precision
	defaultLimits bool
}

// openEvalModels opens the models (--clip a CLIPModel folder or URL;
// --dino a ViTModel folder, an original .pth file, or their URLs); tests
// may replace it with stub embedders. The returned func frees the models and the device.
var openEvalModels = func(ctx context.Context, s evalModelSpec, bar *progressBar) (m eval.Models, done func(), err error) {
	dev, err := gpu.Open(ctx, gpu.Options{DefaultLimits: s.defaultLimits})
	if err != nil {
		return m, nil, err
	}
	b := kernels.New(dev)
	var frees []func()
	closeAll := func() {
		for i := len(frees) - 1; i >= 0; i-- {
			frees[i]()
		}
		dev.Close()
	}
	defer func() {
		// The returns below name no closer: a failed open frees what it
		// opened here.
		if err != nil {
			closeAll()
		}
	}()
	opt := &loader.Options{Precision: s.precision, Progress: bar.load}
	if s.clip != "" {
		src, err := openLocation("--clip", s.clip)
		if err != nil {
			return m, nil, err
		}
		c, err := embed.OpenCLIP(ctx, b, src, opt)
		if err != nil {
			return m, nil, fmt.Errorf("--clip %s: %w", s.clip, err)
		}
		frees = append(frees, c.Free)
		m.CLIPImage = c
		if c.Text != nil {
			m.CLIPText = c
		}
	}
	if s.dino != "" {
		// A file is an original checkpoint (or a weight file with
		// config.json beside it).
		src, file, err := loader.OpenLocation(s.dino)
		if err != nil {
			return m, nil, fmt.Errorf("--dino %s: %w", s.dino, err)
		}
		d, err := embed.OpenDINO(ctx, b, src, file, 0, opt)
		if err != nil {
			return m, nil, fmt.Errorf("--dino %s: %w", s.dino, err)
		}
		frees = append(frees, d.Free)
		m.DINO = d
	}
	return m, closeAll, nil
}

// openLocation opens a model folder or URL named by an option.
func openLocation(option, loc string) (loader.Source, error) {
	src, file, err := loader.OpenLocation(loc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", option, loc, err)
	}
	if file != "" {
		return nil, fmt.Errorf("%s %s is a file; give the model's folder (config.json and model.safetensors) or its URL", option, loc)
	}
	return src, nil
}
