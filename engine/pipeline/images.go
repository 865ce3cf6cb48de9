// images.go: PNG encoding of results, the subject-mask heat-map over the
// Harmony image, and the cheap latent preview shown while denoising.
package pipeline

import (
	"bytes"
	"image"
	"image/png"
	"math"

	"harmony/engine/harmony"
)

// PNG encodes the image.
func (im *Image) PNG() ([]byte, error) {
	rgba := image.NewNRGBA(image.Rect(0, 0, im.W, im.H))
	for i := 0; i < im.W*im.H; i++ {
		copy(rgba.Pix[4*i:4*i+3], im.Pix[3*i:3*i+3])
		rgba.Pix[4*i+3] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, rgba); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// heatmap blends a colour map of the soft mask (bilinearly upsampled from
// its grid) over the image, half and half, so the subject region shows
// where it lies in the picture.
func heatmap(im *Image, m harmony.Map) *Image {
	out := &Image{W: im.W, H: im.H, Pix: make([]uint8, len(im.Pix))}
	for y := 0; y < im.H; y++ {
		fy := (float64(y)+0.5)*float64(m.H)/float64(im.H) - 0.5
		for x := 0; x < im.W; x++ {
			fx := (float64(x)+0.5)*float64(m.W)/float64(im.W) - 0.5
			v := bilinear(m, fx, fy)
			r, g, b := turbo(v)
			i := 3 * (y*im.W + x)
			out.Pix[i] = uint8((int(im.Pix[i]) + int(r) + 1) / 2)
			out.Pix[i+1] = uint8((int(im.Pix[i+1]) + int(g) + 1) / 2)
			out.Pix[i+2] = uint8((int(im.Pix[i+2]) + int(b) + 1) / 2)
		}
	}
	return out
}

func bilinear(m harmony.Map, fx, fy float64) float64 {
	clampi := func(v, n int) int { return min(max(v, 0), n-1) }
	x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
	ax, ay := fx-float64(x0), fy-float64(y0)
	at := func(x, y int) float64 { return float64(m.V[clampi(y, m.H)*m.W+clampi(x, m.W)]) }
	top := at(x0, y0)*(1-ax) + at(x0+1, y0)*ax
	bot := at(x0, y0+1)*(1-ax) + at(x0+1, y0+1)*ax
	return top*(1-ay) + bot*ay
}

// turbo is a compact polynomial fit of Google's Turbo colour map (blue for
// 0, through green and yellow, to red for 1).
func turbo(v float64) (uint8, uint8, uint8) {
	v = min(max(v, 0), 1)
	r := 0.13572138 + v*(4.61539260+v*(-42.66032258+v*(132.13108234+v*(-152.94239396+v*59.28637943))))
	g := 0.09140261 + v*(2.19418839+v*(4.84296658+v*(-14.18503333+v*(4.27729857+v*2.82956604))))
	b := 0.10667330 + v*(12.64194608+v*(-60.58204836+v*(110.36276771+v*(-89.90310912+v*27.34824973))))
	to8 := func(c float64) uint8 { return uint8(math.Round(255 * min(max(c, 0), 1))) }
	return to8(r), to8(g), to8(b)
}

// latentRGB maps Stable Diffusion 1.x's four latent channels to RGB: the
// widely used linear approximation of the VAE decoder, good enough to see
// composition emerge while denoising. It is meaningless for other latent
// spaces (the tiny test models), but still shows the process moving.
var latentRGB = [4][3]float32{
	{0.298, 0.207, 0.208},
	{0.187, 0.286, 0.173},
	{-0.158, 0.189, 0.264},
	{-0.184, -0.271, -0.473},
}

// latentPreview renders NCHW latents at latent resolution, or nil when the
// latent space does not have 4 channels.
func latentPreview(lat []float32, c, h, w int) *Image {
	if c != 4 {
		return nil
	}
	im := &Image{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	for i := 0; i < h*w; i++ {
		for k := 0; k < 3; k++ {
			var s float32
			for ch := 0; ch < 4; ch++ {
				s += lat[ch*h*w+i] * latentRGB[ch][k]
			}
			v := (s + 1) / 2
			im.Pix[3*i+k] = uint8(math.Round(float64(255 * min(max(v, 0), 1))))
		}
	}
	return im
}
