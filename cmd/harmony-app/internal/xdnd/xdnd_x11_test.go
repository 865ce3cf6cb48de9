//go:build linux && !android && !nox11 && cgo

// The XDND target against the test source on a real X server (Xvfb): the
// window belongs to another connection that never reads its events, as
// Gio's does for XDND. Skips where Xvfb is missing, except under
// HARMONY_REQUIRE_GPU=1 (CI), where it must run.
package xdnd

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func startXvfb(t *testing.T) string {
	if _, err := exec.LookPath("Xvfb"); err != nil {
		if os.Getenv("HARMONY_REQUIRE_GPU") == "1" {
			t.Fatalf("HARMONY_REQUIRE_GPU=1 and Xvfb is missing (.ci/setup installs it): %v", err)
		}
		t.Skipf("Xvfb is missing (apt: xvfb): %v", err)
	}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "640x480x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	require.NoError(t, cmd.Start())
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	num, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	require.NoError(t, err, "Xvfb did not report its display")
	return ":" + strings.TrimSpace(num)
}

func TestDropThroughProxy(t *testing.T) {
	display := startXvfb(t)
	win, closeWin, err := ForeignWindow(display)
	require.NoError(t, err)
	defer closeWin()

	var mu sync.Mutex
	var got [][]string
	accept := true
	stop, err := Watch(display, win, func(paths []string) bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, paths)
		return accept
	})
	require.NoError(t, err)
	defer stop()

	require.NoError(t, Drag(display, win, 50, 50, "file:///tmp/a%20b.png\r\nfile:///tmp/c.jpg\r\n", nil, 10*time.Second))
	// A file manager's offer: more than three types, in XdndTypeList.
	nautilus := []string{"x-special/gnome-icon-list", "UTF8_STRING", "text/plain", "text/uri-list"}
	require.NoError(t, Drag(display, win, 50, 50, "file:///tmp/f.webp\r\n", nautilus, 10*time.Second))
	// The target answers XdndFinished with what drop said.
	mu.Lock()
	accept = false
	mu.Unlock()
	require.ErrorContains(t, Drag(display, win, 60, 60, "file:///tmp/d.png\r\n", nil, 10*time.Second), "refused the drop")
	// No local file: refused without asking drop.
	require.ErrorContains(t, Drag(display, win, 60, 60, "https://example.com/e.png\r\n", nil, 10*time.Second), "refused the drop")
	// No text/uri-list offered: refused at once (XdndStatus).
	require.ErrorContains(t, Drag(display, win, 60, 60, "", []string{"UTF8_STRING", "text/plain", "image/png", "TEXT"}, 10*time.Second), "refused the drag")
	mu.Lock()
	require.Equal(t, [][]string{{"/tmp/a b.png", "/tmp/c.jpg"}, {"/tmp/f.webp"}, {"/tmp/d.png"}}, got)
	mu.Unlock()

	// After stop the window is no drop target any more.
	stop()
	require.ErrorContains(t, Drag(display, win, 50, 50, "file:///tmp/a.png\r\n", nil, 10*time.Second), "not XdndAware")
}
