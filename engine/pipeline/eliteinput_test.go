package pipeline

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/imageproc"
	"harmony/engine/sched"
	"harmony/loader/golden"
)

func TestPlaceholderIndex(t *testing.T) {
	for _, c := range []struct {
		prompt, ph string
		want       int
	}{
		{"a photo of a S", "S", 5},
		{"a S wearing a red hat", "S", 2},
		{"  a S  ", "S", 2},       // strip(), then single spaces
		{"a  S", "S", 3},          // "a", "", "S": the empty word counts
		{"S and S again", "S", 3}, // the last one
		{"a s", "S", 0},           // case matters (ELITE compares words)
		{"a S,", "S", 0},          // so does punctuation
		{"a sks dog", "sks", 2},
		{"", "S", 0},
	} {
		if got := PlaceholderIndex(c.prompt, c.ph); got != c.want {
			t.Errorf("PlaceholderIndex(%q, %q) = %d, want %d", c.prompt, c.ph, got, c.want)
		}
	}
}

func pngBytes(t *testing.T, w, h int, f func(x, y int) color.RGBA) []byte {
	t.Helper()
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.SetRGBA(x, y, f(x, y))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, im))
	return buf.Bytes()
}

// TestEliteInputs checks ELITE's preprocessing rules on a photo whose
// right half is the subject: the global input keeps the background, the
// object input is the photo with the background black, the grid mask
// samples the mask, and without a mask everything is the subject.
func TestEliteInputs(t *testing.T) {
	const w, h = 37, 29
	photo := pngBytes(t, w, h, func(x, y int) color.RGBA {
		return color.RGBA{uint8(7 * x), uint8(9 * y), uint8(3*x + 5*y), 255}
	})
	// Subject: x ≥ 18; one subject pixel has only its blue channel set.
	mask := pngBytes(t, w, h, func(x, y int) color.RGBA {
		switch {
		case x == 20 && y == 3:
			return color.RGBA{0, 0, 1, 255}
		case x >= 18:
			return color.RGBA{255, 255, 255, 255}
		}
		return color.RGBA{0, 0, 0, 255}
	})
	const size, grid = 14, 4
	ref, err := EliteInputs("photo.png", photo, "mask.png", mask, size, grid)
	require.NoError(t, err)
	require.False(t, ref.WholePhoto)
	require.Len(t, ref.Global, size*size*3)
	require.Len(t, ref.Object, size*size*3)

	// The global input is the unmasked photo's CLIP tensor.
	im, _, err := imageproc.Decode("photo.png", photo, imageproc.DecodeOptions{})
	require.NoError(t, err)
	want, err := clipTensor(im, size)
	require.NoError(t, err)
	require.Equal(t, want, ref.Global)

	// The object input: the photo with x < 18 black, then resized.
	obj := &imageproc.RGB{Width: w, Height: h, Pix: append([]uint8(nil), im.Pix...)}
	for y := range h {
		for x := range 18 {
			copy(obj.Pix[3*(y*w+x):], []uint8{0, 0, 0})
		}
	}
	want, err = clipTensor(obj, size)
	require.NoError(t, err)
	require.Equal(t, want, ref.Object)
	// Black becomes CLIP's normalised 0: the top-left corner is far from the subject.
	require.InDelta(t, -0.48145466/0.26862954, ref.Object[0], 1e-6)

	// Grid: column j samples x = ⌊⌊j·128/4⌋·37/128⌋ = 0, 9, 18, 27.
	for i := range grid {
		for j := range grid {
			wantM := float32(0)
			if j >= 2 {
				wantM = 1
			}
			require.Equal(t, wantM, ref.Mask[i*grid+j], "mask grid (%d, %d)", i, j)
		}
	}

	// No mask: the whole photo.
	whole, err := EliteInputs("photo.png", photo, "", nil, size, grid)
	require.NoError(t, err)
	require.True(t, whole.WholePhoto)
	require.Equal(t, whole.Global, whole.Object)
	for _, v := range whole.Mask {
		require.Equal(t, float32(1), v)
	}

	// A mask of another size is refused by name.
	small := pngBytes(t, w-1, h, func(x, y int) color.RGBA { return color.RGBA{255, 255, 255, 255} })
	_, err = EliteInputs("photo.png", photo, "small.png", small, size, grid)
	var oe *OptionError
	require.True(t, errors.As(err, &oe), "%v", err)
	require.Equal(t, "mask", oe.Option)
	require.Contains(t, err.Error(), "small.png is 36×29")

	// A mask that is not an image is refused.
	_, err = EliteInputs("photo.png", photo, "junk.png", []byte("junk"), size, grid)
	require.Error(t, err)
}

func TestNearestIdx(t *testing.T) {
	// ELITE's 16² grid from a 275-pixel side: ⌊8i·275/128⌋.
	for i := range 16 {
		require.Equal(t, 8*i*275/128, nearestIdx(nearestIdx(i, 128, 16), 275, 128))
	}
	require.Equal(t, 5, nearestIdx(5, 9, 9))
	require.Equal(t, 2, nearestIdx(5, 9, 18))
}

func eliteOptions() Options {
	o := DefaultOptionsFor(BaseELITE)
	o.Prompt = "a S wearing a red hat"
	return o
}

func TestValidateELITE(t *testing.T) {
	o := eliteOptions()
	require.NoError(t, o.Validate())
	require.Equal(t, 100, o.Steps)
	require.Equal(t, 5.0, o.Guidance)
	require.Equal(t, "lms", o.Scheduler)
	require.Equal(t, 0.8, o.LocalWeight)
	require.Equal(t, "a S", o.Harmony.VisualPrompt)
	for _, tc := range []struct {
		name   string
		edit   func(o *Options)
		option string
	}{
		{"class word given", func(o *Options) { o.TargetClass = "dog" }, ""},
		{"plain", func(o *Options) { o.Method = MethodPlain }, ""},
		{"pndm", func(o *Options) { o.Scheduler = "pndm" }, ""},
		{"no placeholder in the prompt", func(o *Options) { o.Prompt = "a dog wearing a hat" }, "prompt"},
		{"other placeholder", func(o *Options) { o.Placeholder = "sks" }, "prompt"},
		{"other placeholder used", func(o *Options) { o.Placeholder, o.Prompt = "sks", "a sks dog" }, ""},
		{"blipdiffusion method", func(o *Options) { o.Method = MethodBLIPDiffusion }, "method"},
		{"BLIP visual prompt", func(o *Options) { o.Harmony.VisualPrompt = "a {class}" }, "visual-prompt"},
		{"photo visual prompt", func(o *Options) { o.Harmony.VisualPrompt = "a photo of a S" }, ""},
		{"negative λ", func(o *Options) { o.LocalWeight = -1 }, "local-weight"},
		{"guidance 1 with Harmony", func(o *Options) { o.Guidance = 1 }, "guidance"},
		{"guidance 1 plain", func(o *Options) { o.Guidance, o.Method = 1, MethodPlain }, ""},
	} {
		o := eliteOptions()
		tc.edit(&o)
		err := o.Validate()
		if tc.option == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		var oe *OptionError
		require.True(t, errors.As(err, &oe), "%s: %v", tc.name, err)
		require.Equal(t, tc.option, oe.Option, "%s: %v", tc.name, err)
	}
	// BLIP-Diffusion refuses ELITE's sampler and visual prompts.
	b := validOptions()
	b.Scheduler = "lms"
	require.Error(t, b.Validate())
	b = validOptions()
	b.Harmony.VisualPrompt = "a S"
	require.Error(t, b.Validate())
}

// TestEliteInputsGolden compares the preprocessing with ELITE's dataset
// (CustomDatasetWithBG) on both photos and their masks: the 16² mask
// exactly, rows 0 and 111 of both 224² CLIP tensors within 1e-6.
func TestEliteInputsGolden(t *testing.T) {
	g := golden.Open(t, "elite", "preprocess.safetensors")
	for _, c := range []struct{ key, photo, mask string }{
		{"a", "reference_96x64.png", "reference_96x64_bg.png"},
		{"b", "reference2_300x200_rgba.png", "reference2_300x200_rgba_bg.png"},
	} {
		photo, err := os.ReadFile(golden.Path(t, "inputs", c.photo))
		require.NoError(t, err)
		mask, err := os.ReadFile(golden.Path(t, "elite", "inputs", c.mask))
		require.NoError(t, err)
		ref, err := EliteInputs(c.photo, photo, c.mask, mask, 224, 16)
		require.NoError(t, err)
		m16, _ := g.MustF32(t, c.key+".mask16")
		require.Equal(t, m16, ref.Mask, "%s mask16", c.key)
		for _, in := range []struct {
			name string
			px   []float32
		}{{"clip", ref.Global}, {"obj", ref.Object}} {
			want, _ := g.MustF32(t, c.key+".pixel_values_"+in.name+".rows0_111") // [3, 2, 224]
			got := make([]float32, 0, len(want))
			for ch := range 3 {
				for _, y := range []int{0, 111} {
					for x := range 224 {
						got = append(got, in.px[(y*224+x)*3+ch])
					}
				}
			}
			golden.Close(t, c.key+" "+in.name+" rows", got, want, 1e-6, 0)
		}
	}
}

// TestSchedulerFromConfig: ELITE samples with LMS from Stable Diffusion's
// PNDM config (read as diffusers' from_config would), and a model whose
// config is LMS still gives PNDM or DDIM on request.
func TestSchedulerFromConfig(t *testing.T) {
	pndm := []byte(`{"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "clip_sample": false}`)
	lms := []byte(`{"_class_name": "LMSDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}`)
	for _, tc := range []struct {
		raw   []byte
		name  string
		first float64
		init  float32
	}{
		{pndm, "lms", 999, 14.614645},
		{pndm, "pndm", 901, 1},
		{lms, "lms", 999, 14.614645},
		{lms, "pndm", 900, 1},
		{lms, "ddim", 900, 1},
	} {
		c, err := sched.ParseConfig(tc.raw)
		require.NoError(t, err)
		r := &run{m: &Model{Sched: c, SchedRaw: tc.raw}, o: Options{Scheduler: tc.name, Steps: 10}}
		s, err := r.newScheduler()
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.first, s.Timesteps()[0], "%s from %s", tc.name, c.ClassName)
		require.InDelta(t, tc.init, s.InitNoiseSigma(), 1e-5, tc.name)
	}
}
