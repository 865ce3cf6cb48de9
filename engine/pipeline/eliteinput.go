// eliteinput.go: ELITE's inputs as its inference dataset prepares them
// (elite.md A.2, A.5): the subject photo for the global branch, the photo
// with its background blacked out for the local branch, the subject mask on
// the vision tower's patch grid, and the placeholder's index in the prompt.
package pipeline

import (
	"fmt"
	"math"
	"strings"
	"unicode"

	"harmony/engine/imageproc"
)

// EliteReference is the subject photo as ELITE's two branches see it.
type EliteReference struct {
	Size   int       // S: the vision tower's input size (224)
	Global []float32 // [1, S, S, 3] NHWC: the whole photo, background kept
	Object []float32 // [1, S, S, 3]: the photo with every non-subject pixel black
	Grid   int       // g: patches per side (16 for ViT-L/14 at 224)
	Mask   []float32 // [1, g·g] in {0, 1}: the subject on the patch grid (ELITE's mask16)
	// WholePhoto: no mask was given, so every pixel is the subject.
	WholePhoto bool
}

// EliteInputs prepares ELITE's reference inputs from the photo and the
// subject's mask (nil: the whole photo is the subject). The mask is an image
// of the photo's size; a pixel belongs to the subject when any of its RGB
// channels is above 0 (ELITE's np.where(mask > 0, 1, 0) on a grey or
// black-and-white mask; alpha is dropped). Both S×S inputs are PIL bicubic
// resizes straight to S×S (no crop), then ToTensor (÷255) and CLIP's
// Normalize in float32; the mask grid samples the binary mask by nearest
// neighbour through ELITE's 128×128 intermediate.
func EliteInputs(photoName string, photo []byte, maskName string, mask []byte, size, grid int) (*EliteReference, error) {
	if size < 1 || grid < 1 {
		return nil, fmt.Errorf("pipeline: ELITE input size %d, grid %d", size, grid)
	}
	im, _, err := imageproc.Decode(photoName, photo, imageproc.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	sel := make([]bool, im.Width*im.Height)
	ref := &EliteReference{Size: size, Grid: grid}
	if mask == nil {
		ref.WholePhoto = true
		for i := range sel {
			sel[i] = true
		}
	} else {
		if maskName == "" {
			maskName = "mask"
		}
		mm, _, err := imageproc.Decode(maskName, mask, imageproc.DecodeOptions{})
		if err != nil {
			return nil, err
		}
		if mm.Width != im.Width || mm.Height != im.Height {
			return nil, optErr("mask", nil, "must be the photo's size: the mask %s is %d×%d, the photo %d×%d", maskName, mm.Width, mm.Height, im.Width, im.Height)
		}
		for i := range sel {
			p := mm.Pix[3*i : 3*i+3]
			sel[i] = p[0] > 0 || p[1] > 0 || p[2] > 0
		}
	}
	obj := &imageproc.RGB{Width: im.Width, Height: im.Height, Pix: make([]uint8, len(im.Pix))}
	for i, s := range sel {
		if s {
			copy(obj.Pix[3*i:3*i+3], im.Pix[3*i:3*i+3])
		}
	}
	if ref.Global, err = clipTensor(im, size); err != nil {
		return nil, err
	}
	if ref.Object, err = clipTensor(obj, size); err != nil {
		return nil, err
	}
	ref.Mask = maskGrid(sel, im.Width, im.Height, grid)
	return ref, nil
}

// clipTensor is PIL's bicubic resize to S×S, then torchvision's ToTensor
// (u8/255 in float32) and Normalize with CLIP's mean and std (float32).
func clipTensor(m *imageproc.RGB, size int) ([]float32, error) {
	r, err := imageproc.Resize(m, size, size, imageproc.Bicubic)
	if err != nil {
		return nil, err
	}
	var mean, std [3]float32
	for c := range 3 {
		mean[c], std[c] = float32(imageproc.CLIPMean[c]), float32(imageproc.CLIPStd[c])
	}
	out := make([]float32, len(r.Pix))
	for i, u := range r.Pix {
		c := i % 3
		out[i] = (float32(u)/255 - mean[c]) / std[c]
	}
	return out, nil
}

// maskGrid samples the binary mask as ELITE does: torch's nearest
// interpolation to 128×128, then to g×g (source index ⌊dst·(in/out)⌋ in
// float32, clamped).
func maskGrid(sel []bool, w, h, g int) []float32 {
	const mid = 128
	rows := make([]int, g)
	cols := make([]int, g)
	for i := range g {
		rows[i] = nearestIdx(nearestIdx(i, mid, g), h, mid)
		cols[i] = nearestIdx(nearestIdx(i, mid, g), w, mid)
	}
	out := make([]float32, g*g)
	for i, y := range rows {
		for j, x := range cols {
			if sel[y*w+x] {
				out[i*g+j] = 1
			}
		}
	}
	return out
}

// nearestIdx is torch's nearest_idx: the source index of output index dst
// when resizing in → out.
func nearestIdx(dst, in, out int) int {
	switch {
	case in == out:
		return dst
	case out == 2*in:
		return dst >> 1
	}
	scale := float32(in) / float32(out)
	return min(int(math.Floor(float64(float32(float32(dst)*scale)))), in-1)
}

// PlaceholderIndex is ELITE's placeholder index for a prompt: 1 + the
// position of the last word equal to the placeholder, the words being the
// prompt stripped of surrounding white space and split at single spaces
// (Python's text.strip().split(' ')); 0 when no word is the placeholder.
// The +1 is BOS; ELITE assumes every earlier word is one token.
func PlaceholderIndex(prompt, placeholder string) int {
	idx := 0
	for i, w := range strings.Split(strings.TrimFunc(prompt, unicode.IsSpace), " ") {
		if w == placeholder {
			idx = i + 1
		}
	}
	return idx
}

// elitePrompt is a prompt tokenized for ELITE with its placeholder index.
type elitePrompt struct {
	text  string
	ids   []int32 // BOS, ids, EOS, padded with EOS to the text length
	index int     // the placeholder's row
}
