// hub.go reads a Hugging Face Hub repository as the Hub really serves it.
// A "resolve/{rev}/{file}" URL answers with a redirect to another origin
// (the Hub's LFS/Xet CDN), which may refuse CORS preflights and hide
// Content-Range from pages. So the file list, sizes and SHA-256 digests
// come from the Hub's tree API (one JSON request to the Hub itself), files
// are opened without a probe request, every read is a simple GET with a
// single byte range (no preflight), a range answered without a visible
// Content-Range is trusted by its length, and LFS files read from start to
// end are checked against their SHA-256.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// HubEndpoint is the Hub that repository ids (owner/name) resolve
// against; natively the HF_ENDPOINT environment variable overrides it, as
// for the Hub's own clients (a mirror).
var HubEndpoint = "https://huggingface.co"

// HubRepo is a repository location on a Hub.
type HubRepo struct {
	Endpoint string // scheme and host, no trailing slash
	Repo     string // owner/name
	Rev      string // branch, tag or commit ("main")
	Sub      string // folder inside the repository, "" for its root
}

var repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseHub recognises a Hub location: a repository id ("owner/name"), a
// repository page ("https://huggingface.co/owner/name", ".../tree/rev"),
// or a "resolve" base URL on any host ("{endpoint}/owner/name/resolve/rev/",
// a folder below it allowed). ok is false for anything else.
func ParseHub(loc string) (h HubRepo, ok bool) {
	if !strings.Contains(loc, "://") {
		parts := strings.Split(strings.Trim(loc, "/"), "/")
		if len(parts) != 2 || !repoPart.MatchString(parts[0]) || !repoPart.MatchString(parts[1]) {
			return h, false
		}
		return HubRepo{Endpoint: strings.TrimSuffix(hubEndpoint(), "/"), Repo: parts[0] + "/" + parts[1], Rev: "main"}, true
	}
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" {
		return h, false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || !repoPart.MatchString(parts[0]) || !repoPart.MatchString(parts[1]) {
		return h, false
	}
	h = HubRepo{Endpoint: u.Scheme + "://" + u.Host, Repo: parts[0] + "/" + parts[1], Rev: "main"}
	switch {
	case len(parts) >= 4 && parts[2] == "resolve":
	case isHubHost(u.Host) && len(parts) == 2:
		return h, true
	case isHubHost(u.Host) && len(parts) >= 4 && parts[2] == "tree":
	default:
		return h, false
	}
	h.Rev = parts[3]
	h.Sub = strings.Join(parts[4:], "/")
	if h.Sub != "" && validName(h.Sub) != nil {
		return h, false
	}
	return h, true
}

func isHubHost(host string) bool {
	if e, err := url.Parse(hubEndpoint()); err == nil && e.Host == host {
		return true
	}
	return host == "huggingface.co" || host == "hf.co"
}

// ResolveBase is the base URL of the repository's files.
func (h HubRepo) ResolveBase() string {
	b := h.Endpoint + "/" + h.Repo + "/resolve/" + url.PathEscape(h.Rev) + "/"
	if h.Sub != "" {
		b = joinURL(b, h.Sub) + "/"
	}
	return b
}

// TreeURL is the tree API request listing every file of the revision.
func (h HubRepo) TreeURL() string {
	return h.Endpoint + "/api/models/" + h.Repo + "/tree/" + url.PathEscape(h.Rev) + "?recursive=true"
}

// HubFile is one file of a repository as the tree API lists it.
type HubFile struct {
	Size   int64
	SHA256 string // hex; LFS files only (the oid of other files is a git blob sha1)
	OID    string // git blob id
}

// hubTreeEntry is one element of the tree API's answer.
type hubTreeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// maxTree bounds the tree API's answer (a page of it).
const maxTree = 16 << 20

// sizedSource is a URL source that can open a file whose size is known
// without asking the server (source_http.go, source_fetch_js.go).
type sizedSource interface {
	Source
	openSized(ctx context.Context, name string, size int64, tag string) File
	// getAll reads a whole small resource with a plain GET (no Range): its
	// body and the next page's URL from a Link header, when one is seen.
	getAll(ctx context.Context, u string, limit int64) (body []byte, next string, err error)
}

// HubSource is a Hub repository: its files' sizes and digests from the
// tree API, their bytes from the "resolve" URLs. The tree is fetched on
// the first Open; when the server has no tree API (a "resolve"-shaped URL
// on a plain web server answers 404), the source reads the URL like any
// other.
type HubSource struct {
	Repo  HubRepo
	inner sizedSource
	local bool // the location could have been a local folder (OpenLocation)

	mu    sync.Mutex
	files map[string]HubFile // by path relative to Repo.Sub
	plain bool               // no tree API: inner used as is
}

// NewHubSource returns the source for a Hub repository.
func NewHubSource(h HubRepo) *HubSource {
	return &HubSource{Repo: h, inner: newSizedSource(h.ResolveBase())}
}

func (s *HubSource) String() string { return s.Repo.ResolveBase() }

// Files returns the repository's files below Repo.Sub, fetching the tree
// when not done yet.
func (s *HubSource) Files(ctx context.Context) (map[string]HubFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files != nil || s.plain {
		return s.files, nil
	}
	files := map[string]HubFile{}
	prefix := ""
	if s.Repo.Sub != "" {
		prefix = s.Repo.Sub + "/"
	}
	for u, pages := s.Repo.TreeURL(), 0; u != ""; pages++ {
		if pages == 1000 {
			return nil, &SourceError{URL: s.Repo.TreeURL(), Op: "open", Err: errors.New("the tree listing goes on for more than 1000 pages")}
		}
		body, next, err := s.inner.getAll(ctx, u, maxTree)
		var se *SourceError
		if err != nil && pages == 0 && errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && !isHubHostURL(s.Repo.Endpoint) {
			// Not a Hub: a plain server with a "resolve"-shaped path.
			s.plain = true
			return nil, nil
		}
		if err != nil && errors.As(err, &se) && (se.Status == 401 || se.Status == 403 || se.Status == 404) {
			c := *se
			c.Err = fmt.Errorf("%w (no repository %s with a revision %q, or a private or gated one: check the id and the revision)", se.Err, s.Repo.Repo, s.Repo.Rev)
			if s.local {
				c.Err = fmt.Errorf("%w; nor is there a local folder %s", c.Err, s.Repo.Repo)
			}
			return nil, &c
		}
		if err != nil {
			return nil, err
		}
		var entries []hubTreeEntry
		if err := json.Unmarshal(body, &entries); err != nil {
			return nil, &SourceError{URL: u, Op: "read", Err: fmt.Errorf("the Hub's tree listing is not the expected JSON: %v", err)}
		}
		for _, e := range entries {
			if e.Type != "file" || !strings.HasPrefix(e.Path, prefix) {
				continue
			}
			f := HubFile{Size: e.Size, OID: e.OID}
			if e.LFS != nil {
				f.Size = e.LFS.Size
				if len(e.LFS.OID) == 64 {
					f.SHA256 = strings.ToLower(e.LFS.OID)
				}
			}
			if f.Size < 0 {
				return nil, &SourceError{URL: u, Op: "read", Err: fmt.Errorf("the tree listing gives %q a negative size", e.Path)}
			}
			files[strings.TrimPrefix(e.Path, prefix)] = f
		}
		u = next
	}
	s.files = files
	return files, nil
}

func isHubHostURL(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && isHubHost(u.Host)
}

// Open implements Source: a file the tree lists is opened with its size
// (no request until it is read); one it does not list does not exist.
func (s *HubSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	files, err := s.Files(ctx)
	if err != nil {
		return nil, err
	}
	if files == nil {
		return s.inner.Open(ctx, name)
	}
	hf, ok := files[name]
	if !ok {
		return nil, &SourceError{URL: joinURL(s.Repo.ResolveBase(), name), Op: "open", Err: fmt.Errorf("%w (not in the repository's file list at revision %s)", fs.ErrNotExist, s.Repo.Rev)}
	}
	tag := hf.SHA256
	if tag == "" {
		tag = hf.OID
	}
	f := s.inner.openSized(ctx, name, hf.Size, tag)
	if hf.SHA256 == "" {
		return f, nil
	}
	return &verifiedFile{File: f, want: hf.SHA256, h: sha256.New()}, nil
}

// verifiedFile checks a file against its SHA-256 as its bytes go by: bytes
// read in order from the start feed the hash, and the read that completes
// the file fails with a HashError when the digest differs (holding back
// its bytes, so that callers that stop at a full read still see it).
// Bytes read out of order (a zip's directory at the end) are not hashed.
// The loader skips tensors it does not use; a skipped stretch of at most
// gapFill bytes before a streamed range, or of at most tailFill bytes at
// the file's end, is read for the hash (the bytes a check costs), and a
// file with a larger hole is not checked.
type verifiedFile struct {
	File
	want string

	mu   sync.Mutex
	h    hash.Hash
	next int64 // bytes hashed so far
	bad  error // the HashError, once the whole file was seen
}

// feed hashes the bytes b read at off that extend the hashed prefix; it
// returns the HashError when they complete a file that does not match.
func (v *verifiedFile) feed(b []byte, off int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bad != nil {
		return v.bad
	}
	end := off + int64(len(b))
	if off > v.next || end <= v.next || v.next >= v.Size() {
		return nil
	}
	v.h.Write(b[v.next-off:])
	v.next = end
	if v.next < v.Size() {
		return nil
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		v.bad = &HashError{File: v.Name(), Want: v.want, Got: got}
		return v.bad
	}
	return nil
}

func (v *verifiedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := v.File.ReadAt(p, off)
	if herr := v.feed(p[:n], off); herr != nil {
		return 0, herr
	}
	return n, err
}

// gapFill is the largest skipped stretch read only for the hash. tailFill
// is the largest rest of a file read when a range ends there: the range
// may not be the last one the loader reads, so the rest may be read twice
// (once per file at most), which bounds it lower.
const (
	gapFill  = 8 << 20
	tailFill = 1 << 20
)

// hashed returns how many leading bytes have been hashed.
func (v *verifiedFile) hashed() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.next
}

// fill reads [from, to) for the hash alone.
func (v *verifiedFile) fill(from, to int64) error {
	r, err := v.File.Stream(from, to-from)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n, err := r.Read(buf[:min(int64(len(buf)), to-off)])
		if herr := v.feed(buf[:n], off); herr != nil {
			return herr
		}
		off += int64(n)
		if err != nil && off < to {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (v *verifiedFile) Stream(off, n int64) (io.ReadCloser, error) {
	if next := v.hashed(); off > next && off-next <= gapFill {
		if err := v.fill(next, off); err != nil {
			return nil, err
		}
	}
	r, err := v.File.Stream(off, n)
	if err != nil {
		return nil, err
	}
	return &verifiedStream{r: r, v: v, off: off, end: off + n}, nil
}

type verifiedStream struct {
	r        io.ReadCloser
	v        *verifiedFile
	off, end int64
}

func (s *verifiedStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(int64(len(p)), s.end-s.off)])
	if herr := s.v.feed(p[:n], s.off); herr != nil {
		return 0, herr
	}
	if s.off+int64(n) == s.end && n > 0 {
		// The range is complete: when the file's rest is a short skipped
		// tail, read it now, so that a mismatch still fails this read.
		if next, size := s.v.hashed(), s.v.Size(); next == s.end && next < size && size-next <= tailFill {
			if herr := s.v.fill(next, size); herr != nil {
				return 0, herr
			}
		}
	}
	s.off += int64(n)
	return n, err
}

func (s *verifiedStream) Close() error { return s.r.Close() }

// openHubOrURL is OpenLocation's choice for a URL: a Hub repository
// source for Hub locations, else the plain URL source.
func openHubOrURL(loc string) (Source, error) {
	if h, ok := ParseHub(loc); ok && strings.Contains(loc, "://") {
		return NewHubSource(h), nil
	}
	return newURLSource(loc)
}
