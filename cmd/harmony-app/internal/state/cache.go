// cache.go implements the app's download cache for models from the
// Hugging Face Hub (or any http(s) URL of a diffusers folder or pack): the
// native counterpart of the web page's Cache Storage bucket. Each model
// gets its own folder below the cache root holding a loader.DirCache, so
// that an interrupted download resumes at the first piece the folder lacks
// (every piece is stored with its SHA-256 and checked on use, so a corrupt
// one is fetched again), and deleting a model removes exactly its folder.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"harmony/loader"
)

// HubPrefix marks a model location as a Hugging Face repository id or URL
// to download through the cache ("hf:Salesforce/blipdiffusion").
const HubPrefix = "hf:"

// RecordName is the file in a model's cache folder that says what it
// holds (a CachedModel as JSON). DirCache names its entries by hash, so it
// cannot clash with one.
const RecordName = "harmony-model.json"

// CachedModel is one model in the download cache.
type CachedModel struct {
	Name     string    `json:"name"`     // the repository id or URL as given
	URL      string    `json:"url"`      // the base URL files are read under
	Complete bool      `json:"complete"` // a load from it has finished
	Updated  time.Time `json:"updated"`  // last download or load
	Dir      string    `json:"-"`        // its folder
	Bytes    int64     `json:"-"`        // bytes on disk
}

// DefaultCacheDir is where downloaded models are kept:
// os.UserCacheDir()/harmony/models.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("harmony-app: cache: %v", err)
	}
	return filepath.Join(dir, "harmony", "models"), nil
}

// HubURL turns a Hugging Face repository id ("Salesforce/blipdiffusion"),
// a repository page URL (…/tree/<rev>) or any other http(s) base URL into
// the base URL the model's files are read under (…/resolve/<rev>/ on the
// Hub). It follows the web page's rules, so both accept the same input.
func HubURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("harmony-app: give a repository id such as Salesforce/blipdiffusion")
	}
	// The loader's own reading of Hub locations, so the app, the CLI and
	// the page agree on what names a repository.
	if h, ok := loader.ParseHub(s); ok {
		return h.ResolveBase(), nil
	}
	if !strings.Contains(s, "://") {
		return "", fmt.Errorf("harmony-app: %q is not a repository id (owner/name)", s)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("harmony-app: %q is not an http(s) URL", s)
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// cacheFolder is a model's folder name below the cache root: readable
// (from the base URL) and unique (a hash of it), so that two revisions or
// two hosts never share pieces they could delete from each other.
func cacheFolder(base string) string {
	h := sha256.Sum256([]byte(base))
	name := base
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, strings.Trim(name, "/"))
	if len(name) > 80 {
		name = name[:80]
	}
	return name + "-" + hex.EncodeToString(h[:6])
}

// cacheRoot is the configured cache folder or the default one.
func (a *App) cacheRoot() (string, error) {
	if a.cfg.CacheDir != "" {
		return a.cfg.CacheDir, nil
	}
	return DefaultCacheDir()
}

// hubSource resolves a repository id or URL to its source, its cache and
// its folder, and records the model in the folder (before downloading, so
// that a partial download is listed and can be deleted).
func (a *App) hubSource(repo string) (loader.Source, loader.Cache, string, error) {
	base, err := HubURL(repo)
	if err != nil {
		return nil, nil, "", err
	}
	root, err := a.cacheRoot()
	if err != nil {
		return nil, nil, "", err
	}
	dir := filepath.Join(root, cacheFolder(base))
	m := CachedModel{Name: strings.TrimSpace(repo), URL: base}
	if old, err := readMeta(dir); err == nil && old.URL == base {
		m.Complete = old.Complete // stays so until a load says otherwise
	}
	if err := writeMeta(dir, m); err != nil {
		return nil, nil, "", err
	}
	src, _, err := loader.OpenLocation(base)
	if err != nil {
		return nil, nil, "", err
	}
	withToken(src, base)
	// A completed download loads from the folder alone, offline: the
	// files' sizes, headers and configs as recorded, no request (delete
	// the model to fetch a newer revision). A partial one asks the server
	// and falls back to the records only when it cannot be reached.
	cache := &loader.DirCache{Dir: dir}
	return &loader.CachedSource{Inner: src, Cache: cache, Offline: m.Complete}, cache, dir, nil
}

func readMeta(dir string) (CachedModel, error) {
	var m CachedModel
	data, err := os.ReadFile(filepath.Join(dir, RecordName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("harmony-app: cache: %s: %v", dir, err)
	}
	m.Dir = dir
	return m, nil
}

func writeMeta(dir string, m CachedModel) error {
	m.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("harmony-app: cache: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("harmony-app: cache: %v", err)
	}
	// Written whole under a temporary name, so a crash never leaves a
	// half-written record that would hide the folder from the list.
	tmp := filepath.Join(dir, RecordName+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("harmony-app: cache: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, RecordName)); err != nil {
		return fmt.Errorf("harmony-app: cache: %v", err)
	}
	return nil
}

// markComplete records that a load from dir finished.
func markComplete(dir string) error {
	m, err := readMeta(dir)
	if err != nil {
		return err
	}
	m.Complete = true
	return writeMeta(dir, m)
}

// dirBytes is the size of the regular files in dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// ListCached reads the models in the cache folder root, by name. Folders
// without a record are not the app's and are left out.
func ListCached(root string) ([]CachedModel, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("harmony-app: cache: %v", err)
	}
	var out []CachedModel
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		m, err := readMeta(dir)
		if err != nil {
			continue
		}
		m.Bytes = dirBytes(dir)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].URL < out[j].URL
	})
	return out, nil
}

// RefreshCached rereads the cache folder into the snapshot's list.
func (a *App) RefreshCached() error {
	root, err := a.cacheRoot()
	var list []CachedModel
	if err == nil {
		list, err = ListCached(root)
	}
	a.mu.Lock()
	a.cached, a.cacheErr = list, err
	a.mu.Unlock()
	a.changed()
	return err
}

// Cached returns the models in the cache (as last read).
func (a *App) Cached() []CachedModel {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]CachedModel(nil), a.cached...)
}

// DeleteCached removes one cached model: the folder dir, which must be a
// model folder directly below the cache root, and nothing else. A model
// being downloaded cannot be deleted until the download ends.
func (a *App) DeleteCached(dir string) error {
	root, err := a.cacheRoot()
	if err != nil {
		return err
	}
	clean := filepath.Clean(dir)
	if filepath.Dir(clean) != filepath.Clean(root) {
		return fmt.Errorf("harmony-app: cache: %s is not a model folder of %s", dir, root)
	}
	if _, err := readMeta(clean); err != nil {
		return fmt.Errorf("harmony-app: cache: %s holds no cached model", dir)
	}
	a.mu.Lock()
	if a.phase == Loading && a.loadingDir == clean {
		a.mu.Unlock()
		return errors.New("harmony-app: cache: this model is downloading: cancel it first")
	}
	a.mu.Unlock()
	if err := os.RemoveAll(clean); err != nil {
		a.RefreshCached()
		return fmt.Errorf("harmony-app: cache: %v", err)
	}
	return a.RefreshCached()
}
