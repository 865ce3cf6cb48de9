// photo.go: the subject photo as a Gio image, through the engine's own
// decoder so the thumbnail shows exactly what the pipeline will read.
package ui

import (
	"image"

	"harmony/engine/imageproc"
	"harmony/www"
)

func decodeAny(data []byte) (image.Image, error) {
	rgb, _, err := imageproc.Decode("photo", data, imageproc.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	m := image.NewNRGBA(image.Rect(0, 0, rgb.Width, rgb.Height))
	for i := 0; i < rgb.Width*rgb.Height; i++ {
		copy(m.Pix[4*i:4*i+3], rgb.Pix[3*i:3*i+3])
		m.Pix[4*i+3] = 255
	}
	return m, nil
}

func demoPhoto() []byte { return www.DemoPhoto() }
