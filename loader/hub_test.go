//go:build !js

package loader_test

// Loading from a stand-in of the Hugging Face Hub (loader/hubtest): sizes
// and digests from the tree API, bytes from a CDN on another origin that
// the Hub redirects to, with and without Content-Range, and ignoring Range.

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"harmony/loader"
	"harmony/loader/hubtest"
)

func startHub(t *testing.T, root string, opt hubtest.Options) *hubtest.Hub {
	t.Helper()
	h, err := hubtest.Start(root, "org/tiny", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestHubLoad loads the tiny model through the stand-in Hub in each of
// the CDN's behaviours and compares with the local load.
func TestHubLoad(t *testing.T) {
	st := tinyST(t)
	local, lb := load(t, loader.NewDirSource(st), nil)
	for _, c := range []struct {
		name string
		opt  hubtest.Options
	}{
		{"content-range", hubtest.Options{}},
		{"no-content-range", hubtest.Options{DropContentRange: true}},
		{"ignores-range", hubtest.Options{IgnoreRange: true}},
		{"paged-tree", hubtest.Options{DropContentRange: true, PageSize: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := startHub(t, st, c.opt)
			src, _, err := loader.OpenLocation(h.URL())
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := src.(*loader.HubSource); !ok {
				t.Fatalf("OpenLocation(%s) = %T, want a *loader.HubSource", h.URL(), src)
			}
			remote, rb := load(t, src, &loader.Options{PieceSize: 1 << 20})
			n := sameWeights(t, c.name, local, lb, remote, rb)
			var cdn, hub int
			for _, r := range h.Log() {
				if r.Method != http.MethodGet {
					t.Errorf("%s request %s %s: only GETs expected", r.Origin, r.Method, r.Path)
				}
				if r.Origin == "cdn" {
					cdn++
					if r.Range == "" {
						t.Errorf("CDN request %s without Range", r.Path)
					}
				} else {
					hub++
				}
				if r.Status == http.StatusNotFound {
					t.Errorf("%s request %s answered 404: the tree listing should have ruled it out", r.Origin, r.Path)
				}
			}
			t.Logf("%s: %d tensors identical; %d Hub requests, %d CDN requests", c.name, n, hub, cdn)
		})
	}
}

// TestHubRepoID resolves an owner/name id against HF_ENDPOINT.
func TestHubRepoID(t *testing.T) {
	st := tinyST(t)
	h := startHub(t, st, hubtest.Options{DropContentRange: true})
	t.Setenv("HF_ENDPOINT", h.Hub.URL)
	t.Chdir(t.TempDir()) // no local folder named org/tiny
	src, _, err := loader.OpenLocation("org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	hs, ok := src.(*loader.HubSource)
	if !ok || hs.String() != h.URL() {
		t.Fatalf("OpenLocation(org/tiny) = %T %v, want the Hub source %s", src, src, h.URL())
	}
	files, err := hs.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lfs int
	for p, f := range files {
		if strings.HasSuffix(p, ".safetensors") {
			lfs++
			if len(f.SHA256) != 64 {
				t.Errorf("%s: sha256 %q from the listing", p, f.SHA256)
			}
		}
	}
	if lfs == 0 {
		t.Fatalf("no safetensors files in the listing: %v", files)
	}
	if _, err := src.Open(context.Background(), "unet/nonexistent.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestHubCorrupt: each weight file whose bytes differ from its listed
// SHA-256 fails the load with a HashError naming its URL, whether the CDN
// honours Range or not, and leaves none of its pieces in the cache.
func TestHubCorrupt(t *testing.T) {
	st := tinyST(t)
	var weights []string
	filepath.WalkDir(st, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".safetensors") {
			rel, _ := filepath.Rel(st, p)
			weights = append(weights, filepath.ToSlash(rel))
		}
		return err
	})
	for _, w := range weights {
		for _, ignore := range []bool{false, true} {
			h := startHub(t, st, hubtest.Options{Corrupt: w, IgnoreRange: ignore})
			cache := loader.NewMemCache()
			_, err := loader.Load(context.Background(), loader.NewHubSource(mustParseHub(t, h.URL())), newBackend(), &loader.Options{PieceSize: 1 << 20, Cache: cache})
			var he *loader.HashError
			if !errors.As(err, &he) || !strings.HasSuffix(he.File, "/"+w) {
				t.Errorf("corrupt %s (CDN ignores Range: %v): %v, want a HashError naming the file", w, ignore, err)
			}
			for _, k := range cache.Keys() {
				if strings.Contains(k, w) {
					t.Errorf("corrupt %s: its piece %s stayed in the cache", w, k)
				}
			}
		}
	}
	if len(weights) < 4 {
		t.Errorf("only %d weight files: %v", len(weights), weights)
	}
}

func mustParseHub(t *testing.T, loc string) loader.HubRepo {
	h, ok := loader.ParseHub(loc)
	if !ok {
		t.Fatalf("ParseHub(%q): not a Hub location", loc)
	}
	return h
}

// TestHubHiddenContentRange: a plain URL source (no listing) on a server
// that sends no Content-Range says what is wrong and what to do.
func TestHubHiddenContentRange(t *testing.T) {
	h := startHub(t, tinyST(t), hubtest.Options{DropContentRange: true})
	url := h.CDN.URL + "/xet/org/tiny/"
	_, err := loader.NewHTTPSource(url).Open(context.Background(), "model_index.json")
	if err == nil || !strings.Contains(err.Error(), "hid Content-Range") || !strings.Contains(err.Error(), url+"model_index.json") {
		t.Fatalf("error %v: want the hidden Content-Range and the URL named", err)
	}
}

// TestHubParse recognises Hub locations.
func TestHubParse(t *testing.T) {
	for _, c := range []struct {
		loc  string
		ok   bool
		base string
	}{
		{"Salesforce/blipdiffusion", true, "https://huggingface.co/Salesforce/blipdiffusion/resolve/main/"},
		{"https://huggingface.co/Salesforce/blipdiffusion", true, "https://huggingface.co/Salesforce/blipdiffusion/resolve/main/"},
		{"https://huggingface.co/Salesforce/blipdiffusion/tree/v1/unet", true, "https://huggingface.co/Salesforce/blipdiffusion/resolve/v1/unet/"},
		{"https://huggingface.co/Salesforce/blipdiffusion/resolve/main/", true, "https://huggingface.co/Salesforce/blipdiffusion/resolve/main/"},
		{"http://127.0.0.1:8080/org/tiny/resolve/main", true, "http://127.0.0.1:8080/org/tiny/resolve/main/"},
		{"http://127.0.0.1:8080/models/tiny/", false, ""},
		{"models/tiny/pack", false, ""},
		{"https://example.com/a/b", false, ""},
		{"https://huggingface.co/a/b/resolve/main/../../x", false, ""},
	} {
		t.Setenv("HF_ENDPOINT", "")
		h, ok := loader.ParseHub(c.loc)
		if ok != c.ok || ok && h.ResolveBase() != c.base {
			t.Errorf("ParseHub(%q) = %+v %v, want %v %s", c.loc, h, ok, c.ok, c.base)
		}
	}
}

// TestHubMissing: a repository the Hub does not list is reported with
// what to check; a "resolve"-shaped URL on a server without the tree API
// is read as a plain URL.
func TestHubMissing(t *testing.T) {
	st := tinyST(t)
	h := startHub(t, st, hubtest.Options{})
	t.Setenv("HF_ENDPOINT", h.Hub.URL)
	_, err := loader.NewHubSource(mustParseHub(t, h.Hub.URL+"/org/missing/resolve/main/")).Open(context.Background(), "model_index.json")
	var se *loader.SourceError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || !strings.Contains(err.Error(), "check the id") {
		t.Fatalf("missing repository: %v", err)
	}
	t.Log(err)
	t.Chdir(t.TempDir())
	src, _, err := loader.OpenLocation("org/missing")
	if err == nil {
		_, err = src.Open(context.Background(), "model_index.json")
	}
	if err == nil || !strings.Contains(err.Error(), "nor is there a local folder org/missing") {
		t.Fatalf("missing id: %v", err)
	}

	t.Setenv("HF_ENDPOINT", "")
	root := t.TempDir()
	copyDir(t, st, filepath.Join(root, "org", "tiny", "resolve", "main"))
	plain, _ := serve(t, root, nil)
	b, err := loader.ReadAll(context.Background(), loader.NewHubSource(mustParseHub(t, plain.URL+"/org/tiny/resolve/main/")), "model_index.json", 1<<20)
	if err != nil || !strings.Contains(string(b), "BlipDiffusionPipeline") {
		t.Fatalf("plain server: %q, %v", b, err)
	}
}
