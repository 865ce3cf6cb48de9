// The image processor against the reference's goldens (testdata/golden): for both
// input images the RGB input, the PIL-bicubic 224×224 uint8 image and the
// normalized pixel_values.
package imageproc

import (
	"os"
	"testing"

	"harmony/loader/golden"
)

func TestGoldenImageProcessor(t *testing.T) {
	f := golden.Open(t, "golden", "c_image_processor.safetensors")
	cfgData, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "image_processor", "preprocessor_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(cfgData)
	if err != nil {
		t.Fatal(err)
	}
	// model_index.json has mean/std null: the processor's values stay.
	if cfg, err = cfg.WithMeanStd(nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, file string }{
		{"img1", "reference_96x64.png"},
		{"img2", "reference2_300x200_rgba.png"},
	} {
		t.Run(c.key, func(t *testing.T) {
			m, info, err := DecodeFile(golden.Path(t, "inputs", c.file), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s %d×%d %s", c.file, info.Format, info.Width, info.Height, info.PixelType)

			in, shape := f.MustInts(t, "imgproc."+c.key+".input_rgb_u8")
			if shape[0] != m.Height || shape[1] != m.Width {
				t.Fatalf("decoded %d×%d, want %v", m.Width, m.Height, shape)
			}
			if n, maxd := countDiff(m.Pix, in); n != 0 {
				t.Errorf("input RGB: %d of %d values differ (max %d)", n, len(in), maxd)
			}

			res, err := Preprocess(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := f.MustInts(t, "imgproc."+c.key+".resized_rgb_u8")
			n, maxd := countDiff(res.Resized.Pix, want)
			t.Logf("resized: %d of %d values differ (max %d)", n, len(want), maxd)
			if maxd > 1 {
				t.Errorf("resized differs by up to %d levels", maxd)
			}

			pv, pshape := f.MustF32(t, "imgproc."+c.key+".pixel_values")
			if got := res.Shape(); pshape[2] != got[1] || pshape[3] != got[2] {
				t.Fatalf("pixel shape %v, want NCHW %v", got, pshape)
			}
			nhwc := nchwToNHWC(pv, pshape[1], pshape[2], pshape[3])
			tol := 0.0
			if n != 0 { // a 1-level resize difference moves a value by 1/(255·std)
				tol = 1/(255*CLIPStd[1]) + 1e-6
			}
			d := golden.Close(t, "pixel_values", res.Pixels, nhwc, 0, tol)
			if n == 0 && d.MaxAbs != 0 {
				t.Errorf("pixel_values not bit-exact although the resized image is: %v", d)
			}
		})
	}
}

// countDiff counts differing values and the largest difference.
func countDiff(got []uint8, want []int64) (n int, maxd int64) {
	if len(got) != len(want) {
		return len(want), 255
	}
	for i, w := range want {
		d := int64(got[i]) - w
		if d < 0 {
			d = -d
		}
		if d != 0 {
			n++
			maxd = max(maxd, d)
		}
	}
	return n, maxd
}

func nchwToNHWC(v []float32, c, h, w int) []float32 {
	out := make([]float32, len(v))
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out[(y*w+x)*c+ch] = v[(ch*h+y)*w+x]
			}
		}
	}
	return out
}
