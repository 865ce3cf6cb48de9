// The evaluation metrics' preprocessing against its references
// (testdata/eval/preprocess.safetensors, made by
// testdata/gen/make_eval_preprocess.py): CLIPConfig against transformers'
// CLIPImageProcessor, DINOConfig against torchvision's Resize(256,
// bicubic) + CenterCrop(224) + ToTensor + Normalize, on an RGBA photo, an
// upscaled one and two synthetic images whose crop margins are odd.
package imageproc

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"harmony/loader/golden"
)

// synthetic is the generator's textured image: (7x + 13y + 50c + (x·y mod
// 31)) mod 256.
func synthetic(w, h int) *RGB {
	m := NewRGB(w, h)
	for y := range h {
		for x := range w {
			for c := range 3 {
				m.Pix[3*(y*w+x)+c] = uint8((7*x + 13*y + 50*c + (x*y)%31) % 256)
			}
		}
	}
	return m
}

var evalRows = []int{0, 37, 111, 223}

func TestEvalPreprocessGolden(t *testing.T) {
	f := golden.Open(t, "eval", "preprocess.safetensors")
	inputs := map[string]func(t *testing.T) *RGB{
		"rgba300x200":  func(t *testing.T) *RGB { return decodeInput(t, "reference2_300x200_rgba.png") },
		"rgb96x64":     func(t *testing.T) *RGB { return decodeInput(t, "reference_96x64.png") },
		"synth260x180": func(*testing.T) *RGB { return synthetic(260, 180) },
		"synth181x254": func(*testing.T) *RGB { return synthetic(181, 254) },
	}
	for name, load := range inputs {
		for _, pc := range []struct {
			key string
			cfg Config
		}{{"clip", CLIPConfig()}, {"dino", DINOConfig()}} {
			t.Run(pc.key+"/"+name, func(t *testing.T) {
				key := pc.key + "." + name
				res, err := Preprocess(load(t), pc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				wantSize, _ := f.MustInts(t, key+".resized")
				rs := res.Resized
				if rs.Width != int(wantSize[0]) || rs.Height != int(wantSize[1]) {
					t.Fatalf("resized to %d×%d, reference %v", rs.Width, rs.Height, wantSize)
				}
				// The uint8 crop, digested.
				top, left := CropOffset(rs.Height, 224, pc.cfg.CropRound), CropOffset(rs.Width, 224, pc.cfg.CropRound)
				crop := make([]byte, 0, 224*224*3)
				for y := top; y < top+224; y++ {
					crop = append(crop, rs.Pix[3*(y*rs.Width+left):3*(y*rs.Width+left+224)]...)
				}
				sum := sha256.Sum256(crop)
				want, _ := f.MustInts(t, key+".crop_sha")
				if got, w := fmt.Sprintf("%x", sum), fmt.Sprintf("%x", toBytes(want)); got != w {
					t.Errorf("crop at (%d, %d): sha256 %s, reference %s", top, left, got, w)
				}
				if res.Height != 224 || res.Width != 224 {
					t.Fatalf("output %d×%d", res.Width, res.Height)
				}
				rows, _ := f.MustF32(t, key+".rows")
				var got []float32
				for _, y := range evalRows {
					got = append(got, res.Pixels[y*224*3:(y+1)*224*3]...)
				}
				golden.Close(t, key+".rows", got, rows, 0, 0)
			})
		}
	}
}

func decodeInput(t *testing.T, file string) *RGB {
	t.Helper()
	m, _, err := DecodeFile(golden.Path(t, "inputs", file), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func toBytes(v []int64) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// The centre-crop offsets of the two conventions (evaluation.md: a 180×260
// photo crops at row 49 in transformers, 50 in torchvision; 72.5 → 72).
func TestCropOffset(t *testing.T) {
	for _, c := range []struct {
		n, crop int
		r       CropRounding
		want    int
	}{
		{323, 224, CropFloor, 49}, {323, 224, CropHalfEven, 50},
		{369, 224, CropHalfEven, 72}, {369, 224, CropFloor, 72},
		{371, 224, CropHalfEven, 74}, {224, 224, CropHalfEven, 0},
	} {
		if got := CropOffset(c.n, c.crop, c.r); got != c.want {
			t.Errorf("CropOffset(%d, %d, %d) = %d, want %d", c.n, c.crop, c.r, got, c.want)
		}
	}
}
