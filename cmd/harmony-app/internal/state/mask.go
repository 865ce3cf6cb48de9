// mask.go holds ELITE's subject mask for the app, with the page's rules:
// a bitmap at the photo's size painted with a round brush or eraser, or
// read from a picture where any colour channel > 0 is subject (resized to
// the photo, nearest); a new photo starts an empty mask; a painted mask
// goes to the engine as an 8-bit gray PNG (0 or 255), none when nothing
// is painted (the whole photo is then the subject).
package state

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"harmony/engine/pipeline"

	_ "image/gif"  // mask files in the formats the photo takes
	_ "image/jpeg" //
)

// SubjectMask is a snapshot of the subject mask: W×H bytes, 1 = subject.
type SubjectMask struct {
	W, H    int
	Bits    []uint8
	Count   int // subject pixels
	Version int // changes with every edit
}

// resetMask starts an empty mask for the photo; a.mu is held.
func (a *App) resetMask() {
	a.maskVer++
	a.mask = nil
	if a.photo != nil {
		a.mask = &SubjectMask{W: a.photo.Width, H: a.photo.Height, Bits: make([]uint8, a.photo.Width*a.photo.Height), Version: a.maskVer}
	}
}

// MaskSnapshot returns a copy of the mask (nil without a photo).
func (a *App) MaskSnapshot() *SubjectMask {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mask == nil {
		return nil
	}
	m := *a.mask
	m.Bits = append([]uint8(nil), a.mask.Bits...)
	return &m
}

// MaskVersion changes with every edit of the mask, so a window redraws
// its overlay only then.
func (a *App) MaskVersion() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maskVer
}

// PaintMask sets (erase false) or clears every pixel whose centre lies
// within radius of the segment from (x0, y0) to (x1, y1), in photo pixels.
func (a *App) PaintMask(x0, y0, x1, y1, radius float64, erase bool) {
	a.mu.Lock()
	m := a.mask
	if m == nil {
		a.mu.Unlock()
		return
	}
	r := math.Max(0.5, radius)
	v := uint8(1)
	if erase {
		v = 0
	}
	bx0, bx1 := max(0, int(math.Floor(math.Min(x0, x1)-r))), min(m.W-1, int(math.Ceil(math.Max(x0, x1)+r)))
	by0, by1 := max(0, int(math.Floor(math.Min(y0, y1)-r))), min(m.H-1, int(math.Ceil(math.Max(y0, y1)+r)))
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for y := by0; y <= by1; y++ {
		for x := bx0; x <= bx1; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			ex, ey := px-(x0+t*dx), py-(y0+t*dy)
			if ex*ex+ey*ey <= r*r {
				i := y*m.W + x
				m.Count += int(v) - int(m.Bits[i])
				m.Bits[i] = v
			}
		}
	}
	a.maskVer++
	m.Version = a.maskVer
	a.mu.Unlock()
	a.changed()
}

// ClearMask empties the mask.
func (a *App) ClearMask() {
	a.mu.Lock()
	a.resetMask()
	a.mu.Unlock()
	a.changed()
}

// LoadMask reads a mask picture: any colour channel > 0 is subject.
func (a *App) LoadMask(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("harmony-app: mask: %v", err)
	}
	im, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("harmony-app: mask %s: not a picture this app reads (PNG, JPEG, GIF): %v", filepath.Base(path), err)
	}
	a.mu.Lock()
	defer a.changed()
	defer a.mu.Unlock()
	if a.mask == nil {
		return fmt.Errorf("harmony-app: choose a photo before its mask")
	}
	m := a.mask
	b := im.Bounds()
	m.Count = 0
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			sx, sy := b.Min.X+x*b.Dx()/m.W, b.Min.Y+y*b.Dy()/m.H
			r, g, bl, _ := im.At(sx, sy).RGBA()
			v := uint8(0)
			if r|g|bl != 0 {
				v = 1
			}
			m.Bits[y*m.W+x] = v
			m.Count += int(v)
		}
	}
	a.maskVer++
	m.Version = a.maskVer
	return nil
}

// maskPNG is the mask as the engine takes it, nil when empty; a.mu is held.
func (a *App) maskPNG() ([]byte, error) {
	m := a.mask
	if m == nil || m.Count == 0 {
		return nil, nil
	}
	g := image.NewGray(image.Rect(0, 0, m.W, m.H))
	for i, v := range m.Bits {
		g.Pix[i] = 255 * v
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		return nil, fmt.Errorf("harmony-app: mask: %v", err)
	}
	return buf.Bytes(), nil
}

// MaskPNG is the mask as Generate hands it to the engine (nil: none).
func (a *App) MaskPNG() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maskPNG()
}

// usesMask tells whether a generation with o on m takes the mask.
func usesMask(m *pipeline.Model, o *pipeline.Options) bool {
	return o.Base == pipeline.BaseELITE || o.Base == "" && m != nil && m.Base == pipeline.BaseELITE
}

// SetBase picks the base model of the next load and generations
// (pipeline.BaseBLIPDiffusion or BaseELITE); the options still at the
// other base's defaults (steps, guidance, scheduler, visual-only prompt)
// take the new base's.
func (a *App) SetBase(base pipeline.Base) error {
	a.mu.Lock()
	from, to := pipeline.DefaultOptionsFor(a.opts.Base), pipeline.DefaultOptionsFor(base)
	if a.opts.Base == "" {
		from = pipeline.DefaultOptionsFor(pipeline.BaseBLIPDiffusion)
	}
	o := &a.opts
	if o.Steps == from.Steps {
		o.Steps = to.Steps
	}
	if o.Guidance == from.Guidance {
		o.Guidance = to.Guidance
	}
	if o.Scheduler == from.Scheduler {
		o.Scheduler = to.Scheduler
	}
	if o.Harmony.VisualPrompt == from.Harmony.VisualPrompt {
		o.Harmony.VisualPrompt = to.Harmony.VisualPrompt
	}
	// ELITE names the subject by a word of the prompt and needs no class.
	prompts := map[pipeline.Base][2]string{pipeline.BaseBLIPDiffusion: {"swimming underwater", "dog"}, pipeline.BaseELITE: {"a S swimming underwater", ""}}
	if old, ok := prompts[a.opts.Base]; ok || a.opts.Base == "" {
		if !ok {
			old = prompts[pipeline.BaseBLIPDiffusion]
		}
		if o.Prompt == old[0] {
			o.Prompt = prompts[base][0]
		}
		if o.TargetClass == old[1] {
			o.TargetClass = prompts[base][1]
		}
	}
	a.mu.Unlock()
	return a.Set("base", string(base))
}

// SetEliteParts sets where ELITE's image encoder and mappers are read
// from when not in the model's folder ("" for the model's own).
func (a *App) SetEliteParts(encoder, mappers string) {
	a.mu.Lock()
	a.eliteEncoder, a.eliteMappers = strings.TrimSpace(encoder), strings.TrimSpace(mappers)
	a.mu.Unlock()
	a.changed()
}
