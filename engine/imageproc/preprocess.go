// Package imageproc prepares the subject's reference image for the
// BLIP-Diffusion vision encoder exactly as the reference BlipImageProcessor
// does (blipdiffusion.md §4): decode (decode.go), convert to RGB (rgb.go),
// PIL bicubic resize to 224×224 (resize.go), rescale by 1/255, normalize
// with the CLIP mean/std, center-crop. Everything works on bytes so the
// same code runs in the browser. The evaluation metrics' preprocessing is
// the same stages configured differently: CLIPConfig (transformers'
// CLIPImageProcessor) and DINOConfig (torchvision's DINO transform).
//
// This file: the processor configuration and the float stages.
package imageproc

import (
	"encoding/json"
	"fmt"
	"math"

	"harmony/engine/cfgcheck"
)

// CLIP's normalization constants (OpenAI CLIP, the processor's defaults).
var (
	CLIPMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// ImageNet's normalization constants (torchvision's evaluation transforms,
// DINO).
var (
	ImageNetMean = [3]float64{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float64{0.229, 0.224, 0.225}
)

// CropRounding is how a centre crop places an odd margin.
type CropRounding int

const (
	// CropFloor is transformers' center_crop: offset (H − crop) // 2.
	CropFloor CropRounding = iota
	// CropHalfEven is torchvision's CenterCrop and openai's clip transform:
	// offset round((H − crop) / 2), halves to even (72.5 → 72).
	CropHalfEven
)

// Config is image_processor/preprocessor_config.json.
type Config struct {
	DoResize bool // resize to Width×Height (aspect ratio not kept), or by ShortestEdge
	Width    int  // size.width
	Height   int  // size.height
	// ShortestEdge, when > 0, resizes keeping the aspect ratio: the shorter
	// side becomes ShortestEdge, the longer int(ShortestEdge·long/short)
	// (size.shortest_edge of CLIPImageProcessor; torchvision's Resize(n)).
	// Width and Height are then unused.
	ShortestEdge  int
	Resample      Filter     // resample (3 = bicubic)
	DoRescale     bool       // multiply by RescaleFactor
	RescaleFactor float64    // rescale_factor (1/255)
	DoNormalize   bool       // (x − Mean)/Std per channel
	Mean          [3]float64 // image_mean
	Std           [3]float64 // image_std
	DoCenterCrop  bool       // center-crop to CropWidth×CropHeight after normalizing
	CropWidth     int        // crop_size.width (default: Width)
	CropHeight    int        // crop_size.height (default: Height)
	CropRound     CropRounding
	// TorchRescale rescales as torchvision's ToTensor does, float32(u)/255
	// (RescaleFactor must then be 1/255), instead of transformers'
	// float32(float64(u)·RescaleFactor); the two differ by an ulp at times.
	TorchRescale bool
}

// CLIPConfig is transformers' CLIPImageProcessor as the openai CLIP
// checkpoints configure it: RGB, shortest side to 224 (PIL bicubic),
// centre crop 224 with a floored offset, 1/255, CLIP mean/std.
func CLIPConfig() Config {
	c := DefaultConfig()
	c.ShortestEdge = 224
	return c
}

// DINOConfig is the DINO metric's torchvision transform: Resize(256,
// bicubic) on the PIL image, CenterCrop(224) (offset rounded half to
// even), ToTensor, Normalize(ImageNet mean/std).
func DINOConfig() Config {
	return Config{
		DoResize: true, ShortestEdge: 256, Resample: Bicubic,
		DoRescale: true, RescaleFactor: 1.0 / 255, TorchRescale: true,
		DoNormalize: true, Mean: ImageNetMean, Std: ImageNetStd,
		DoCenterCrop: true, CropWidth: 224, CropHeight: 224, CropRound: CropHalfEven,
	}
}

// ResizedSize is the size the resize step produces for a w×h image.
func (c Config) ResizedSize(w, h int) (int, int) {
	if !c.DoResize {
		return w, h
	}
	if c.ShortestEdge <= 0 {
		return c.Width, c.Height
	}
	n := c.ShortestEdge
	// Python's int(n * long / short): float64 division, truncated.
	if w <= h {
		return n, int(float64(n*h) / float64(w))
	}
	return int(float64(n*w) / float64(h)), n
}

// DefaultConfig is BLIP-Diffusion's processor: 224×224 bicubic, 1/255,
// CLIP mean/std, center crop 224.
func DefaultConfig() Config {
	return Config{
		DoResize: true, Width: 224, Height: 224, Resample: Bicubic,
		DoRescale: true, RescaleFactor: 1.0 / 255,
		DoNormalize: true, Mean: CLIPMean, Std: CLIPStd,
		DoCenterCrop: true, CropWidth: 224, CropHeight: 224,
	}
}

// ParseConfig reads preprocessor_config.json; missing keys keep the
// defaults of DefaultConfig.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	type hw struct {
		Height       *int `json:"height"`
		Width        *int `json:"width"`
		ShortestEdge *int `json:"shortest_edge"`
	}
	var raw struct {
		DoResize      *bool           `json:"do_resize"`
		Size          *hw             `json:"size"`
		Resample      *int            `json:"resample"`
		DoRescale     *bool           `json:"do_rescale"`
		RescaleFactor *float64        `json:"rescale_factor"`
		DoNormalize   *bool           `json:"do_normalize"`
		ImageMean     json.RawMessage `json:"image_mean"`
		ImageStd      json.RawMessage `json:"image_std"`
		DoCenterCrop  *bool           `json:"do_center_crop"`
		CropSize      *hw             `json:"crop_size"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return c, fmt.Errorf("imageproc: preprocessor_config.json: %w", err)
	}
	if raw.DoResize != nil {
		c.DoResize = *raw.DoResize
	}
	if raw.DoRescale != nil {
		c.DoRescale = *raw.DoRescale
	}
	if raw.DoNormalize != nil {
		c.DoNormalize = *raw.DoNormalize
	}
	if raw.DoCenterCrop != nil {
		c.DoCenterCrop = *raw.DoCenterCrop
	}
	if s := raw.Size; s != nil {
		switch {
		case s.ShortestEdge != nil && s.Height == nil && s.Width == nil:
			c.ShortestEdge = *s.ShortestEdge
			if c.ShortestEdge < 1 {
				return c, fmt.Errorf("imageproc: preprocessor_config.json: size.shortest_edge must be positive, got %d", c.ShortestEdge)
			}
		case s.Height == nil || s.Width == nil:
			return c, fmt.Errorf("imageproc: preprocessor_config.json: size needs height and width, or shortest_edge")
		default:
			c.Width, c.Height = *s.Width, *s.Height
			c.CropWidth, c.CropHeight = c.Width, c.Height
		}
	}
	if s := raw.CropSize; s != nil {
		if s.Height == nil || s.Width == nil {
			return c, fmt.Errorf("imageproc: preprocessor_config.json: crop_size needs height and width")
		}
		c.CropWidth, c.CropHeight = *s.Width, *s.Height
	}
	if raw.Resample != nil {
		c.Resample = Filter(*raw.Resample)
	}
	if raw.RescaleFactor != nil {
		c.RescaleFactor = *raw.RescaleFactor
	}
	var err error
	if c.Mean, err = channelValues(raw.ImageMean, c.Mean, "image_mean"); err != nil {
		return c, err
	}
	if c.Std, err = channelValues(raw.ImageStd, c.Std, "image_std"); err != nil {
		return c, err
	}
	return c, c.validate()
}

// channelValues reads a per-channel list, or one number for all channels;
// null or absent keeps def.
func channelValues(raw json.RawMessage, def [3]float64, key string) ([3]float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	var one float64
	if json.Unmarshal(raw, &one) == nil {
		return [3]float64{one, one, one}, nil
	}
	var list []float64
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 3 {
		return def, fmt.Errorf("imageproc: preprocessor_config.json: %s must be 3 numbers", key)
	}
	return [3]float64{list[0], list[1], list[2]}, nil
}

// WithMeanStd applies model_index.json's pipeline-level mean/std, passed
// to the processor by the pipeline; nil (JSON null) keeps the processor's.
func (c Config) WithMeanStd(mean, std []float64) (Config, error) {
	for _, v := range []struct {
		src []float64
		dst *[3]float64
		key string
	}{{mean, &c.Mean, "mean"}, {std, &c.Std, "std"}} {
		switch len(v.src) {
		case 0:
		case 1:
			*v.dst = [3]float64{v.src[0], v.src[0], v.src[0]}
		case 3:
			*v.dst = [3]float64(v.src)
		default:
			return c, fmt.Errorf("imageproc: model_index %s has %d values, want 3", v.key, len(v.src))
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	// Sizes are bounded because the resized and cropped images are
	// allocated from them, each side and (the pixel budget of decoding)
	// their product: 16384×16384 would need gigabytes of floats. The
	// numbers the pixels are scaled by must be finite (a NaN or Inf would
	// reach the Q-Former as garbage).
	ck := &cfgcheck.Checker{Pkg: "imageproc", File: configFile}
	if c.DoResize && c.ShortestEdge > 0 {
		ck.Int("size.shortest_edge", c.ShortestEdge, 1, cfgcheck.MaxImageSide)
		if _, _, ok := c.Resample.kernel(); !ok {
			ck.Fail("resample", int(c.Resample), "is not supported (%v)", c.Resample)
		}
	} else if c.DoResize {
		ck.Int("size.width", c.Width, 1, cfgcheck.MaxImageSide)
		ck.Int("size.height", c.Height, 1, cfgcheck.MaxImageSide)
		if ck.OK() && int64(c.Width)*int64(c.Height) > DefaultMaxPixels {
			ck.Fail("size", fmt.Sprintf("%d×%d", c.Width, c.Height), "must be at most %d pixels", DefaultMaxPixels)
		}
		if _, _, ok := c.Resample.kernel(); !ok {
			ck.Fail("resample", int(c.Resample), "is not supported (%v)", c.Resample)
		}
	}
	if c.DoCenterCrop {
		ck.Int("crop_size.width", c.CropWidth, 1, cfgcheck.MaxImageSide)
		ck.Int("crop_size.height", c.CropHeight, 1, cfgcheck.MaxImageSide)
		if ck.OK() && int64(c.CropWidth)*int64(c.CropHeight) > DefaultMaxPixels {
			ck.Fail("crop_size", fmt.Sprintf("%d×%d", c.CropWidth, c.CropHeight), "must be at most %d pixels", DefaultMaxPixels)
		}
	}
	if c.DoRescale {
		ck.Float("rescale_factor", c.RescaleFactor, -math.MaxFloat32, math.MaxFloat32)
		if c.TorchRescale && c.RescaleFactor != 1.0/255 {
			ck.Fail("rescale_factor", c.RescaleFactor, "must be 1/255 with torchvision's ToTensor")
		}
	}
	if c.DoNormalize {
		for i := range 3 {
			ck.Float(fmt.Sprintf("image_mean[%d]", i), c.Mean[i], -math.MaxFloat32, math.MaxFloat32)
			ck.Float(fmt.Sprintf("image_std[%d]", i), c.Std[i], -math.MaxFloat32, math.MaxFloat32)
			if c.Std[i] == 0 {
				ck.Fail(fmt.Sprintf("image_std[%d]", i), c.Std[i], "must not be 0")
			}
		}
	}
	return ck.Err()
}

// configFile is where the processor config lives in the checkpoint.
const configFile = "image_processor/preprocessor_config.json"

// Result is a preprocessed image.
type Result struct {
	Resized *RGB      // the uint8 image after resizing (before the float stages), for display
	Pixels  []float32 // pixel values, NHWC [1, Height, Width, 3] (the engine is channels-last)
	Height  int       // rows of Pixels
	Width   int       // columns of Pixels
}

// Shape returns the NHWC shape of Pixels.
func (r *Result) Shape() []int { return []int{1, r.Height, r.Width, 3} }

// Preprocess runs the processor on a decoded RGB image: resize, rescale,
// normalize, center-crop, in the reference's order and float32 arithmetic.
func Preprocess(m *RGB, c Config) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.DoResize {
		w, h := c.ResizedSize(m.Width, m.Height)
		if w < 1 || h < 1 || int64(w)*int64(h) > DefaultMaxPixels {
			return nil, fmt.Errorf("imageproc: a %d×%d image resized to shortest side %d would be %d×%d", m.Width, m.Height, c.ShortestEdge, w, h)
		}
		var err error
		if m, err = Resize(m, w, h, c.Resample); err != nil {
			return nil, err
		}
	}
	res := &Result{Resized: m, Height: m.Height, Width: m.Width}

	// transformers' rescale multiplies the uint8 array by a Python float in
	// float64 and casts to float32; normalize then works in float32 with
	// mean/std cast to float32.
	var mean, std [3]float32
	for i := range 3 {
		mean[i], std[i] = float32(c.Mean[i]), float32(c.Std[i])
	}
	px := make([]float32, len(m.Pix))
	for i, u := range m.Pix {
		v := float32(u)
		switch {
		case c.DoRescale && c.TorchRescale:
			v = float32(u) / 255
		case c.DoRescale:
			v = float32(float64(u) * c.RescaleFactor)
		}
		if c.DoNormalize {
			ch := i % 3
			v = (v - mean[ch]) / std[ch]
		}
		px[i] = v
	}
	res.Pixels = px
	if c.DoCenterCrop && (c.CropWidth != res.Width || c.CropHeight != res.Height) {
		res.Pixels = centerCrop(px, res.Height, res.Width, c.CropHeight, c.CropWidth, c.CropRound)
		res.Height, res.Width = c.CropHeight, c.CropWidth
	}
	return res, nil
}

// centerCrop is transformers' center_crop on an HWC image: offsets
// floor((orig − crop)/2) (or, with CropHalfEven, torchvision's
// round((orig − crop)/2)); a crop larger than the image pads with zeros,
// the image placed at ceil((crop − orig)/2).
func centerCrop(px []float32, h, w, ch, cw int, r CropRounding) []float32 {
	top, left := floorDiv2(h-ch), floorDiv2(w-cw)
	if r == CropHalfEven && h >= ch && w >= cw {
		top, left = CropOffset(h, ch, r), CropOffset(w, cw, r)
	}
	out := make([]float32, ch*cw*3)
	for y := 0; y < ch; y++ {
		sy := top + y
		if sy < 0 || sy >= h {
			continue
		}
		for x := 0; x < cw; x++ {
			sx := left + x
			if sx < 0 || sx >= w {
				continue
			}
			copy(out[3*(y*cw+x):3*(y*cw+x)+3], px[3*(sy*w+sx):3*(sy*w+sx)+3])
		}
	}
	return out
}

// CropOffset is where a centre crop of side crop starts in a side of size
// n ≥ crop.
func CropOffset(n, crop int, r CropRounding) int {
	if r == CropHalfEven {
		return int(math.RoundToEven(float64(n-crop) / 2))
	}
	return floorDiv2(n - crop)
}

// floorDiv2 is Python's n // 2.
func floorDiv2(n int) int {
	if n < 0 {
		return -((-n + 1) / 2)
	}
	return n / 2
}

// Load decodes image bytes and preprocesses them.
func Load(name string, data []byte, c Config, opt DecodeOptions) (*Result, Info, error) {
	m, info, err := Decode(name, data, opt)
	if err != nil {
		return nil, info, err
	}
	res, err := Preprocess(m, c)
	return res, info, err
}
