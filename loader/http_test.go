//go:build !js

package loader_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"harmony/loader"
)

// reqLog records the requests a test server answers.
type reqLog struct {
	mu   sync.Mutex
	reqs []served
}

type served struct {
	path, rng string
	status    int
	bytes     int64
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
	limit  int64 // >0: cut the connection after this many body bytes
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.limit > 0 && w.n+int64(len(p)) > w.limit {
		k := w.limit - w.n
		w.ResponseWriter.Write(p[:k])
		w.n += k
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the client sees a broken body
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func isWeights(p string) bool {
	return strings.HasSuffix(p, ".bin") || strings.HasSuffix(p, ".safetensors")
}

// serve serves root over HTTP on 127.0.0.1 with http.FileServer (which
// answers Range requests). fault, when set, may answer a weight request
// itself (return true) or cut its body short (set limit).
func serve(t *testing.T, root string, fault func(n int, w *statusWriter, r *http.Request) bool) (*httptest.Server, *reqLog) {
	log := &reqLog{}
	fsrv := http.FileServer(http.Dir(root))
	var weightReqs int
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw, status: 200}
		defer func() {
			log.mu.Lock()
			log.reqs = append(log.reqs, served{r.URL.Path, r.Header.Get("Range"), w.status, w.n})
			log.mu.Unlock()
		}()
		if fault != nil && isWeights(r.URL.Path) {
			log.mu.Lock()
			weightReqs++
			n := weightReqs
			log.mu.Unlock()
			if fault(n, w, r) {
				return
			}
		}
		fsrv.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// httpTree copies both tiny folders and a pack of the .bin folder into one
// served folder.
func httpTree(t *testing.T) string {
	st, bin := tinyDirs(t)
	root := t.TempDir()
	copyDir(t, st, filepath.Join(root, "diffusers"))
	copyDir(t, bin, filepath.Join(root, "bin"))
	if _, err := loader.WritePack(context.Background(), loader.NewDirSource(bin), filepath.Join(root, "pack"), &loader.PackOptions{ShardSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestHTTP loads a pack and two diffusers folders from a server by Range
// requests, and compares with the local loads.
func TestHTTP(t *testing.T) {
	root := httpTree(t)
	srv, log := serve(t, root, nil)
	for _, sub := range []string{"pack", "diffusers", "bin"} {
		local, lb := load(t, loader.NewDirSource(filepath.Join(root, sub)), nil)
		log.reqs = nil
		remote, rb := load(t, loader.NewHTTPSource(srv.URL+"/"+sub+"/"), &loader.Options{PieceSize: 4 << 20})
		n := sameWeights(t, sub+" over HTTP", local, lb, remote, rb)
		var weightReqs int
		var bytes int64
		for _, r := range log.reqs {
			if isWeights(r.path) && r.status != http.StatusNotFound { // 404s: probing for file names
				weightReqs++
				if r.rng == "" || r.status != http.StatusPartialContent {
					t.Errorf("weight request %s without a range (Range %q, status %d)", r.path, r.rng, r.status)
				}
			}
			bytes += r.bytes
		}
		t.Logf("%s: %d tensors identical; %d requests (%d for weights), %d bytes", sub, n, len(log.reqs), weightReqs, bytes)
	}
}

// TestHTTPFlaky: 503s and bodies that break off are retried and resumed;
// without retries the error names the URL and the status.
func TestHTTPFlaky(t *testing.T) {
	root := httpTree(t)
	local, lb := load(t, loader.NewDirSource(filepath.Join(root, "bin")), nil)
	srv, _ := serve(t, root, func(n int, w *statusWriter, r *http.Request) bool {
		switch n % 3 {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case 2:
			w.limit = 1000
		}
		return false
	})
	src := loader.NewHTTPSource(srv.URL + "/bin/")
	src.Backoff = time.Millisecond
	remote, rb := load(t, src, &loader.Options{PieceSize: 1 << 20})
	sameWeights(t, "flaky server", local, lb, remote, rb)

	src.Retries = 0
	_, err := loader.Load(context.Background(), src, newBackend(), nil)
	var se *loader.SourceError
	if !errors.As(err, &se) || (se.Status != http.StatusServiceUnavailable && !strings.Contains(se.Error(), "broke off")) || !strings.HasPrefix(se.URL, srv.URL) {
		t.Fatalf("got %v", err)
	}
	t.Logf("without retries: %v", err)
}

func TestHTTPErrors(t *testing.T) {
	root := httpTree(t)
	srv, _ := serve(t, root, nil)
	_, err := loader.Load(context.Background(), loader.NewHTTPSource(srv.URL+"/nothing/"), newBackend(), nil)
	var se *loader.SourceError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Status != 404 || !strings.HasSuffix(se.URL, "/nothing/model_index.json") {
		t.Fatalf("got %v", err)
	}

	// A server that ignores Range serves small files whole, but a large
	// .bin cannot be read in place.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	defer plain.Close()
	whole := loader.NewHTTPSource(plain.URL + "/bin/")
	local, lb := load(t, loader.NewDirSource(filepath.Join(root, "bin")), nil)
	remote, rb := load(t, whole, nil)
	sameWeights(t, "server without ranges", local, lb, remote, rb)
	whole.WholeLimit = 2 << 20
	_, err = loader.Load(context.Background(), whole, newBackend(), nil)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "ignores Range") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}
