// Package embed runs the engine's CLIP and DINO models as the embedders of
// engine/eval: each model's evaluation preprocessing, batching, and the
// output the metric code uses (CLIP's image_embeds and text_embeds, DINO's
// final-norm CLS token).
//
// preprocess.go: the two image pipelines of the common metric code, sized
// for a model's input (imageproc.CLIPConfig and imageproc.DINOConfig at
// 224; the tiny test models take smaller pictures).
package embed

import "harmony/engine/imageproc"

// CLIPPixels is CLIPImageProcessor at input size: the shortest side to
// size (bicubic), a size×size centre crop at offsets floor((H−size)/2),
// rescale, CLIP mean/std → NHWC [size, size, 3].
func CLIPPixels(im *imageproc.RGB, size int) ([]float32, error) {
	c := imageproc.CLIPConfig()
	c.ShortestEdge, c.CropWidth, c.CropHeight = size, size, size
	r, err := imageproc.Preprocess(im, c)
	if err != nil {
		return nil, err
	}
	return r.Pixels, nil
}

// DINOResize is the resize side for a crop size: 256 for 224, the same
// ratio for other sizes (tiny test models).
func DINOResize(cropSize int) int { return cropSize * 256 / 224 }

// DINOPixels is torchvision's Resize(resize, bicubic), CenterCrop(size)
// at offsets round((H−size)/2) with Python's half-to-even rounding,
// ToTensor, Normalize(ImageNet).
func DINOPixels(im *imageproc.RGB, resize, size int) ([]float32, error) {
	c := imageproc.DINOConfig()
	c.ShortestEdge, c.CropWidth, c.CropHeight = resize, size, size
	r, err := imageproc.Preprocess(im, c)
	if err != nil {
		return nil, err
	}
	return r.Pixels, nil
}
