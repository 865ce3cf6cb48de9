// The mask editor driven by pointer events queued on Gio's router, as the
// window queues them: a brush drag and an eraser drag across it give the
// mask the strokes cover, within a pixel of their edges; the overlay
// shows on the photo; a mask file and a new photo behave as on the page.
package ui

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gioui.org/f32"
	"gioui.org/io/pointer"
	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
)

// drag presses the primary button at a, drags to b in steps, releases.
func (r *renderer) drag(u *UI, a, b f32.Point, steps int) {
	ev := func(k pointer.Kind, p f32.Point, btn pointer.Buttons) pointer.Event {
		return pointer.Event{Kind: k, Source: pointer.Mouse, Buttons: btn, Position: p}
	}
	r.router.Queue(ev(pointer.Move, a, 0), ev(pointer.Press, a, pointer.ButtonPrimary))
	r.frame(u, "")
	for i := 1; i <= steps; i++ {
		t := float32(i) / float32(steps)
		// a move with the button held: the router makes it a drag
		r.router.Queue(ev(pointer.Move, a.Add(b.Sub(a).Mul(t)), pointer.ButtonPrimary))
		r.frame(u, "")
	}
	r.router.Queue(ev(pointer.Release, b, 0))
	r.frame(u, "")
}

// surface is the painting surface's bounds in the window.
func (r *renderer) surface(t *testing.T) image.Rectangle {
	for _, n := range r.router.AppendSemantics(nil) {
		if n.Desc.Description == MaskSurface {
			return n.Desc.Bounds
		}
	}
	t.Fatal("no mask surface in the frame")
	return image.Rectangle{}
}

func segDist(p, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = math.Max(0, math.Min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/l2))
	}
	return math.Hypot(p[0]-(a[0]+t*dx), p[1]-(a[1]+t*dy))
}

func writePNG(t *testing.T, file string, w, h int, f func(x, y int) color.RGBA) []byte {
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			im.SetRGBA(x, y, f(x, y))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, im))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
	return buf.Bytes()
}

func TestMaskBrush(t *testing.T) {
	a := state.New(state.Config{CacheDir: t.TempDir()})
	t.Cleanup(a.Close)
	r := newRenderer(t)
	u := New(a, "", "")
	r.frame(u, "")
	require.Empty(t, u.Drawn.Mask, "the mask editor shows for BLIP-Diffusion")
	require.NoError(t, a.Set("base", "elite"))
	before := r.frame(u, "6-mask-empty")
	require.Contains(t, u.Drawn.Mask, "whole photo is the subject")

	box := r.surface(t)
	require.Equal(t, 320, box.Dx(), "the photo is not shown large for painting")
	ph := a.Snapshot().Photo
	scale := float64(ph.Width) / float64(box.Dx()) // photo pixels per screen pixel
	at := func(fx, fy float64) f32.Point {
		return f32.Pt(float32(float64(box.Min.X)+fx*float64(box.Dx())), float32(float64(box.Min.Y)+fy*float64(box.Dy())))
	}
	photoXY := func(p f32.Point) [2]float64 {
		return [2]float64{(float64(p.X) - float64(box.Min.X)) * scale, (float64(p.Y) - float64(box.Min.Y)) * scale}
	}
	type stroke struct {
		a, b   [2]float64
		radius float64
	}
	// Brush at the default size (24), then the eraser at 14.
	b0, b1 := at(0.15, 0.5), at(0.85, 0.5)
	r.drag(u, b0, b1, 10)
	brush := stroke{photoXY(b0), photoXY(b1), 12 * scale}
	u.mask.tool.Value = "eraser"
	u.mask.size.Value = 12.0 / 158
	e0, e1 := at(0.5, 0.1), at(0.5, 0.9)
	r.drag(u, e0, e1, 10)
	eraser := stroke{photoXY(e0), photoXY(e1), 7 * scale}
	after := r.frame(u, "7-mask-painted")
	require.Contains(t, u.Drawn.Mask, "% of the photo is the subject")

	m := a.MaskSnapshot()
	require.Equal(t, [2]int{ph.Width, ph.Height}, [2]int{m.W, m.H})
	judged, subject := 0, 0
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			p := [2]float64{float64(x) + 0.5, float64(y) + 0.5}
			db, de := segDist(p, brush.a, brush.b), segDist(p, eraser.a, eraser.b)
			var want uint8
			switch {
			case de < eraser.radius-1:
			case math.Abs(de-eraser.radius) <= 1 || math.Abs(db-brush.radius) <= 1:
				continue
			case db < brush.radius:
				want = 1
			}
			judged++
			subject += int(want)
			require.Equal(t, want, m.Bits[y*m.W+x], "mask pixel (%d, %d): %.2f from the brush stroke, %.2f from the eraser's", x, y, db, de)
		}
	}
	require.Greater(t, subject, 200)
	require.Greater(t, judged, m.W*m.H/2)

	// What the engine gets: an 8-bit gray PNG, 255 where painted.
	data, err := a.MaskPNG()
	require.NoError(t, err)
	im, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	g, ok := im.(*image.Gray)
	require.True(t, ok, "the mask PNG is a %T", im)
	for i, v := range m.Bits {
		require.Equal(t, 255*v, g.Pix[i])
	}

	// The overlay: painted pixels change colour, the others keep it.
	if before != nil {
		pt := func(p f32.Point) image.Point { return image.Pt(int(p.X), int(p.Y)) }
		painted, clear := pt(at(0.3, 0.5)), pt(at(0.3, 0.1))
		require.NotEqual(t, before.RGBAAt(painted.X, painted.Y), after.RGBAAt(painted.X, painted.Y), "the mask does not show over the photo")
		require.Equal(t, before.RGBAAt(clear.X, clear.Y), after.RGBAAt(clear.X, clear.Y), "unpainted pixels changed")
	}

	// A mask picture twice the photo's size, its left third subject by a
	// blue of 1 alone.
	file := filepath.Join(t.TempDir(), "mask.png")
	writePNG(t, file, 2*ph.Width, 2*ph.Height, func(x, y int) color.RGBA {
		if x < 2*ph.Width/3 {
			return color.RGBA{0, 0, 1, 255}
		}
		return color.RGBA{A: 255}
	})
	u.mask.path.SetText(file)
	u.mask.load.Click()
	r.frame(u, "")
	require.Empty(t, u.note)
	m = a.MaskSnapshot()
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			want := uint8(0)
			if x < ph.Width/3 {
				want = 1
			}
			require.Equal(t, want, m.Bits[y*m.W+x], "loaded mask pixel (%d, %d)", x, y)
		}
	}

	// A new photo: a new, empty mask at its size.
	require.NoError(t, a.SetPhoto("second.png", writePNG(t, filepath.Join(t.TempDir(), "p.png"), 40, 30, func(x, y int) color.RGBA { return color.RGBA{90, 90, 90, 255} })))
	r.frame(u, "")
	m = a.MaskSnapshot()
	require.Equal(t, [3]int{40, 30, 0}, [3]int{m.W, m.H, m.Count})
	data, err = a.MaskPNG()
	require.NoError(t, err)
	require.Nil(t, data, "an empty mask goes to the engine")
}
