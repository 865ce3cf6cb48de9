// Tests of the app's state machine against the real engine on the bundled
// tiny demo model (lavapipe in CI): the phases of a run, cancelling, the
// pipeline's refusals, and pictures identical to the CLI's for one seed.
package state

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
)

// phases records every phase the app passes through, in order, without
// repeats.
type phases struct {
	mu   sync.Mutex
	seen []Phase
	app  *App
}

func (p *phases) onChange() {
	if p.app == nil {
		return
	}
	ph := p.app.Snapshot().Phase
	p.mu.Lock()
	if n := len(p.seen); n == 0 || p.seen[n-1] != ph {
		p.seen = append(p.seen, ph)
	}
	p.mu.Unlock()
}

func (p *phases) list() []Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Phase(nil), p.seen...)
}

// newLoaded returns an app with the demo model loaded.
func newLoaded(t *testing.T) (*App, *phases) {
	t.Helper()
	gputest.Default(t) // skips, or fails under HARMONY_REQUIRE_GPU=1, without an adapter
	p := &phases{}
	a := New(Config{OnChange: p.onChange})
	p.app = a
	t.Cleanup(a.Close)
	require.Equal(t, NoModel, a.Snapshot().Phase)
	require.NoError(t, a.Load(context.Background(), DemoModel))
	s := a.Snapshot()
	require.Equal(t, Ready, s.Phase)
	require.Equal(t, DemoModelName, s.Model)
	require.NotNil(t, s.Device)
	return a, p
}

func decodePNG(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	n := image.NewNRGBA(m.Bounds())
	draw.Draw(n, n.Rect, m, m.Bounds().Min, draw.Src)
	return n
}

// TestGenerateMatchesCLI: load → ready → generating → done with a live
// preview, four pictures, saved with their parameters, pixel for pixel the
// CLI's for the same seed and options.
func TestGenerateMatchesCLI(t *testing.T) {
	a, ph := newLoaded(t)
	for name, v := range map[string]string{"steps": "4", "seed": "1234", "prompt": "playing a guitar"} {
		require.NoError(t, a.Set(name, v))
	}
	var previews int
	var mu sync.Mutex
	a.cfg.OnChange = func() {
		ph.onChange()
		if a.Snapshot().Preview != nil {
			mu.Lock()
			previews++
			mu.Unlock()
		}
	}
	start := time.Now()
	require.NoError(t, a.Generate())
	a.Wait()
	t.Logf("app: generated in %v", time.Since(start))
	s := a.Snapshot()
	require.Equal(t, Done, s.Phase, "err: %v", s.Err)
	require.Equal(t, []Phase{Loading, Ready, Generating, Done}, ph.list())
	require.Positive(t, previews)
	for _, k := range Kinds {
		require.NotNil(t, s.Result.Images[k], k.String())
	}
	dir := t.TempDir()
	paths, err := a.SaveAll(filepath.Join(dir, "app"))
	require.NoError(t, err)
	require.Len(t, paths, 4)
	data, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	text, ok := pngmeta.Text(data, pngmeta.Key)
	require.True(t, ok)
	require.Contains(t, text, "playing a guitar\n")
	require.Contains(t, text, "Steps: 4, Sampler: PNDM, CFG scale: 7.5, Seed: 1234, Size: 32x32, Model: bundled demo model")

	// The CLI on the same model, photo, seed and options.
	bin := filepath.Join(dir, "harmony")
	build := exec.Command("go", "build", "-o", bin, "harmony/cmd/harmony")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	start = time.Now()
	cli := exec.Command(bin, "generate", "--steps", "4", "--seed", "1234", "--prompt", "playing a guitar", "--out-dir", filepath.Join(dir, "cli"), "--quiet")
	out, err := cli.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("cli: generated in %v (process included)", time.Since(start))
	for _, k := range Kinds {
		got, want := decodePNG(t, filepath.Join(dir, "app", k.File())), decodePNG(t, filepath.Join(dir, "cli", k.File()))
		require.Equal(t, want.Rect, got.Rect, k.String())
		require.True(t, bytes.Equal(want.Pix, got.Pix), "%s: the app's picture differs from the CLI's", k)
	}
}

// TestCancel: cancelling mid-run ends in Cancelled, and the app can run
// again afterwards.
func TestCancel(t *testing.T) {
	a, ph := newLoaded(t)
	require.NoError(t, a.Set("steps", "200"))
	require.NoError(t, a.Generate())
	deadline := time.Now().Add(time.Minute)
	for a.Snapshot().Progress.Call < 2 {
		require.True(t, time.Now().Before(deadline), "no progress")
		require.Equal(t, Generating, a.Snapshot().Phase)
		time.Sleep(20 * time.Millisecond)
	}
	a.Cancel()
	a.Wait()
	s := a.Snapshot()
	require.Equal(t, Cancelled, s.Phase)
	require.NoError(t, s.Err)
	require.Nil(t, s.Result)
	require.Equal(t, []Phase{Loading, Ready, Generating, Cancelled}, ph.list())
	require.Less(t, s.Progress.Call, s.Progress.Calls)

	require.NoError(t, a.Set("steps", "1"))
	require.NoError(t, a.Generate())
	a.Wait()
	s = a.Snapshot()
	require.Equal(t, Done, s.Phase, "err: %v", s.Err)
}

// TestRefusals: a refused option, options that do not validate together,
// a photo that does not decode and a model that does not exist all end in
// the pipeline's (or loader's) own message; nothing panics.
func TestRefusals(t *testing.T) {
	a, _ := newLoaded(t)
	var want pipeline.Options
	wantErr := want.Set("guidance", "lots")
	require.Error(t, wantErr)

	err := a.Set("guidance", "lots")
	require.EqualError(t, err, wantErr.Error())
	require.EqualError(t, a.Snapshot().FieldErrs["guidance"], wantErr.Error())
	require.EqualError(t, a.Generate(), wantErr.Error())
	s := a.Snapshot()
	require.Equal(t, Failed, s.Phase)
	require.EqualError(t, s.Err, "pipeline: --guidance must be a number in [0, 100], got \"lots\"")

	require.NoError(t, a.Set("guidance", "1")) // fine alone; Harmony needs more
	require.Empty(t, a.Snapshot().FieldErrs)
	o := a.Snapshot().Options
	require.EqualError(t, a.Generate(), o.Validate().Error())
	require.Contains(t, a.Snapshot().Err.Error(), "must be above 1 for Harmony")

	require.NoError(t, a.Set("mask-level", "99")) // a level the model does not have
	require.NoError(t, a.Set("guidance", "7.5"))
	require.NoError(t, a.Generate())
	a.Wait()
	s = a.Snapshot()
	require.Equal(t, Failed, s.Phase)
	require.Contains(t, s.Err.Error(), "pipeline: --mask-level must be a level of this UNet")

	require.Error(t, a.SetPhoto("notes.txt", []byte("not a picture")))
	require.Equal(t, "demo photo", a.Snapshot().Photo.Name)

	err = a.Load(context.Background(), filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	s = a.Snapshot()
	require.Equal(t, Failed, s.Phase)
	require.Equal(t, err, s.Err)
	require.Error(t, a.Generate())
}

// TestSettingsRoundTrip: settings go through Set both ways, and a bad
// remembered value is refused with the pipeline's message.
func TestSettingsRoundTrip(t *testing.T) {
	a := New(Config{})
	require.NoError(t, a.Set("seed", "99"))
	require.NoError(t, a.Set("mask-threshold", "0.4"))
	path := filepath.Join(t.TempDir(), "harmony", "app.json")
	require.NoError(t, WriteSettings(path, a.Settings("/models/x", "")))
	s, err := ReadSettings(path)
	require.NoError(t, err)
	require.Equal(t, "/models/x", s.Model)
	b := New(Config{})
	require.NoError(t, b.Apply(s))
	oa, ob := a.Snapshot().Options, b.Snapshot().Options
	require.Equal(t, oa.Get("mask-threshold"), ob.Get("mask-threshold"))
	require.Equal(t, uint64(99), b.Snapshot().Options.Seed)

	s.Options["steps"] = "0"
	err = b.Apply(s)
	require.ErrorContains(t, err, "pipeline: --steps must be a whole number from 1 to 1000")
	none, err := ReadSettings(filepath.Join(t.TempDir(), "none.json"))
	require.NoError(t, err)
	require.Empty(t, none.Options)
}
