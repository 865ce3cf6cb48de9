// Rendering tests: the window's contents in the main states, drawn by
// Gio's headless GPU renderer (EGL on Mesa here) from the real engine's
// state on the bundled tiny model, checked by structure (what the frame
// laid out) and by pixels (the banner's colour, the results' pictures).
// Where no headless context can be had the frames are still laid out and
// checked by structure. HARMONY_APP_SCREENSHOTS=dir keeps the screenshots.
package ui

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gioui.org/gpu/headless"
	"gioui.org/io/input"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"
	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/engine/gpu/gputest"
	"harmony/engine/pipeline"
)

const shotW, shotH = 1000, 1400

// renderer draws frames of u, headless when it can.
type renderer struct {
	t      *testing.T
	win    *headless.Window
	router input.Router // an input source, so widgets draw enabled
}

func newRenderer(t *testing.T) *renderer {
	w, err := headless.NewWindow(shotW, shotH)
	if err != nil {
		t.Logf("no headless GPU context (%v): checking the layout only", err)
		return &renderer{t: t}
	}
	t.Cleanup(w.Release)
	return &renderer{t: t, win: w}
}

// frame lays u out twice (the second frame sees the first's input state)
// and returns the screenshot, or nil without a context.
func (r *renderer) frame(u *UI, name string) *image.RGBA {
	var ops op.Ops
	for range 2 {
		ops.Reset()
		gtx := layout.Context{Ops: &ops, Now: time.Now(), Metric: unit.Metric{PxPerDp: 1, PxPerSp: 1},
			Constraints: layout.Exact(image.Pt(shotW, shotH)), Source: r.router.Source()}
		u.Layout(gtx)
		r.router.Frame(&ops)
	}
	if r.win == nil {
		return nil
	}
	require.NoError(r.t, r.win.Frame(&ops))
	img := image.NewRGBA(image.Rect(0, 0, shotW, shotH))
	require.NoError(r.t, r.win.Screenshot(img))
	if dir := os.Getenv("HARMONY_APP_SCREENSHOTS"); dir != "" {
		require.NoError(r.t, os.MkdirAll(dir, 0o755))
		f, err := os.Create(filepath.Join(dir, name+".png"))
		require.NoError(r.t, err)
		require.NoError(r.t, png.Encode(f, img))
		require.NoError(r.t, f.Close())
	}
	return img
}

// count returns how many pixels are c (within 8 levels a channel).
func count(img *image.RGBA, c color.NRGBA) int {
	n := 0
	near := func(a, b uint8) bool { return int(a)-int(b) <= 8 && int(b)-int(a) <= 8 }
	for i := 0; i+3 < len(img.Pix); i += 4 {
		if near(img.Pix[i], c.R) && near(img.Pix[i+1], c.G) && near(img.Pix[i+2], c.B) {
			n++
		}
	}
	return n
}

func TestRenderStates(t *testing.T) {
	gputest.Default(t)
	a := state.New(state.Config{})
	t.Cleanup(a.Close)
	r := newRenderer(t)
	u := New(a, "", "")

	// Before the model: no banner, no results.
	r.frame(u, "0-start")
	require.Empty(t, u.Drawn.Banner)
	require.Zero(t, u.Drawn.Results)
	require.Contains(t, u.Drawn.Adapter, "not opened")

	require.NoError(t, a.Load(context.Background(), state.DemoModel))
	img := r.frame(u, "1-ready")
	require.Contains(t, u.Drawn.Progress, "ready")
	require.Contains(t, u.Drawn.Adapter, "GPU: ")
	if img != nil {
		require.Zero(t, count(img, banner), "a banner without an error")
	}

	// The advanced panel lists every option the form has no place for,
	// once, in the pipeline's order.
	u.showAdv = true
	r.frame(u, "1-advanced")
	u.showAdv = false
	var want []string
	for _, info := range pipeline.OptionList() {
		if !slices.Contains(main, info.Name) {
			want = append(want, info.Name)
		}
	}
	require.Equal(t, want, u.Drawn.Advanced)
	require.Contains(t, want, "mask-threshold")

	// A refused option: the banner carries the pipeline's message.
	err := a.Set("steps", "many")
	require.Error(t, err)
	require.Error(t, a.Generate())
	img = r.frame(u, "2-error")
	require.Equal(t, err.Error(), u.Drawn.Banner)
	require.Equal(t, `pipeline: --steps must be a whole number from 1 to 1000, got "many"`, u.Drawn.Banner)
	if img != nil {
		require.Greater(t, count(img, banner), 1000, "the banner's background")
	}

	// Done: four pictures side by side.
	require.NoError(t, a.Set("steps", "2"))
	require.NoError(t, a.Generate())
	a.Wait()
	require.Equal(t, state.Done, a.Snapshot().Phase)
	img = r.frame(u, "3-done")
	require.Empty(t, u.Drawn.Banner)
	require.Equal(t, 4, u.Drawn.Results)
	require.Equal(t, []string{"Harmony", "BLIP-Diffusion", "visual only", "subject mask"}, u.Drawn.Captions)
	require.Contains(t, u.Drawn.Progress, "done in")
	if img != nil {
		// The Harmony picture's corner pixel shows at 200/32 scale.
		res := a.Snapshot().Result.Images[state.Harmony]
		px := color.NRGBA{R: res.Pix[0], G: res.Pix[1], B: res.Pix[2], A: 255}
		require.Greater(t, count(img, px), 20, "the Harmony picture's colour %v", px)
	}
}

// TestCachedPanel: the cached-models panel lists each model in the cache
// with its size and a delete button, and deleting empties it.
func TestCachedPanel(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "huggingface.co_owner_tiny-0123456789ab")
	require.NoError(t, os.MkdirAll(model, 0o755))
	rec := `{"name": "owner/tiny", "url": "https://huggingface.co/owner/tiny/resolve/main/", "complete": true}`
	require.NoError(t, os.WriteFile(filepath.Join(model, state.RecordName), []byte(rec), 0o644))
	piece := make([]byte, 3<<20-len(rec)) // 3.0 MB with the record
	require.NoError(t, os.WriteFile(filepath.Join(model, "0f0f"), piece, 0o644))
	// A folder that is not a cached model is neither listed nor deleted.
	other := filepath.Join(dir, "not-a-model")
	require.NoError(t, os.MkdirAll(other, 0o755))

	a := state.New(state.Config{CacheDir: dir})
	t.Cleanup(a.Close)
	r := newRenderer(t)
	u := New(a, "", "")
	r.frame(u, "4-cached")
	require.Equal(t, []string{"owner/tiny — 3.0 MB"}, u.Drawn.Cached)
	require.Equal(t, 1, u.Drawn.Deletes)

	// The delete button's action removes exactly that model.
	u.DeleteCached(a.Snapshot().Cached[0].Dir)
	r.frame(u, "5-deleted")
	require.Empty(t, u.Drawn.Cached)
	require.Zero(t, u.Drawn.Deletes)
	require.Empty(t, u.Drawn.Banner)
	_, err := os.Stat(model)
	require.True(t, os.IsNotExist(err))
	_, err = os.Stat(other)
	require.NoError(t, err)
}

// TestDownloadLine: a download's progress in words.
func TestDownloadLine(t *testing.T) {
	p := state.Progress{BytesDone: 10 << 20, BytesTotal: 40 << 20, CacheBytes: 4 << 20, Rate: 2 << 20, ETA: 15 * time.Second}
	require.Equal(t, "loading model… 10.0 MB of 40.0 MB (4.0 MB from the cache), 2.0 MB/s, about 15s left", downloadLine(p))
	require.Equal(t, "owner/x — 1.5 MB (partial: Load resumes it)", cachedLine(state.CachedModel{Name: "owner/x", Bytes: 3 << 19}))
}
