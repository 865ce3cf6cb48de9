// The end-to-end test: the real app in a real X window (Xvfb), the model
// loaded, Generate pressed with a real key event (xdotool), the four
// pictures awaited, the screen dumped (xwd), and the pictures compared
// with the CLI's for the same seed and options. It skips, saying why,
// where Xvfb, xdotool or xwd is missing, except under HARMONY_REQUIRE_GPU=1
// (CI), where it must run.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/cmd/harmony-app/internal/xwd"
	"harmony/engine/gpu/gputest"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if gputest.Required() {
				t.Fatalf("HARMONY_REQUIRE_GPU=1 and %s is missing (.ci/setup installs it): %v", tool, err)
			}
			t.Skipf("%s is missing (apt: xvfb xdotool x11-apps; HARMONY_REQUIRE_GPU=1 fails instead): %v", tool, err)
		}
	}
}

// lines collects a process's output and lets a test wait for a line.
type lines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) wait(t *testing.T, what string, d time.Duration) { l.waitN(t, what, 1, d) }

// waitN waits for the n-th occurrence of what.
func (l *lines) waitN(t *testing.T, what string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for strings.Count(l.String(), what) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %v; output:\n%s", what, d, l.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startXvfb starts a server on a display it picks itself and returns the
// DISPLAY value.
func startXvfb(t *testing.T) string {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x1000x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	require.NoError(t, cmd.Start())
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	num, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	require.NoError(t, err, "Xvfb did not report its display")
	return ":" + strings.TrimSpace(num)
}

func goBuild(t *testing.T, out, pkg string) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "go build %s", pkg)
}

func readNRGBA(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err, path)
	n := image.NewNRGBA(m.Bounds())
	draw.Draw(n, n.Rect, m, m.Bounds().Min, draw.Src)
	return n
}

func TestWindowEndToEnd(t *testing.T) {
	needTools(t, "Xvfb", "xdotool", "xwd")
	gputest.Default(t)
	dir := t.TempDir()
	appBin, cliBin := filepath.Join(dir, "harmony-app"), filepath.Join(dir, "harmony")
	goBuild(t, appBin, "harmony/cmd/harmony-app")
	goBuild(t, cliBin, "harmony/cmd/harmony")
	display := startXvfb(t)

	// The options come from a settings file, read through Set like a
	// user's remembered ones.
	settings := filepath.Join(dir, "app.json")
	require.NoError(t, state.WriteSettings(settings, state.Settings{Options: map[string]string{
		"steps": "3", "seed": "4242", "prompt": "playing a guitar"}}))
	out := filepath.Join(dir, "app-out")
	app := exec.Command(appBin, "-demo", "-settings", settings, "-out-dir", out, "-cache-dir", t.TempDir())
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

	log.wait(t, "harmony-app: ready: "+state.DemoModelName, 2*time.Minute)
	xdo := func(args ...string) string {
		cmd := exec.Command("xdotool", args...)
		cmd.Env = app.Env
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "xdotool %v: %s", args, b)
		return strings.TrimSpace(string(b))
	}
	win := xdo("search", "--sync", "--name", "^Harmony$")
	xdo("windowfocus", "--sync", strings.Fields(win)[0])
	start := time.Now()
	xdo("key", "Return")
	log.wait(t, "harmony-app: generating", 30*time.Second)
	log.wait(t, "harmony-app: done in", 3*time.Minute)
	t.Logf("app: %v from the key press to done (%s)", time.Since(start).Round(time.Millisecond), lastLine(log.String()))

	// The window writes the pictures on its next frame.
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range state.Kinds {
		for {
			if data, err := os.ReadFile(filepath.Join(out, k.File())); err == nil {
				if _, err := png.Decode(bytes.NewReader(data)); err == nil {
					break
				}
			}
			require.True(t, time.Now().Before(deadline), "no %s", k.File())
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The window shows the pictures: the Harmony picture's colours are on
	// screen (drawn scaled with nearest filtering, so its exact colours).
	// A software GL presents frames late under load: dump until they show.
	h := readNRGBA(t, filepath.Join(out, state.Harmony.File()))
	var screen *image.NRGBA
	found := 0
	for deadline := time.Now().Add(30 * time.Second); found <= len(h.Pix)/4/2 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		dump := exec.Command("xwd", "-root", "-silent")
		dump.Env = app.Env
		raw, err := dump.Output()
		require.NoError(t, err)
		screen, err = xwd.Decode(raw)
		require.NoError(t, err)
		onScreen := map[color.NRGBA]bool{}
		for i := 0; i < len(screen.Pix); i += 4 {
			onScreen[color.NRGBA{screen.Pix[i], screen.Pix[i+1], screen.Pix[i+2], 255}] = true
		}
		found = 0
		for i := 0; i < len(h.Pix); i += 4 {
			if onScreen[color.NRGBA{h.Pix[i], h.Pix[i+1], h.Pix[i+2], 255}] {
				found++
			}
		}
	}
	shot := filepath.Join(os.TempDir(), "harmony-app-e2e.png")
	if d := os.Getenv("HARMONY_APP_SCREENSHOTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		shot = filepath.Join(d, "e2e-window.png")
	}
	f, err := os.Create(shot)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, screen))
	require.NoError(t, f.Close())
	t.Logf("screenshot: %s; %d of %d Harmony pixels' colours are on screen", shot, found, len(h.Pix)/4)
	require.Greater(t, found, len(h.Pix)/4/2, "the results are not on screen")

	// The CLI with the same seed and options.
	cliOut := filepath.Join(dir, "cli-out")
	start = time.Now()
	cli := exec.Command(cliBin, "generate", "--steps", "3", "--seed", "4242", "--prompt", "playing a guitar", "--out-dir", cliOut, "--quiet")
	b, err := cli.CombinedOutput()
	require.NoError(t, err, "%s", b)
	t.Logf("cli: %v for the process (%s)", time.Since(start).Round(time.Millisecond), lastLine(string(b)))
	for _, k := range state.Kinds {
		got, want := readNRGBA(t, filepath.Join(out, k.File())), readNRGBA(t, filepath.Join(cliOut, k.File()))
		require.Equal(t, want.Rect, got.Rect)
		require.True(t, bytes.Equal(want.Pix, got.Pix), "%s: the window's picture differs from the CLI's", k)
	}

	// Keyboard: a click into the steps field (at 96 dpi one Dp is one
	// pixel; the field sits under the Hugging Face row and the prompt
	// rows), select all, type 200;
	// Enter in a field generates, Esc cancels.
	xdo("mousemove", "--sync", "40", "522", "click", "1")
	xdo("key", "ctrl+a", "BackSpace")
	for _, k := range []string{"2", "0", "0"} {
		xdo("key", k) // one at a time: xdotool type can repeat keys on Xvfb
	}
	xdo("key", "Return")
	log.waitN(t, "harmony-app: generating", 2, 30*time.Second)
	time.Sleep(time.Second)
	xdo("key", "Escape")
	log.wait(t, "harmony-app: cancelled", time.Minute)

	// SIGTERM closes the window, and the settings are written on the way
	// out.
	require.NoError(t, app.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, exitErr, "the app's exit; output:\n%s", log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("the app did not exit on SIGTERM; output:\n%s", log.String())
	}
	saved, err := state.ReadSettings(settings)
	require.NoError(t, err)
	require.Equal(t, "4242", saved.Options["seed"])
	require.Equal(t, "200", saved.Options["steps"])
	require.Equal(t, "playing a guitar", saved.Options["prompt"])
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprint(s)
}
