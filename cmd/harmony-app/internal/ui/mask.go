// mask.go: ELITE's subject-mask editor in the window, as on the page: the
// photo shown large with the mask translucent over it, painted with a round
// brush or eraser by dragging the pointer (size slider, in screen units),
// cleared, or read from a picture file (state.App holds the mask).
package ui

import (
	"fmt"
	"image"
	"image/color"
	"strings"

	"gioui.org/f32"
	"gioui.org/io/event"
	"gioui.org/io/pointer"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"harmony/cmd/harmony-app/internal/state"
)

// MaskSurface is the semantic description of the painting surface (tests
// find its bounds by it).
const MaskSurface = "subject mask: paint the subject"

// overlay is the colour of subject pixels over the photo.
var overlay = color.NRGBA{R: 0xff, G: 0x00, B: 0x60, A: 0x90}

// maskEditor is the editor's widget state.
type maskEditor struct {
	tool  widget.Enum  // "brush" or "eraser"
	size  widget.Float // brush diameter: 2 + 158·size dp
	clear widget.Clickable
	path  widget.Editor
	load  widget.Clickable
	tag   int // the painting surface's event tag

	down  bool
	last  f32.Point // in photo pixels
	scale float32   // photo pixels per screen pixel, as last drawn

	op  paint.ImageOp // the overlay, rebuilt when the mask changes
	ver int
	has bool
}

func (e *maskEditor) init() {
	e.tool.Value = "brush"
	e.size.Value = 22.0 / 158
	e.path.SingleLine, e.path.Submit = true, true
}

// diameter is the brush size in dp.
func (e *maskEditor) diameter() float32 { return 2 + 158*e.size.Value }

// updateMask handles the editor's buttons.
func (u *UI) updateMask(gtx layout.Context) {
	e := &u.mask
	if e.clear.Clicked(gtx) {
		u.App.ClearMask()
	}
	submitted := false
	for {
		ev, ok := e.path.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			submitted = true
		}
	}
	if e.load.Clicked(gtx) || submitted {
		if err := u.App.LoadMask(strings.TrimSpace(e.path.Text())); err != nil {
			u.note, u.noteErr = err.Error(), true
		} else {
			u.note = ""
		}
	}
}

// maskCanvas draws the photo at most side dp large with the mask over it
// and paints the mask from the pointer's drags.
func (u *UI) maskCanvas(gtx layout.Context, p *state.Photo, side unit.Dp) layout.Dimensions {
	e := &u.mask
	if p == nil || u.photoOp == nil || p.Width == 0 || p.Height == 0 {
		return layout.Dimensions{Size: image.Pt(gtx.Dp(side), gtx.Dp(side))}
	}
	max := float32(gtx.Dp(side))
	sc := min(max/float32(p.Width), max/float32(p.Height))
	size := image.Pt(int(float32(p.Width)*sc+0.5), int(float32(p.Height)*sc+0.5))
	e.scale = float32(p.Width) / float32(size.X)

	// Drags since the last frame, in the surface's coordinates.
	for {
		ev, ok := gtx.Event(pointer.Filter{Target: &e.tag, Kinds: pointer.Press | pointer.Drag | pointer.Release | pointer.Cancel})
		if !ok {
			break
		}
		pe, ok := ev.(pointer.Event)
		if !ok {
			continue
		}
		at := pe.Position.Mul(e.scale)
		r := float64(float32(gtx.Dp(unit.Dp(e.diameter()))) * e.scale / 2)
		erase := e.tool.Value == "eraser"
		switch pe.Kind {
		case pointer.Press:
			if pe.Buttons&pointer.ButtonPrimary == 0 && pe.Source == pointer.Mouse {
				break
			}
			e.down, e.last = true, at
			u.App.PaintMask(float64(at.X), float64(at.Y), float64(at.X), float64(at.Y), r, erase)
		case pointer.Drag:
			if e.down {
				u.App.PaintMask(float64(e.last.X), float64(e.last.Y), float64(at.X), float64(at.Y), r, erase)
				e.last = at
			}
		case pointer.Release, pointer.Cancel:
			e.down = false
		}
	}

	if v := u.App.MaskVersion(); !e.has || v != e.ver {
		e.ver, e.has = v, true
		e.op = paint.ImageOp{}
		if m := u.App.MaskSnapshot(); m != nil {
			img := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
			for i, b := range m.Bits {
				if b != 0 {
					img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = overlay.R, overlay.G, overlay.B, overlay.A
				}
			}
			e.op = paint.NewImageOp(img)
			e.op.Filter = paint.FilterNearest
		}
	}

	gtx.Constraints = layout.Exact(size)
	photo := *u.photoOp
	photo.Filter = paint.FilterNearest
	widget.Image{Src: photo, Fit: widget.Fill, Scale: 1}.Layout(gtx)
	if e.op.Size().X > 0 {
		widget.Image{Src: e.op, Fit: widget.Fill, Scale: 1}.Layout(gtx)
	}
	area := clip.Rect(image.Rectangle{Max: size}).Push(gtx.Ops)
	semantic.DescriptionOp(MaskSurface).Add(gtx.Ops)
	pointer.CursorCrosshair.Add(gtx.Ops)
	event.Op(gtx.Ops, &e.tag)
	area.Pop()
	return layout.Dimensions{Size: size}
}

// maskTools is the row under the photo: brush or eraser, size, clear,
// load, and how much of the photo is the subject.
func (u *UI) maskTools(s state.Snapshot) layout.Widget {
	return func(gtx layout.Context) layout.Dimensions {
		e := &u.mask
		status := "no mask: the whole photo is the subject; paint it on the photo"
		if p := s.Photo; p != nil && s.MaskCount > 0 {
			status = fmt.Sprintf("mask: %.1f %% of the photo is the subject", 100*float64(s.MaskCount)/float64(p.Width*p.Height))
		}
		u.Drawn.Mask = status
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Rigid(u.label(13, "subject mask").Layout), gap(8),
					layout.Rigid(material.RadioButton(u.th, &e.tool, "brush", "Brush").Layout), gap(4),
					layout.Rigid(material.RadioButton(u.th, &e.tool, "eraser", "Eraser").Layout), gap(8),
					layout.Rigid(func(gtx layout.Context) layout.Dimensions {
						gtx.Constraints.Min.X, gtx.Constraints.Max.X = gtx.Dp(140), gtx.Dp(140)
						return material.Slider(u.th, &e.size).Layout(gtx)
					}), gap(4),
					layout.Rigid(u.label(13, fmt.Sprintf("%.0f", e.diameter())).Layout), gap(8),
					layout.Rigid(u.button(&e.clear, "Clear mask", true)),
				)
			}), gap(4),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
					layout.Flexed(1, u.editor(&e.path, "mask picture (any channel > 0 is the subject)", 0)), gap(8),
					layout.Rigid(u.button(&e.load, "Load mask", true)),
				)
			}), gap(4),
			layout.Rigid(u.label(12, status).Layout),
		)
	}
}
