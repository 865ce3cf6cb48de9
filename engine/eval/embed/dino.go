// dino.go: DINO ViT as an eval.ImageEmbedder (final-norm CLS token after
// the DINO evaluation transform).
package embed

import (
	"context"
	"errors"

	"harmony/engine/imageproc"
	"harmony/engine/tensor"
	"harmony/loader"
)

// DINO embeds pictures with a DINO ViT checkpoint.
type DINO struct {
	b tensor.Backend
}

// OpenDINO loads a DINO checkpoint.
func OpenDINO(ctx context.Context, b tensor.Backend, src loader.Source, opt *loader.Options) (*DINO, error) {
	return nil, errors.New("embed: DINO is not available yet")
}

// Free releases the model.
func (d *DINO) Free() {}

// EmbedImages is the final-norm CLS token of each picture.
func (d *DINO) EmbedImages(ctx context.Context, ims []*imageproc.RGB) ([][]float32, error) {
	return nil, errors.New("embed: DINO is not available yet")
}
