//go:build !js

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/loader"
	"harmony/loader/golden"
	"harmony/loader/hubtest"
	"harmony/www"
)

// e2eNegative is the page's default negative prompt, set on both sides.
const e2eNegative = "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate"

// requestLog records every request the page makes to its own server.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
	body [][]byte
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+r.URL.String())
		l.body = append(l.body, b)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// browserSetup checks the browser test's needs, builds the wasm engine
// (and the demo model pack when it is missing) and serves www/ on a loopback port, logging every request. It returns the
// page URL.
func browserSetup(t *testing.T) (string, *requestLog) {
	t.Helper()
	return browserSetupWith(t, nil)
}

// browserSetupWith is browserSetup with the page's handler wrapped (nil:
// as is).
func browserSetupWith(t *testing.T, wrap func(http.Handler) http.Handler) (string, *requestLog) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test (minutes on a CPU adapter)")
	}
	require.NoError(t, os.MkdirAll("testout", 0o755))
	for _, need := range []string{chromiumPath, "wasm/node/node_modules/playwright-core"} {
		if _, err := os.Stat(need); err != nil {
			if gputest.Required() {
				t.Fatalf("browser test needs %s (run .ci/setup)", need)
			}
			t.Skipf("browser test needs %s (run .ci/setup)", need)
		}
	}
	require.NoError(t, buildWasm("www", false))
	require.NoError(t, buildDemo("www"))
	log := &requestLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := newHandler("www")
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: log.wrap(h)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/", log
}

// chromiumPath is Debian's Chromium binary (not the /usr/bin wrapper, which
// adds extension flags).
const chromiumPath = "/usr/lib/chromium/chromium"

// TestPageEndToEnd drives the page in headless Chromium: demo model, the
// demo photo, a fixed seed; every picture must equal the native engine's
// for the same settings within ±2 levels on 99 % of values, no request may
// leave the page's origin or carry the photo. The screenshot and pictures
// are kept in testout/e2e for people to look at.
func TestPageEndToEnd(t *testing.T) {
	url, log := browserSetup(t)

	const steps, seed, width, height = 4, 42, 48, 32
	out, _ := filepath.Abs(filepath.Join("testout", "e2e"))
	require.NoError(t, os.RemoveAll(out))
	photo := filepath.Join("www", "demo", "subject.png")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--url", url, "--photo", photo, "--out", out,
		"--source", "demo", "--precision", "f16", "--class", "dog", "--prompt", "swimming underwater", "--negative", e2eNegative,
		"--steps", strconv.Itoa(steps), "--seed", strconv.Itoa(seed), "--width", strconv.Itoa(width), "--height", strconv.Itoa(height),
		"--harmony", "1", "--compare", "1", "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	start := time.Now()
	stdout, err := cmd.Output()
	t.Logf("browser run (%v): %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(stdout)))
	var rep struct {
		Requests []struct {
			Method, URL string
			BodyBytes   int
		}
		OffOrigin       []string
		PhotoSent       bool
		Error           any
		GenerateSeconds float64
		Adapter         string
		ProgressText    string
		Outputs         map[string]string
	}
	data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, rerr, "the driver wrote no report")
	require.NoError(t, json.Unmarshal(data, &rep))
	require.NoError(t, err, "browser run failed: %v", rep.Error)
	t.Logf("page: %s; %s; generation %.0f s; %d requests", rep.Adapter, rep.ProgressText, rep.GenerateSeconds, len(rep.Requests))
	require.Empty(t, rep.OffOrigin, "requests left the page's origin")
	require.False(t, rep.PhotoSent, "a request carried the photo")

	// The server saw every same-origin request: none may carry the photo.
	photoBytes, err := os.ReadFile(photo)
	require.NoError(t, err)
	probe := photoBytes[64:112]
	log.mu.Lock()
	for i, b := range log.body {
		require.False(t, bytes.Contains(b, probe), "request %s carried the photo", log.reqs[i])
		require.NotContains(t, log.reqs[i], "POST", "the page posted something: %s", log.reqs[i])
	}
	log.mu.Unlock()

	// The same generation natively.
	b := kernels.New(gputest.Default(t))
	m, _, err := pipeline.Load(ctx, loader.NewFSSource(www.DemoModel(), "demo"), b, &loader.Options{Precision: loader.PrecisionF16})
	require.NoError(t, err)
	defer m.Close()
	o := pipeline.DefaultOptions()
	o.Image, o.ImageName = photoBytes, "subject.png"
	o.TargetClass, o.Prompt, o.Negative = "dog", "swimming underwater", e2eNegative
	o.Steps, o.Seed, o.Width, o.Height, o.Compare = steps, seed, width, height, true
	res, err := pipeline.Generate(ctx, m, o)
	require.NoError(t, err)
	native := map[string]*pipeline.Image{"harmony": res.Main.Image, "baseline": res.Baseline.Image, "visual": res.Visual.Image, "mask": res.MaskHeat}
	for kind, want := range native {
		t.Run(kind, func(t *testing.T) {
			file, ok := rep.Outputs[kind]
			require.True(t, ok, "the page showed no %s picture", kind)
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			img, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			compareImage(t, kind, img, want)
			// The page saves what the CLI and the app save: the
			// generation's parameters in the PNG's text chunk.
			params, ok := pngmeta.Text(data, pngmeta.Key)
			require.True(t, ok, "the page's %s picture has no %q text chunk", kind, pngmeta.Key)
			require.Contains(t, params, "Steps: ")
			wp, err := want.PNG()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(out, "native-"+kind+".png"), wp, 0o644))
		})
	}
}

// compareImage requires |page − native| ≤ 2 levels on at least 99 % of the
// RGB values.
func compareImage(t *testing.T, kind string, got image.Image, want *pipeline.Image) {
	bnd := got.Bounds()
	require.Equal(t, [2]int{want.W, want.H}, [2]int{bnd.Dx(), bnd.Dy()}, "%s size", kind)
	over, maxd := 0, 0
	for y := 0; y < want.H; y++ {
		for x := 0; x < want.W; x++ {
			r, g, bb, _ := got.At(bnd.Min.X+x, bnd.Min.Y+y).RGBA()
			for c, v := range []uint32{r >> 8, g >> 8, bb >> 8} {
				d := int(v) - int(want.Pix[3*(y*want.W+x)+c])
				if d < 0 {
					d = -d
				}
				maxd = max(maxd, d)
				if d > 2 {
					over++
				}
			}
		}
	}
	n := 3 * want.W * want.H
	t.Logf("%s: %d of %d values differ by more than 2 levels (max %d)", kind, over, n, maxd)
	require.LessOrEqual(t, over, n/100, fmt.Sprintf("%s: page and native differ", kind))
}

// TestPageModelCache: a hosted pack is kept in the browser's Cache Storage
// (verified by SHA-256 on every use): after a reload it loads from there,
// and "Clear downloaded models" empties it.
func TestPageModelCache(t *testing.T) {
	url, _ := browserSetup(t)
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-cache"))
	require.NoError(t, os.RemoveAll(out))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--mode", "cache", "--url", url, "--out", out, "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	t.Logf("%s", strings.TrimSpace(string(stdout)))
	require.NoError(t, err)
	var rep struct {
		Cache     map[string]string
		OffOrigin []string
	}
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Empty(t, rep.OffOrigin)
	require.NotContains(t, rep.Cache["first"], "from this browser's cache")
	require.Contains(t, rep.Cache["second"], "read from this browser's cache")
	require.Contains(t, rep.Cache["cleared"], "Cleared")
	require.NotContains(t, rep.Cache["third"], "from this browser's cache")
}

// TestPageLocalFolder: a diffusers folder picked with the folder input
// loads in place (File.slice), with no request for its files.
func TestPageLocalFolder(t *testing.T) {
	url, log := browserSetup(t)
	folder := golden.Path(t, "blipdiffusion-tiny")
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-folder"))
	require.NoError(t, os.RemoveAll(out))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--mode", "folder", "--folder", folder, "--url", url, "--out", out, "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	t.Logf("%s", strings.TrimSpace(string(stdout)))
	require.NoError(t, err)
	var rep struct {
		Folder    string
		OffOrigin []string
	}
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Empty(t, rep.OffOrigin)
	require.Contains(t, rep.Folder, "Loaded blipdiffusion-tiny")
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, r := range log.reqs {
		require.NotContains(t, r, "safetensors", "the page fetched a file of the picked folder")
	}
}

// TestPageHub: the demo model typed in as a Hugging Face repository URL
// loads through a stand-in Hub on two loopback origins (loader/hubtest):
// the tree API and 302 redirects on one, the files on a CDN origin that
// refuses preflights and HEAD, exposing Content-Range or hiding it. The
// page must reach "Loaded" without a single preflight, HEAD or request
// without a simple byte range to the CDN.
func TestPageHub(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  hubtest.Options
	}{
		{"content-range-exposed", hubtest.Options{}},
		{"content-range-hidden", hubtest.Options{HideContentRange: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cdn string // the CDN's origin, known once the Hub runs
			url, _ := browserSetupWith(t, func(h http.Handler) http.Handler { return allowConnect(h, &cdn) })
			hub, err := hubtest.Start(filepath.Join("www", "models", "tiny"), "org/tiny", c.opt)
			require.NoError(t, err)
			defer hub.Close()
			cdn = hub.CDN.URL
			out, _ := filepath.Abs(filepath.Join("testout", "e2e-hub-"+c.name))
			require.NoError(t, os.RemoveAll(out))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--mode", "hub", "--hub", hub.URL(), "--allow", hub.Hub.URL+","+hub.CDN.URL,
				"--url", url, "--out", out, "--chromium", chromiumPath)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.Output()
			t.Logf("%s", strings.TrimSpace(string(stdout)))
			var rep struct {
				Hub       string
				OffOrigin []string
				Error     any
			}
			data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
			require.NoError(t, rerr, "the driver wrote no report")
			require.NoError(t, json.Unmarshal(data, &rep))
			log := hub.Log()
			for _, r := range log {
				t.Logf("%s %s %s %q → %d", r.Origin, r.Method, r.Path, r.Range, r.Status)
			}
			require.NoError(t, err, "browser run failed: %v", rep.Error)
			require.Empty(t, rep.OffOrigin)
			require.Contains(t, rep.Hub, "Loaded")
			var tree, cdnGets int
			for _, r := range log {
				require.NotEqual(t, http.MethodOptions, r.Method, "the page sent a preflight to the %s: %s", r.Origin, r.Path)
				require.Equal(t, http.MethodGet, r.Method, "%s %s on the %s", r.Method, r.Path, r.Origin)
				if strings.HasPrefix(r.Path, "/api/models/") {
					tree++
				}
				if r.Origin == "cdn" {
					cdnGets++
					require.Regexp(t, `^bytes=\d+-\d+$`, r.Range, "CDN request %s", r.Path)
				}
			}
			require.Equal(t, 1, tree, "tree API requests")
			require.NotZero(t, cdnGets, "no file came from the CDN")
		})
	}
}

// allowConnect adds the origin *extra (once set) to the connect-src of
// the page's Content-Security-Policy, as serve.go does for the real Hub's
// CDN hosts.
func allowConnect(h http.Handler, extra *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&cspWriter{ResponseWriter: w, extra: *extra}, r)
	})
}

type cspWriter struct {
	http.ResponseWriter
	extra string
	done  bool
}

func (w *cspWriter) fix() {
	if w.done || w.extra == "" {
		return
	}
	w.done = true
	if c := w.Header().Get("Content-Security-Policy"); c != "" {
		w.Header().Set("Content-Security-Policy", strings.Replace(c, "connect-src ", "connect-src "+w.extra+" ", 1))
	}
}

func (w *cspWriter) WriteHeader(code int) {
	w.fix()
	w.ResponseWriter.WriteHeader(code)
}

func (w *cspWriter) Write(p []byte) (int, error) {
	w.fix()
	return w.ResponseWriter.Write(p)
}
