//go:build linux && !android && !nox11 && cgo

// The file drop end to end: the real app in a real X window (Xvfb), a
// scripted XDND drag source (internal/xdnd) drops a photo file onto it, the
// photo's thumbnail is awaited on screen (xwd) and the settings written on
// exit name the dropped file. Skips like TestWindowEndToEnd where the tools
// are missing, except under HARMONY_REQUIRE_GPU=1.
package main

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/cmd/harmony-app/internal/xdnd"
	"harmony/cmd/harmony-app/internal/xwd"
)

func TestWindowDrop(t *testing.T) {
	needTools(t, "Xvfb", "xdotool", "xwd")
	dir := t.TempDir()
	appBin := filepath.Join(dir, "harmony-app")
	goBuild(t, appBin, "harmony/cmd/harmony-app")
	display := startXvfb(t)

	// A photo of one colour found nowhere else on the window, under a
	// name that needs escaping in a URI.
	pink := color.NRGBA{R: 201, G: 17, B: 133, A: 255}
	m := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for i := 0; i < len(m.Pix); i += 4 {
		copy(m.Pix[i:], []byte{pink.R, pink.G, pink.B, 255})
	}
	photo := filepath.Join(dir, "my photo #1.png")
	f, err := os.Create(photo)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, m))
	require.NoError(t, f.Close())
	notPhoto := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notPhoto, []byte("not a picture"), 0o644))
	uri := func(p string) string { return (&url.URL{Scheme: "file", Path: p}).String() }

	settings := filepath.Join(dir, "app.json")
	app := exec.Command(appBin, "-demo", "-settings", settings, "-cache-dir", t.TempDir())
	app.Env = append(os.Environ(), "DISPLAY="+display)
	var log lines
	app.Stdout, app.Stderr = io.Discard, &log
	require.NoError(t, app.Start())
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = app.Wait(); close(exited) }()
	t.Cleanup(func() {
		app.Process.Kill()
		<-exited
	})

	find := exec.Command("xdotool", "search", "--sync", "--name", "^Harmony$")
	find.Env = app.Env
	b, err := find.CombinedOutput()
	require.NoError(t, err, "xdotool search: %s", b)
	win, err := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
	require.NoError(t, err)
	// The app makes the window a drop target once Gio hands it over; a
	// drag before that finds no XdndAware, so retry for a while.
	drag := func(uris string) {
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if err = xdnd.Drag(display, uintptr(win), 100, 100, uris, nil, 10*time.Second); err == nil || !strings.Contains(err.Error(), "not XdndAware") {
				break
			}
		}
		require.NoError(t, err)
	}

	// A file that is no picture: an error line, the photo unchanged.
	drag(uri(notPhoto) + "\r\n")
	log.wait(t, "harmony-app: dropped files: ", 30*time.Second)
	// The picture after a file that is none: the first one that decodes.
	drag(uri(notPhoto) + "\r\n" + uri(photo) + "\r\n")
	log.wait(t, "harmony-app: photo dropped: "+photo, 30*time.Second)

	// The thumbnail (96 Dp square, 96×72 pixels at 96 dpi) is on screen.
	pinks := 0
	for deadline := time.Now().Add(30 * time.Second); pinks < 96*72/2 && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		dump := exec.Command("xwd", "-root", "-silent")
		dump.Env = app.Env
		raw, err := dump.Output()
		require.NoError(t, err)
		screen, err := xwd.Decode(raw)
		require.NoError(t, err)
		pinks = 0
		for i := 0; i < len(screen.Pix); i += 4 {
			if screen.Pix[i] == pink.R && screen.Pix[i+1] == pink.G && screen.Pix[i+2] == pink.B {
				pinks++
			}
		}
	}
	require.GreaterOrEqual(t, pinks, 96*72/2, "the dropped photo is not on screen")

	require.NoError(t, app.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, exitErr, "the app's exit; output:\n%s", log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("the app did not exit on SIGTERM; output:\n%s", log.String())
	}
	saved, err := state.ReadSettings(settings)
	require.NoError(t, err)
	require.Equal(t, photo, saved.Photo)
}
