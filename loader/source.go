// source.go defines where model files come from: one interface over a local
// folder, an HTTP(S) base URL read by Range requests (source_http.go), and
// the browser's fetch (source_fetch_js.go). Readers see only File: a size,
// random-access reads for headers and directories, and streamed sequential
// reads for the bulk of the data.
package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Source is a folder of model files: a diffusers folder, a pack, or any
// single weight file inside one.
type Source interface {
	// Open opens the file at a slash-separated path below the root
	// ("unet/config.json"). A missing file gives an error for which
	// errors.Is(err, fs.ErrNotExist) holds. Reads through the File use ctx.
	Open(ctx context.Context, name string) (File, error)
	// String is the root (folder path or base URL) for messages.
	String() string
}

// File is an opened file of a Source.
type File interface {
	// ReadAt reads len(p) bytes at off (io.ReaderAt); a network source
	// makes one range request per call, so callers read large pieces.
	io.ReaderAt
	// Stream returns a reader of the n bytes at off, fetched as they are
	// read (one streamed range request), for data too large to hold.
	Stream(off, n int64) (io.ReadCloser, error)
	// Size is the file's length in bytes.
	Size() int64
	// Name is the full path or URL, for messages.
	Name() string
	// Tag identifies the file's contents (an HTTP ETag, or size and
	// modification time), so that cached pieces of an older version of the
	// file are not reused. "" when unknown.
	Tag() string
	Close() error
}

// Timeouts bound the waits of a network source. They are no deadline on
// a whole transfer: a shard may stream for many minutes, but a server that
// stops answering is given up on after one of these waits. A zero field
// takes its default.
type Timeouts struct {
	Connect  time.Duration // to open a connection, TLS included (native only; default 30 s)
	Response time.Duration // from sending a request to its response headers (default 60 s)
	Idle     time.Duration // for the next bytes of a body being read (default 60 s)
}

// DefaultTimeouts are the waits a zero Timeouts field takes: long enough
// for a slow link or a CDN fetching a cold file, short enough that a dead
// server is reported within a minute or two instead of never.
var DefaultTimeouts = Timeouts{Connect: 30 * time.Second, Response: 60 * time.Second, Idle: 60 * time.Second}

func (t Timeouts) orDefault() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultTimeouts.Connect
	}
	if t.Response <= 0 {
		t.Response = DefaultTimeouts.Response
	}
	if t.Idle <= 0 {
		t.Idle = DefaultTimeouts.Idle
	}
	return t
}

// maxBackoff caps the doubling wait between retries, so that a source
// configured with many retries still tries again within half a minute.
const maxBackoff = 30 * time.Second

// backoff is the wait before retry k+1: base doubled k times, at most
// maxBackoff.
func backoff(base time.Duration, k int) time.Duration {
	for ; k > 0 && base < maxBackoff; k-- {
		base *= 2
	}
	return min(base, maxBackoff)
}

// gaveUp notes the attempts made on the last transient error.
func gaveUp(err error, attempts int) error {
	var se *SourceError
	if attempts > 1 && errors.As(err, &se) {
		c := *se
		c.Err = fmt.Errorf("%w (gave up after %d attempts)", se.Err, attempts)
		return &c
	}
	return err
}

// resumeProgress is how far a resumed body must get before its earlier
// breaks are forgiven: a shard streamed for minutes may break more often
// than Retries in all, but a server that breaks at every few bytes still
// fails after Retries tries.
const resumeProgress = 1 << 20

// validName checks a slash-separated relative path: no "..", no absolute
// paths, nothing a manifest could use to escape the root.
func validName(name string) error {
	if !fs.ValidPath(name) || name == "." || strings.Contains(name, "\\") {
		return fmt.Errorf("loader: invalid file name %q", name)
	}
	return nil
}

// DirSource is a local folder.
type DirSource struct {
	Dir string
}

// NewDirSource returns the source for a local folder.
func NewDirSource(dir string) *DirSource { return &DirSource{Dir: dir} }

func (s *DirSource) String() string { return s.Dir }

// Open implements Source.
func (s *DirSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(s.Dir, filepath.FromSlash(name))
	f, err := os.Open(p)
	if err != nil {
		return nil, &SourceError{URL: p, Op: "open", Err: unwrapPath(err)}
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = errors.New("is a directory")
	}
	if err != nil {
		f.Close()
		return nil, &SourceError{URL: p, Op: "open", Err: err}
	}
	tag := strconv.FormatInt(st.Size(), 10) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
	return &fsFile{ctx: ctx, f: f, ra: f, size: st.Size(), name: p, tag: tag}, nil
}

// unwrapPath drops the *fs.PathError wrapper (SourceError names the path).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// memFile is a file held in memory (a small file from a server that
// ignores Range requests).
type memFile struct {
	name string
	data []byte
	tag  string
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(f.data)) {
		return 0, &SourceError{URL: f.name, Op: "read", Err: fmt.Errorf("offset %d outside the %d-byte file", off, len(f.data))}
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Stream(off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off > int64(len(f.data)) || n > int64(len(f.data))-off {
		return nil, &SourceError{URL: f.name, Op: "read", Err: fmt.Errorf("range [%d, +%d) outside the %d-byte file (truncated?)", off, n, len(f.data))}
	}
	return io.NopCloser(bytes.NewReader(f.data[off : off+n])), nil
}

func (f *memFile) Size() int64  { return int64(len(f.data)) }
func (f *memFile) Name() string { return f.name }
func (f *memFile) Tag() string  { return f.tag }
func (f *memFile) Close() error { return nil }

// ctxReader stops a read loop when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readFullAt fills p from r at off; a short read is an error naming the
// file (the io.ReaderAt contract allows io.EOF with a full read).
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	var se *SourceError
	if errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	name := "input"
	if f, ok := r.(interface{ Name() string }); ok {
		name = f.Name()
	}
	return &SourceError{URL: name, Op: "read", Err: fmt.Errorf("%d bytes at %d: %w", len(p), off, err)}
}

// ReadAll reads a whole small file (a config, a tokenizer file, a
// manifest), refusing files over limit bytes.
func ReadAll(ctx context.Context, src Source, name string, limit int64) ([]byte, error) {
	f, err := src.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > limit {
		return nil, formatErr(f.Name(), "", "%d bytes, more than the %d-byte limit for this file", f.Size(), limit)
	}
	b := make([]byte, f.Size())
	if err := readFullAt(f, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// OpenLocation returns the source for a location: an http:// or https://
// base URL (native HTTP, or fetch in the browser; a Hugging Face Hub
// repository URL reads the Hub's file list, hub.go), else a local folder,
// else a Hub repository id (owner/name) when no such folder exists.
// A path to a file inside a folder is accepted too: the source is then its
// folder, and the second result is the file's name in it.
//
// In the browser every location is a URL, relative ones resolved against
// the page.
func OpenLocation(loc string) (Source, string, error) {
	if browser || strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		s, err := openHubOrURL(loc)
		return s, "", err
	}
	st, err := os.Stat(loc)
	if err != nil {
		// A repository id (owner/name) that is no local folder.
		if h, ok := ParseHub(loc); ok && errors.Is(err, fs.ErrNotExist) {
			hs := NewHubSource(h)
			hs.local = true
			return hs, "", nil
		}
		return nil, "", &SourceError{URL: loc, Op: "open", Err: unwrapPath(err)}
	}
	if st.IsDir() {
		return NewDirSource(loc), "", nil
	}
	return NewDirSource(filepath.Dir(loc)), filepath.Base(loc), nil
}

// joinURL appends a relative file name to a base URL path.
func joinURL(base, name string) string {
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return base + path.Join(parts...)
}

// parseContentRange parses "bytes a-b/total" ("*" total gives -1) and
// "bytes */total" (b = -1). A range past a known total is refused: the
// server's answer cannot be trusted for the size or the offset.
func parseContentRange(h string) (a, b, total int64, err error) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, 0, errors.New("not a byte range")
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, errors.New("no total")
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, 0, errors.New("bad total")
		}
	}
	if rng == "*" {
		return 0, -1, total, nil
	}
	as, bs, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, errors.New("bad range")
	}
	if a, err = strconv.ParseInt(as, 10, 64); err != nil {
		return 0, 0, 0, errors.New("bad range")
	}
	if b, err = strconv.ParseInt(bs, 10, 64); err != nil || b < a || total >= 0 && b >= total {
		return 0, 0, 0, errors.New("bad range")
	}
	return a, b, total, nil
}

// errNoContentRange is a 206 answer to the size probe without a
// Content-Range the client can see (a CDN that does not list it in
// Access-Control-Expose-Headers, for a page).
var errNoContentRange = errors.New("the server hid Content-Range (or sent none) and the file size is unknown: have the server expose Content-Range (Access-Control-Expose-Headers), or load the model as a Hub repository, whose file list gives the sizes")

// trustRange decides on a 206 answer to a request for n bytes whose
// Content-Range is not visible: trusted when the file's size is known from
// a listing and the body length (clen, -1 when unknown) is n; the bytes
// are checked later against the listing's SHA-256 where it has one.
func trustRange(known bool, clen, n int64) error {
	if !known {
		return errNoContentRange
	}
	if clen >= 0 && clen != n {
		return fmt.Errorf("asked for %d bytes, got a %d-byte partial answer without Content-Range", n, clen)
	}
	return nil
}

// nextLink is the URL of a Link header's rel="next" (the Hub's tree API
// pages its listing), resolved against u; "" when none.
func nextLink(u, link string) string {
	for _, part := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.Trim(strings.TrimSpace(target), "<>")
		base, err := url.Parse(u)
		if err != nil {
			return ""
		}
		ref, err := base.Parse(target)
		if err != nil {
			return ""
		}
		return ref.String()
	}
	return ""
}
