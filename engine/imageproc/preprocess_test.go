// Processor configuration and the float stages (rescale, normalize,
// center crop).
package imageproc

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	def := DefaultConfig()
	for _, c := range []struct {
		name string
		json string
		want func(*Config) // edits DefaultConfig into the expected value
		err  string
	}{
		{"empty", `{}`, func(*Config) {}, ""},
		{"null mean", `{"image_mean": null, "image_std": null}`, func(*Config) {}, ""},
		{"size sets crop", `{"size": {"height": 384, "width": 320}}`, func(c *Config) {
			c.Width, c.Height, c.CropWidth, c.CropHeight = 320, 384, 320, 384
		}, ""},
		{"crop", `{"crop_size": {"height": 200, "width": 210}}`, func(c *Config) { c.CropWidth, c.CropHeight = 210, 200 }, ""},
		{"scalar mean", `{"image_mean": 0.5, "image_std": [1, 2, 3]}`, func(c *Config) {
			c.Mean, c.Std = [3]float64{0.5, 0.5, 0.5}, [3]float64{1, 2, 3}
		}, ""},
		{"flags", `{"do_resize": false, "do_normalize": false, "do_center_crop": false, "resample": 2, "rescale_factor": 0.5}`,
			func(c *Config) {
				c.DoResize, c.DoNormalize, c.DoCenterCrop, c.Resample, c.RescaleFactor = false, false, false, Bilinear, 0.5
			}, ""},
		{"bad json", `{`, nil, "preprocessor_config.json"},
		{"size without width", `{"size": {"height": 3}}`, nil, "height and width"},
		{"shortest edge", `{"size": {"shortest_edge": 224}}`, func(c *Config) { c.ShortestEdge = 224 }, ""},
		{"zero shortest edge", `{"size": {"shortest_edge": 0}}`, nil, "shortest_edge must be positive"},
		{"two means", `{"image_mean": [1, 2]}`, nil, "image_mean"},
		{"nearest", `{"resample": 0}`, nil, "resample is not supported"},
		{"zero std", `{"image_std": [1, 0, 1]}`, nil, "image_std[1]"},
		{"zero size", `{"size": {"height": 0, "width": 5}}`, nil, "size.height must be ≥ 1, got 0"},
		{"huge size", `{"size": {"height": 16384, "width": 16384}}`, nil, "size must be at most 40000000 pixels, got 16384×16384"},
		{"huge crop", `{"crop_size": {"height": 16000, "width": 9000}}`, nil, "crop_size must be at most 40000000 pixels, got 9000×16000"},
	} {
		got, err := ParseConfig([]byte(c.json))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want one containing %q", c.name, err, c.err)
			}
			continue
		}
		want := def
		c.want(&want)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v\nwant %+v", c.name, got, err, want)
		}
	}
}

func TestWithMeanStd(t *testing.T) {
	c := DefaultConfig()
	got, err := c.WithMeanStd(nil, []float64{0.5})
	if err != nil || got.Mean != CLIPMean || got.Std != [3]float64{0.5, 0.5, 0.5} {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := c.WithMeanStd([]float64{1, 2}, nil); err == nil {
		t.Error("2-value mean accepted")
	}
	if _, err := c.WithMeanStd(nil, []float64{0, 1, 1}); err == nil {
		t.Error("zero std accepted")
	}
}

func TestPreprocessStages(t *testing.T) {
	m := NewRGB(2, 1)
	copy(m.Pix, []uint8{0, 255, 51, 102, 128, 255})
	c := DefaultConfig()
	c.DoResize, c.DoCenterCrop = false, false
	c.Mean, c.Std = [3]float64{0.5, 0.5, 0.5}, [3]float64{0.5, 0.25, 2}
	res, err := Preprocess(m, c)
	if err != nil {
		t.Fatal(err)
	}
	// ((u/255) − 0.5)/std, in float32.
	want := []float32{-1, 2, 0.2/2 - 0.25, 0.4/0.5 - 1, (float32(128.0/255) - 0.5) / 0.25, 0.25}
	for i := range want {
		if d := res.Pixels[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Errorf("value %d: %v, want %v", i, res.Pixels[i], want[i])
		}
	}
	if s := res.Shape(); s[0] != 1 || s[1] != 1 || s[2] != 2 || s[3] != 3 {
		t.Errorf("shape %v", s)
	}

	c.DoRescale, c.DoNormalize = false, false
	if res, _ = Preprocess(m, c); res.Pixels[1] != 255 {
		t.Errorf("without rescale: %v", res.Pixels)
	}
}

func TestCenterCrop(t *testing.T) {
	m := NewRGB(5, 4) // pixel value: its red channel = 10·y + x
	for y := 0; y < 4; y++ {
		for x := 0; x < 5; x++ {
			m.Pix[3*(y*5+x)] = uint8(10*y + x)
		}
	}
	c := DefaultConfig()
	c.DoResize, c.DoRescale, c.DoNormalize = false, false, false
	for _, tc := range []struct {
		cw, ch int
		want   []float32 // red channel, row-major
	}{
		{3, 2, []float32{11, 12, 13, 21, 22, 23}}, // offsets (5−3)//2 = 1, (4−2)//2 = 1
		{2, 3, []float32{1, 2, 11, 12, 21, 22}},   // (5−2)//2 = 1, (4−3)//2 = 0
		{7, 4, []float32{0, 0, 1, 2, 3, 4, 0, 0, 10, 11, 12, 13, 14, 0, 0, 20, 21, 22, 23, 24, 0, 0, 30, 31, 32, 33, 34, 0}}, // padded, image at ceil(2/2) = 1
	} {
		c.CropWidth, c.CropHeight = tc.cw, tc.ch
		res, err := Preprocess(m, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Width != tc.cw || res.Height != tc.ch {
			t.Fatalf("crop %d×%d gave %d×%d", tc.cw, tc.ch, res.Width, res.Height)
		}
		if len(tc.want) != tc.cw*tc.ch {
			t.Fatalf("bad case %d×%d", tc.cw, tc.ch)
		}
		for i, w := range tc.want {
			if got := res.Pixels[3*i]; got != w {
				t.Errorf("crop %d×%d pixel %d: %v, want %v", tc.cw, tc.ch, i, got, w)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, pattern(30, 20)); err != nil {
		t.Fatal(err)
	}
	res, info, err := Load("subject.png", b.Bytes(), DefaultConfig(), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 30 || res.Width != 224 || res.Height != 224 || len(res.Pixels) != 224*224*3 ||
		res.Resized.Width != 224 || len(res.Resized.Pix) != 224*224*3 {
		t.Errorf("info %+v, result %d×%d, %d values", info, res.Width, res.Height, len(res.Pixels))
	}
	if _, _, err := Load("x.png", []byte("nope"), DefaultConfig(), DecodeOptions{}); err == nil {
		t.Error("bad bytes accepted")
	}
}
