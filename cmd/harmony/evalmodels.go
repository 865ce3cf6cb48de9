// evalmodels.go: the CLIP and DINO models behind `harmony eval` and
// `harmony dreambench`, opened on the GPU from --clip and --dino.
package main

import (
	"context"
	"errors"

	"harmony/engine/eval"
	"harmony/loader"
)

// evalModelSpec names the models to open.
type evalModelSpec struct {
	clip, dino    string
	precision     loader.Precision
	defaultLimits bool
}

// openEvalModels opens the models; tests replace it with stub embedders.
// The returned func frees the models and the device.
var openEvalModels = func(ctx context.Context, s evalModelSpec, bar *progressBar) (eval.Models, func(), error) {
	return eval.Models{}, nil, errors.New("harmony eval: the CLIP and DINO models are not in this build")
}
