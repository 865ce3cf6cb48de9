//go:build !js

// Package hubtest is a stand-in for the Hugging Face Hub on two loopback
// origins, for the loader's and the page's tests: the Hub origin answers
// the tree API (/api/models/{repo}/tree/{rev}) and redirects every
// /{repo}/resolve/{rev}/{file} with a 302 to the CDN origin, as the Hub
// does for its LFS/Xet storage. The CDN answers simple GETs with
// Access-Control-Allow-Origin: * but refuses CORS preflights (OPTIONS gets
// a 403) and HEAD, and in its variants hides Content-Range from pages,
// sends none, ignores Range, or corrupts a file. Both origins log every
// request, so tests can assert what a client sent.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options are the CDN's misbehaviours.
type Options struct {
	// HideContentRange leaves Content-Range out of
	// Access-Control-Expose-Headers: a page cannot see it (native clients
	// still do).
	HideContentRange bool
	// DropContentRange sends 206 answers without Content-Range at all,
	// which is what a page sees of a hidden one.
	DropContentRange bool
	// IgnoreRange answers every GET with the whole file (200).
	IgnoreRange bool
	// Corrupt is a file (repository path) whose served bytes differ from
	// the ones its listed SHA-256 was computed from.
	Corrupt string
	// PageSize, when > 0, splits the tree listing into pages of this many
	// entries linked by Link: rel="next", as the Hub does for big
	// repositories.
	PageSize int
}

// Request is one logged request.
type Request struct {
	Origin string // "hub" or "cdn"
	Method string
	Path   string
	Range  string
	Status int
}

// Hub is the running stand-in.
type Hub struct {
	Hub, CDN *httptest.Server
	Repo     string // owner/name
	opt      Options
	files    map[string][]byte // repository path: bytes
	mu       sync.Mutex
	log      []Request
}

// lfs tells the files the Hub stores in LFS (sha256 in the listing).
func lfs(path string) bool {
	return strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".bin") || strings.HasSuffix(path, ".pt") || strings.HasSuffix(path, ".json") && strings.Contains(path, "tokenizer")
}

// Start serves the files below root as the repository repo ("owner/name")
// at revision main, on 127.0.0.1 (the Hub) and on a second port (the CDN).
func Start(root, repo string, opt Options) (*Hub, error) {
	h := &Hub{Repo: repo, opt: opt, files: map[string][]byte{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.CDN = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.Hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	return h, nil
}

// Close stops both servers.
func (h *Hub) Close() {
	h.Hub.Close()
	h.CDN.Close()
}

// URL is the repository's resolve base on the Hub origin.
func (h *Hub) URL() string { return h.Hub.URL + "/" + h.Repo + "/resolve/main/" }

// Log returns the requests so far.
func (h *Hub) Log() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.log...)
}

// ResetLog forgets the requests so far.
func (h *Hub) ResetLog() {
	h.mu.Lock()
	h.log = nil
	h.mu.Unlock()
}

type logWriter struct {
	http.ResponseWriter
	rng    string // the request's Range, as sent
	status int
	drop   bool // strip Content-Range from the answer
}

func (w *logWriter) WriteHeader(code int) {
	if w.drop {
		w.Header().Del("Content-Range")
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (h *Hub) record(origin string, r *http.Request, w *logWriter) {
	h.mu.Lock()
	h.log = append(h.log, Request{Origin: origin, Method: r.Method, Path: r.URL.Path, Range: w.rng, Status: w.status})
	h.mu.Unlock()
}

// treeEntry is the tree API's shape for a file.
type treeEntry struct {
	Type string    `json:"type"`
	OID  string    `json:"oid"`
	Size int       `json:"size"`
	Path string    `json:"path"`
	LFS  *lfsEntry `json:"lfs,omitempty"`
}

type lfsEntry struct {
	OID         string `json:"oid"`
	Size        int    `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

func (h *Hub) tree() []any {
	var dirs = map[string]bool{}
	var out []any
	paths := make([]string, 0, len(h.files))
	for p := range h.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b := h.files[p]
		for d := p; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			if !dirs[d] {
				dirs[d] = true
				out = append(out, map[string]any{"type": "directory", "oid": "0000000000000000000000000000000000000000", "size": 0, "path": d})
			}
		}
		blob := sha1.Sum(append([]byte("blob "+strconv.Itoa(len(b))+"\x00"), b...))
		e := treeEntry{Type: "file", OID: hex.EncodeToString(blob[:]), Size: len(b), Path: p}
		if lfs(p) {
			sum := sha256.Sum256(b)
			e.LFS = &lfsEntry{OID: hex.EncodeToString(sum[:]), Size: len(b), PointerSize: 134}
			e.Size = len(b)
		}
		out = append(out, e)
	}
	return out
}

// serveHub is the Hub origin: CORS for any page origin (it echoes
// Origin), the tree API, and redirects to the CDN.
func (h *Hub) serveHub(rw http.ResponseWriter, r *http.Request) {
	w := &logWriter{ResponseWriter: rw, rng: r.Header.Get("Range")}
	defer h.record("hub", r, w)
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Expose-Headers", "Content-Range, Content-Length, ETag, Link, Location")
		w.Header().Set("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Headers", "Range, Authorization")
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	treePrefix := "/api/models/" + h.Repo + "/tree/main"
	resolvePrefix := "/" + h.Repo + "/resolve/main/"
	switch {
	case r.URL.Path == treePrefix && r.URL.Query().Get("recursive") == "true":
		entries := h.tree()
		if n := h.opt.PageSize; n > 0 {
			start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
			if start+n < len(entries) {
				w.Header().Set("Link", fmt.Sprintf(`<%s?recursive=true&cursor=%d>; rel="next"`, treePrefix, start+n))
				entries = entries[start : start+n]
			} else {
				entries = entries[min(start, len(entries)):]
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(entries)
	case strings.HasPrefix(r.URL.Path, resolvePrefix):
		p := strings.TrimPrefix(r.URL.Path, resolvePrefix)
		if _, ok := h.files[p]; !ok {
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Location", h.CDN.URL+"/xet/"+h.Repo+"/"+p+"?sig=stand-in")
		w.WriteHeader(http.StatusFound)
	default:
		http.Error(w, "Repository not found", http.StatusNotFound)
	}
}

// serveCDN is the CDN origin: simple GETs only.
func (h *Hub) serveCDN(rw http.ResponseWriter, r *http.Request) {
	w := &logWriter{ResponseWriter: rw, rng: r.Header.Get("Range"), drop: h.opt.DropContentRange}
	defer h.record("cdn", r, w)
	if r.Method == http.MethodOptions || r.Method == http.MethodHead {
		// Preflights (and HEAD) are refused, as the Hub's CDN has been
		// seen to do; a page that needs one cannot read the file.
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if !h.opt.HideContentRange {
		w.Header().Set("Access-Control-Expose-Headers", "Content-Range, Content-Length, ETag")
	}
	p := strings.TrimPrefix(r.URL.Path, "/xet/"+h.Repo+"/")
	b, ok := h.files[p]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if p == h.opt.Corrupt && len(b) > 0 {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x5a
	}
	if h.opt.IgnoreRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}
