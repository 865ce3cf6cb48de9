// dino.go: DINO ViT as an eval.ImageEmbedder: the final-norm CLS token
// after the DINO evaluation transform, from a transformers ViTModel folder
// (facebook/dino-vits16) or an original checkpoint
// (dino_deitsmall16_pretrain.pth).
package embed

import (
	"context"
	"errors"
	"fmt"

	"harmony/engine/imageproc"
	"harmony/engine/models/dino"
	"harmony/engine/tensor"
	"harmony/loader"
)

// DINO embeds pictures with a DINO ViT checkpoint.
type DINO struct {
	b     tensor.Backend
	Model *dino.Model
}

// OpenDINO loads a DINO checkpoint: file names a weight file in src (an
// original .pth, or a transformers safetensors file with config.json
// beside it); "" reads the folder's model.safetensors or
// pytorch_model.bin and config.json. heads sizes an original checkpoint
// (0: width / 64, as every released one).
func OpenDINO(ctx context.Context, b tensor.Backend, src loader.Source, file string, heads int, opt *loader.Options) (*DINO, error) {
	var w *tensor.Weights
	var err error
	if file != "" {
		if w, err = loader.LoadFile(ctx, src, file, "dino", b, opt); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
	} else if w, err = weights(ctx, src, "dino", b, opt); err != nil {
		return nil, err
	}
	var cfg []byte
	if !w.Has("cls_token") {
		if cfg, err = readFile(ctx, src, "config.json"); err != nil {
			w.Free(b)
			return nil, err
		}
	}
	m, err := dino.LoadCheckpoint(b, cfg, w, heads)
	if err != nil {
		return nil, fmt.Errorf("embed: %s: %w", src.String(), err)
	}
	return &DINO{b: b, Model: m}, nil
}

// Free releases the model.
func (d *DINO) Free() {
	if d.Model != nil {
		d.Model.Free(d.b)
		d.Model = nil
	}
}

// EmbedImages is the final-norm CLS token of each picture.
func (d *DINO) EmbedImages(ctx context.Context, ims []*imageproc.RGB) ([][]float32, error) {
	if d.Model == nil {
		return nil, errors.New("embed: DINO is closed")
	}
	size := d.Model.Config.ImageSize
	return batched(ctx, d.b, ims, size, func(im *imageproc.RGB) ([]float32, error) { return DINOPixels(im, DINOResize(size), size) },
		func(px *tensor.Tensor) (*tensor.Tensor, error) { return d.Model.Forward(d.b, px) })
}
