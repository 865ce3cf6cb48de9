// Package embed runs the engine's CLIP and DINO models as the embedders of
// engine/eval: each model's evaluation preprocessing, batching, and the
// projection the metric code uses (CLIP's image_embeds and text_embeds,
// DINO's final-norm CLS token).
//
// preprocess.go: the two image pipelines of the common metric code
// (evaluation.md D, E): CLIP as transformers' CLIPImageProcessor does it,
// DINO as torchvision's evaluation transform does it.
package embed

import (
	"fmt"
	"math"

	"harmony/engine/imageproc"
)

// ImageNet's normalization constants (DINO's evaluation transform).
var (
	ImageNetMean = [3]float64{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float64{0.229, 0.224, 0.225}
)

// shortestSide resizes so the shorter side is size and the longer one
// int(size·long/short) (transformers' and torchvision's rule), with PIL's
// bicubic filter.
func shortestSide(im *imageproc.RGB, size int) (*imageproc.RGB, error) {
	w, h := im.Width, im.Height
	if w <= h {
		return imageproc.Resize(im, size, int(float64(size)*float64(h)/float64(w)), imageproc.Bicubic)
	}
	return imageproc.Resize(im, int(float64(size)*float64(w)/float64(h)), size, imageproc.Bicubic)
}

// crop cuts size×size at (top, left) into normalized float NHWC pixels:
// rescaled (f64: transformers multiplies the uint8 array by 1/255 in
// float64; else torch's float32 division by 255), then (x − mean)/std in
// float32, as both pipelines do.
func crop(im *imageproc.RGB, top, left, size int, mean, std [3]float64, f64 bool) ([]float32, error) {
	if top < 0 || left < 0 || top+size > im.Height || left+size > im.Width {
		return nil, fmt.Errorf("embed: a %d×%d crop at (%d, %d) does not fit a %d×%d picture", size, size, left, top, im.Width, im.Height)
	}
	out := make([]float32, 0, size*size*3)
	for y := top; y < top+size; y++ {
		for x := left; x < left+size; x++ {
			for c := 0; c < 3; c++ {
				u := im.Pix[3*(y*im.Width+x)+c]
				v := float32(u) / 255
				if f64 {
					v = float32(float64(u) * (1.0 / 255))
				}
				out = append(out, (v-float32(mean[c]))/float32(std[c]))
			}
		}
	}
	return out, nil
}

// CLIPPixels is CLIPImageProcessor: the shortest side to size (bicubic),
// a size×size centre crop at offsets floor((H−size)/2), rescale, CLIP
// mean/std. The picture is RGB already (alpha dropped by the decoder).
func CLIPPixels(im *imageproc.RGB, size int) ([]float32, error) {
	r, err := shortestSide(im, size)
	if err != nil {
		return nil, err
	}
	return crop(r, (r.Height-size)/2, (r.Width-size)/2, size, imageproc.CLIPMean, imageproc.CLIPStd, true)
}

// DINOResize is the resize side for a crop size: 256 for 224, the same
// ratio for other sizes (tiny test models).
func DINOResize(cropSize int) int { return cropSize * 256 / 224 }

// DINOPixels is torchvision's Resize(resize, bicubic), CenterCrop(size)
// at offsets round((H−size)/2) with Python's half-to-even rounding,
// ToTensor, Normalize(ImageNet).
func DINOPixels(im *imageproc.RGB, resize, size int) ([]float32, error) {
	r, err := shortestSide(im, resize)
	if err != nil {
		return nil, err
	}
	top := int(math.RoundToEven(float64(r.Height-size) / 2))
	left := int(math.RoundToEven(float64(r.Width-size) / 2))
	return crop(r, top, left, size, ImageNetMean, ImageNetStd, false)
}
