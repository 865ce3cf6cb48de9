//go:build !js

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/imageproc"
)

// faultsReport is the part of the driver's report the fault tests read.
type faultsReport struct {
	Console []string
	Error   any
	Faults  struct {
		Photos []struct {
			File, Caption string
			Error         *string
			Seconds       float64
		}
		Hang, Corrupt *packFault
		Resume        *struct {
			At, After string
			Error     *string
			Seconds   float64
		}
		Cancel *struct {
			Reference, After struct {
				Error   *string
				PNG     string
				Seconds float64
			}
			Download, Step *cancelled
		}
		Generate struct {
			Error   *string
			Kinds   []string
			Seconds float64
		}
	}
}

// packFault is a pack load that must fail, then the demo's load.
type packFault struct {
	Error, AfterError *string
	After             string
	Seconds           float64
	CacheKeys         []string // Cache Storage URLs after the failure
}

// cancelled is a run cancelled by the Cancel button.
type cancelled struct {
	At, Progress, Model     string // the page's texts when cancelled, and after
	Error                   *string
	StartedSeconds, Seconds float64 // from Generate to Cancel, from Cancel to ready
	CancelDisabled          bool
}

// runFaults runs the driver in faults mode with extra arguments and
// returns its report; the page must not have crashed (no uncaught
// exception, no Go panic or exit in the console).
func runFaults(t *testing.T, name string, wrap func(http.Handler) http.Handler, extra ...string) faultsReport {
	t.Helper()
	url, _ := browserSetupWith(t, wrap)
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-faults-"+name))
	require.NoError(t, os.RemoveAll(out))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append([]string{"wasm/node/e2e.mjs", "--mode", "faults", "--url", url, "--out", out, "--chromium", chromiumPath}, extra...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	stdout, err := cmd.Output()
	t.Logf("browser run (%v): %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(stdout)))
	var rep faultsReport
	data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, rerr, "the driver wrote no report")
	require.NoError(t, json.Unmarshal(data, &rep))
	require.NoError(t, err, "browser run failed: %v", rep.Error)
	for _, c := range rep.Console {
		require.NotContains(t, c, "pageerror:", "an uncaught exception on the page")
		require.NotContains(t, c, "panic:", "the engine panicked")
		require.NotContains(t, c, "Go program has already exited", "the engine exited")
	}
	return rep
}

// writeGrayPNG writes a w×h grey PNG (fast to encode: one flat colour).
func writeGrayPNG(t *testing.T, file string, w, h int) {
	t.Helper()
	f, err := os.Create(file)
	require.NoError(t, err)
	defer f.Close()
	bw := bufio.NewWriter(f)
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	require.NoError(t, enc.Encode(bw, image.NewGray(image.Rect(0, 0, w, h))))
	require.NoError(t, bw.Flush())
}

// TestPageFaults drives the page with hostile input and faults: each must
// end in a visible error that names what was wrong and leave the page
// usable.
func TestPageFaults(t *testing.T) {
	// Photos that are not images or are over the decoder's pixel budget
	// are refused by name; one at the budget is taken; afterwards a valid
	// photo still generates.
	t.Run("photos", func(t *testing.T) {
		dir := t.TempDir()
		notImage := filepath.Join(dir, "notes.txt")
		require.NoError(t, os.WriteFile(notImage, []byte("these are my notes, not a picture\n"), 0o644))
		const w = 8000
		h := int(imageproc.DefaultMaxPixels / w)
		over := filepath.Join(dir, "over-budget.png")
		writeGrayPNG(t, over, w, h+1)
		at := filepath.Join(dir, "at-budget.png")
		writeGrayPNG(t, at, w, h)
		start := time.Now()
		rep := runFaults(t, "photos", nil, "--bad", notImage+","+over+","+at, "--photo", filepath.Join("www", "demo", "subject.png"))
		require.Len(t, rep.Faults.Photos, 3)
		p := rep.Faults.Photos
		require.NotNil(t, p[0].Error, "a text file was taken as the photo")
		require.Contains(t, *p[0].Error, "notes.txt")
		require.Contains(t, *p[0].Error, "not a supported image (PNG, JPEG")
		require.Less(t, p[0].Seconds, 10.0)
		require.NotNil(t, p[1].Error, "a photo over the pixel budget was taken")
		require.Contains(t, *p[1].Error, "over-budget.png")
		require.Contains(t, *p[1].Error, "over the 40-megapixel limit")
		require.Less(t, p[1].Seconds, 10.0)
		require.Nil(t, p[2].Error, "a photo at the pixel budget was refused")
		require.Contains(t, p[2].Caption, "8000×5000")
		require.Nil(t, rep.Faults.Generate.Error, "generation after the refused photos failed")
		require.Contains(t, rep.Faults.Generate.Kinds, "harmony")
		require.Less(t, rep.Faults.Generate.Seconds, 300.0)
		for _, e := range []*string{p[0].Error, p[1].Error} {
			require.Contains(t, *e, "Choose another photo.")
		}
		t.Logf("refused in %.1f s and %.1f s, at the budget taken in %.1f s; generation %.0f s; total %v",
			p[0].Seconds, p[1].Seconds, p[2].Seconds, rep.Faults.Generate.Seconds, time.Since(start).Round(time.Second))
	})

	// A pack URL whose server takes the request and never answers: with
	// a 2 s fetch timeout the page names the URL and says what to check
	// within seconds, and the demo model loads afterwards.
	t.Run("hanging-url", func(t *testing.T) {
		var base string // the page's origin, known once it serves
		hang := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if base == "" {
					base = "http://" + r.Host
				}
				if strings.HasPrefix(r.URL.Path, "/hang/") {
					<-r.Context().Done() // accepted, never answered
					return
				}
				h.ServeHTTP(w, r)
			})
		}
		const timeout = 2 * time.Second
		rep := runFaults(t, "hanging-url", hang, "--hang", "/hang/models/tiny/", "--query", fmt.Sprintf("fetch-timeout-ms=%d", timeout.Milliseconds()))
		h := rep.Faults.Hang
		require.NotNil(t, h, "the driver did not run the hanging load")
		require.NotNil(t, h.Error, "a load from a silent server did not fail")
		require.Contains(t, *h.Error, base+"/hang/models/tiny/manifest.json")
		require.Contains(t, *h.Error, "no response within 2s")
		require.Contains(t, *h.Error, "is it up, and the URL right?")
		require.Less(t, h.Seconds, 15.0, "the timeout took too long")
		require.Nil(t, h.AfterError, "the demo did not load after the timeout")
		require.Contains(t, h.After, "Loaded")
		t.Logf("timed out in %.1f s: %s; then %s", h.Seconds, *h.Error, h.After)
	})

	// The demo pack with one byte of its shard flipped: the load fails
	// naming the shard, the shard is not kept in Cache Storage, and the
	// demo loads afterwards.
	t.Run("corrupt-shard", func(t *testing.T) {
		var m struct {
			Shards []struct{ File, SHA256 string }
		}
		data, err := os.ReadFile(filepath.Join("www", "models", "tiny", "manifest.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &m))
		require.NotEmpty(t, m.Shards)
		shard := m.Shards[0]
		bad, err := os.ReadFile(filepath.Join("www", "models", "tiny", shard.File))
		require.NoError(t, err)
		bad[len(bad)/2] ^= 0x40
		corrupt := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, ok := strings.CutPrefix(r.URL.Path, "/bad")
				if !ok {
					h.ServeHTTP(w, r)
					return
				}
				if p == "/models/tiny/"+shard.File {
					http.ServeContent(w, r, shard.File, time.Time{}, bytes.NewReader(bad))
					return
				}
				r.URL.Path = p
				h.ServeHTTP(w, r)
			})
		}
		rep := runFaults(t, "corrupt-shard", corrupt, "--corrupt", "/bad/models/tiny/")
		c := rep.Faults.Corrupt
		require.NotNil(t, c, "the driver did not run the corrupt load")
		require.NotNil(t, c.Error, "a pack with a corrupt shard loaded")
		require.Contains(t, *c.Error, "/bad/models/tiny/"+shard.File)
		require.Contains(t, *c.Error, "the manifest or the Hub's file list says "+shard.SHA256)
		require.Contains(t, *c.Error, "load it again")
		require.Less(t, c.Seconds, 60.0)
		key := sha256.Sum256([]byte("pack/sha256/" + shard.SHA256))
		require.NotContains(t, c.CacheKeys, "https://harmony-cache.invalid/"+hex.EncodeToString(key[:]), "the corrupt shard was kept in the cache")
		require.Nil(t, c.AfterError, "the demo did not load after the corrupt pack")
		require.Contains(t, c.After, "Loaded")
		t.Logf("refused in %.1f s: %s; %d cache entries; then %s", c.Seconds, *c.Error, len(c.CacheKeys), c.After)
	})

	// Cancel while a slow pack downloads and while a generation steps:
	// the page is ready again within seconds, says "Cancelled.", and the
	// next generation equals one made before.
	t.Run("cancel", func(t *testing.T) {
		slow := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, ok := strings.CutPrefix(r.URL.Path, "/slow")
				if !ok {
					h.ServeHTTP(w, r)
					return
				}
				r.URL.Path = p
				if strings.HasSuffix(p, ".bin") {
					w = &slowWriter{ResponseWriter: w}
				}
				h.ServeHTTP(w, r)
			})
		}
		rep := runFaults(t, "cancel", slow, "--cancel-pack", "/slow/models/tiny/", "--photo", filepath.Join("www", "demo", "subject.png"))
		c := rep.Faults.Cancel
		require.NotNil(t, c, "the driver did not run the cancellations")
		require.Nil(t, c.Reference.Error, "the first generation failed")
		for name, x := range map[string]*cancelled{"download": c.Download, "step": c.Step} {
			require.NotNil(t, x, name)
			t.Logf("%s: cancelled at %q after %.1f s, ready %.1f s later: %q, model %q", name, x.At, x.StartedSeconds, x.Seconds, x.Progress, x.Model)
			require.Nil(t, x.Error, "%s: cancelling showed an error", name)
			require.Equal(t, "Cancelled.", x.Progress, name)
			require.True(t, x.CancelDisabled, "%s: Cancel still enabled", name)
			require.Less(t, x.Seconds, 30.0, "%s: the page took long to be ready", name)
		}
		require.Contains(t, c.Download.At, "shard", "not cancelled during the download")
		require.Equal(t, "Cancelled: no model loaded.", c.Download.Model)
		require.Contains(t, c.Step.At, "denoise", "not cancelled during a denoising step")
		require.Nil(t, c.After.Error, "the generation after the cancellations failed")
		ref, err := os.ReadFile(c.Reference.PNG)
		require.NoError(t, err)
		want, err := png.Decode(bytes.NewReader(ref))
		require.NoError(t, err)
		got, err := os.ReadFile(c.After.PNG)
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(got))
		require.NoError(t, err)
		b := want.Bounds()
		require.Equal(t, b, img.Bounds())
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				require.Equal(t, want.At(x, y), img.At(x, y), "the picture after the cancellations differs at (%d, %d)", x, y)
			}
		}
		t.Logf("generations: %.0f s before, %.0f s after", c.Reference.Seconds, c.After.Seconds)
	})
	// A reload while the pack's shard downloads slowly: the load after it
	// reads the files that had finished (the tokenizer's) from Cache
	// Storage and fetches only the shard again.
	t.Run("reload-resumes", func(t *testing.T) {
		type served struct {
			path  string
			bytes int64
		}
		var mu sync.Mutex
		var log []served
		resume := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Logged in the order asked, counted once answered.
				mu.Lock()
				i := len(log)
				log = append(log, served{path: r.URL.Path})
				mu.Unlock()
				p, ok := strings.CutPrefix(r.URL.Path, "/resume")
				cw := &countWriter{ResponseWriter: w}
				if ok {
					r.URL.Path = p
					if strings.HasSuffix(p, ".bin") {
						cw.ResponseWriter = &slowWriter{ResponseWriter: w}
					}
				}
				h.ServeHTTP(cw, r)
				mu.Lock()
				log[i].bytes = cw.n
				mu.Unlock()
			})
		}
		rep := runFaults(t, "reload-resumes", resume, "--resume", "/resume/models/tiny/")
		r := rep.Faults.Resume
		require.NotNil(t, r, "the driver did not reload")
		require.Nil(t, r.Error, "the load after the reload failed")
		require.Contains(t, r.After, "Loaded")
		mu.Lock()
		defer mu.Unlock()
		// The second load is what was served after the reload's page.
		last := -1
		for i, s := range log {
			if s.path == "/" || s.path == "/index.html" {
				last = i
			}
		}
		require.Positive(t, last, "no reload seen")
		var tokBefore, tokAfter, shardAfter int64
		for i, s := range log {
			switch {
			case !strings.HasPrefix(s.path, "/resume/"):
			case strings.Contains(s.path, "/tokenizer/") && i < last:
				tokBefore += s.bytes
			case strings.Contains(s.path, "/tokenizer/"):
				tokAfter += s.bytes
			case strings.HasSuffix(s.path, ".bin") && i > last:
				shardAfter += s.bytes
			}
		}
		st, err := os.Stat(filepath.Join("www", "models", "tiny", "shard-00000.bin"))
		require.NoError(t, err)
		t.Logf("cut at %q; tokenizer %d bytes before the reload, %d after; shard %d bytes after; %s in %.1f s", r.At, tokBefore, tokAfter, shardAfter, r.After, r.Seconds)
		require.Positive(t, tokBefore)
		require.Zero(t, tokAfter, "the finished files were fetched again after the reload")
		// Once, besides a 1-byte size probe.
		require.GreaterOrEqual(t, shardAfter, st.Size(), "the shard was not fetched whole after the reload")
		require.Less(t, shardAfter, st.Size()+1024, "the shard was fetched more than once after the reload")
	})
}

// slowWriter sends a response 32 KiB at a time, 25 ms apart (about
// 1.3 MB/s): slow enough to cancel a download of the demo's shard.
type slowWriter struct{ http.ResponseWriter }

func (w *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 32<<10)
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[k:]
		time.Sleep(25 * time.Millisecond)
	}
	return n, nil
}

// countWriter counts the body bytes written.
type countWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
