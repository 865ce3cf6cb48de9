//go:build !js

// serve_mask_e2e_test.go: the page's subject-mask editor (ELITE's object
// mask) driven in headless Chromium with real pointer events, its mask read
// back as the engine gets it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writePNG writes an RGB picture of w×h whose pixel (x, y) is f(x, y).
func writePNG(t *testing.T, file string, w, h int, f func(x, y int) color.RGBA) {
	t.Helper()
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			im.SetRGBA(x, y, f(x, y))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, im))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
}

// readMask decodes a mask PNG the page made: 8-bit grayscale, 0 or 255.
func readMask(t *testing.T, file string) *image.Gray {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	im, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	g, ok := im.(*image.Gray)
	require.True(t, ok, "%s is a %T, not 8-bit grayscale", file, im)
	for _, v := range g.Pix {
		require.True(t, v == 0 || v == 255, "%s has the level %d", file, v)
	}
	return g
}

// segDist is the distance from p to the segment a–b.
func segDist(p, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = math.Max(0, math.Min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/l2))
	}
	return math.Hypot(p[0]-(a[0]+t*dx), p[1]-(a[1]+t*dy))
}

// TestPageMaskEditor: with ELITE chosen, a brush stroke and an eraser
// stroke across it (mouse presses and moves on the overlay) give the mask
// the strokes cover, at the photo's size, within a pixel of each stroke's
// edge; the overlay shows painted pixels translucent; a mask loaded from a
// PNG of another size takes every pixel with any channel > 0; a new photo
// clears the mask; no request carries a mask.
func TestPageMaskEditor(t *testing.T) {
	url, log := browserSetup(t)
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-mask"))
	require.NoError(t, os.RemoveAll(out))
	require.NoError(t, os.MkdirAll(out, 0o755))
	photo := filepath.Join("www", "demo", "subject.png") // 96×64
	photo2 := filepath.Join(out, "second.png")
	writePNG(t, photo2, 40, 30, func(x, y int) color.RGBA { return color.RGBA{uint8(6 * x), uint8(8 * y), 90, 255} })
	// 192×128, twice the photo: its left third is subject by a blue of 1
	// alone (ELITE's rule: any channel > 0).
	maskFile := filepath.Join(out, "loaded-in.png")
	writePNG(t, maskFile, 192, 128, func(x, y int) color.RGBA {
		if x < 64 {
			return color.RGBA{0, 0, 1, 255}
		}
		return color.RGBA{0, 0, 0, 255}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--mode", "mask", "--photo", photo, "--photo2", photo2,
		"--mask-file", maskFile, "--url", url, "--out", out, "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	t.Logf("%s", strings.TrimSpace(string(stdout)))
	var rep struct {
		OffOrigin []string
		PhotoSent bool
		MaskSent  bool
		Error     any
		Mask      struct {
			ToolsShown, OverlayShown bool
			Photo                    [2]int
			Strokes                  []struct {
				Tool   string
				Radius float64
				A, B   [2]float64
			}
			SizeLabel, Status string
			Painted, Loaded   string
			OverlayAlpha      [2]int
			AfterNewPhoto     *string
			AfterNewPhotoSize [2]int
		}
	}
	data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, rerr, "the driver wrote no report")
	require.NoError(t, json.Unmarshal(data, &rep))
	require.NoError(t, err, "browser run failed: %v", rep.Error)
	m := rep.Mask
	require.Empty(t, rep.OffOrigin)
	require.False(t, rep.PhotoSent, "a request carried the photo")
	require.False(t, rep.MaskSent, "a request carried the mask")
	require.True(t, m.ToolsShown, "the mask tools are hidden with ELITE chosen")
	require.True(t, m.OverlayShown, "the mask overlay is hidden with ELITE chosen")
	require.Equal(t, [2]int{96, 64}, m.Photo, "the mask is not at the photo's size")
	require.Equal(t, "24 px", m.SizeLabel)
	require.Contains(t, m.Status, "% of the photo is the subject")
	require.Greater(t, m.OverlayAlpha[0], 0, "painted pixels do not show on the overlay")
	require.Less(t, m.OverlayAlpha[0], 255, "the overlay hides the photo")
	require.Equal(t, 0, m.OverlayAlpha[1], "unpainted pixels show on the overlay")

	// The painted mask: subject within the brush stroke unless within the
	// eraser stroke; pixels within a pixel of an edge are not judged.
	require.Len(t, m.Strokes, 2)
	brush, eraser := m.Strokes[0], m.Strokes[1]
	require.Equal(t, "eraser", eraser.Tool)
	g := readMask(t, m.Painted)
	require.Equal(t, image.Rect(0, 0, 96, 64), g.Bounds())
	judged, subject := 0, 0
	for y := 0; y < 64; y++ {
		for x := 0; x < 96; x++ {
			p := [2]float64{float64(x) + 0.5, float64(y) + 0.5}
			db, de := segDist(p, brush.A, brush.B), segDist(p, eraser.A, eraser.B)
			var want uint8
			switch {
			case de < eraser.Radius-1:
				want = 0
			case math.Abs(de-eraser.Radius) <= 1 || math.Abs(db-brush.Radius) <= 1:
				continue
			case db < brush.Radius:
				want = 255
			}
			judged++
			if want == 255 {
				subject++
			}
			require.Equal(t, want, g.GrayAt(x, y).Y, "mask pixel (%d, %d): %.2f from the brush stroke, %.2f from the eraser's", x, y, db, de)
		}
	}
	require.Greater(t, subject, 200, "too few subject pixels judged")
	require.Greater(t, judged, 96*64/2, "too few pixels judged")

	// The loaded mask: resized to the photo, the left third subject.
	g = readMask(t, m.Loaded)
	require.Equal(t, image.Rect(0, 0, 96, 64), g.Bounds())
	for y := 0; y < 64; y++ {
		for x := 0; x < 96; x++ {
			want := uint8(0)
			if x < 32 {
				want = 255
			}
			require.Equal(t, want, g.GrayAt(x, y).Y, "loaded mask pixel (%d, %d)", x, y)
		}
	}

	// A new photo: an empty mask at its size.
	require.Nil(t, m.AfterNewPhoto, "the mask outlived its photo")
	require.Equal(t, [2]int{40, 30}, m.AfterNewPhotoSize)

	// The server saw every request: none carries a mask's pixels.
	var probes [][]byte
	for _, f := range []string{m.Painted, m.Loaded} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		probes = append(probes, b[33:])
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, b := range log.body {
		for _, p := range probes {
			require.False(t, bytes.Contains(b, p), "request %s carried a mask", log.reqs[i])
		}
		require.NotContains(t, log.reqs[i], "POST", "the page posted something: %s", log.reqs[i])
	}
}
