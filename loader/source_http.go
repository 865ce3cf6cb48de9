//go:build !js

// source_http.go reads files below an HTTP(S) base URL (a web server, a
// pack on a CDN, a Hugging Face "resolve/main/" URL) with Range requests
// (RFC 9110 §14), retrying network errors, 429 and 5xx responses, and
// resuming a body that breaks off at the byte where it stopped.
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"
)

// HTTPSource is the files below a base URL.
type HTTPSource struct {
	Base    string       // base URL; file names are appended after a "/"
	Client  *http.Client // nil: http.DefaultClient
	Header  http.Header  // extra request headers (an Authorization token for gated repositories)
	Retries int          // attempts after the first (network errors, 429, 5xx, broken bodies)
	Backoff time.Duration
	// WholeLimit is the largest file read whole, into memory, from a
	// server that ignores Range requests (default 64 MiB). Larger files
	// from such a server can only be streamed from their start.
	WholeLimit int64
}

// NewHTTPSource returns a source for a base URL with 4 retries starting
// at half a second.
func NewHTTPSource(base string) *HTTPSource {
	return &HTTPSource{Base: base, Retries: 4, Backoff: 500 * time.Millisecond}
}

func newURLSource(loc string) (Source, error) { return NewHTTPSource(loc), nil }

// browser is false: local paths are folders.
const browser = false

func (s *HTTPSource) String() string { return s.Base }

func (s *HTTPSource) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return http.DefaultClient
}

// Open implements Source: a one-byte range request gives the size (from
// Content-Range) and whether the server honours ranges at all.
func (s *HTTPSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f := &httpFile{src: s, ctx: ctx, url: joinURL(s.Base, name)}
	resp, err := f.do(0, 1, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || total < 0 {
			return nil, &SourceError{URL: f.url, Op: "open", Status: resp.StatusCode, Err: fmt.Errorf("bad Content-Range %q", resp.Header.Get("Content-Range"))}
		}
		f.size = total
	case http.StatusOK:
		// The server ignores Range: keep a small file whole.
		limit := s.WholeLimit
		if limit <= 0 {
			limit = 64 << 20
		}
		if resp.ContentLength <= limit {
			b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
			if err != nil {
				return nil, &SourceError{URL: f.url, Op: "read", Err: err}
			}
			if int64(len(b)) <= limit {
				return &memFile{name: f.url, data: b, tag: resp.Header.Get("ETag")}, nil
			}
		}
		if resp.ContentLength < 0 {
			return nil, &SourceError{URL: f.url, Op: "open", Status: resp.StatusCode, Err: errors.New("the server ignores Range requests and sends no Content-Length")}
		}
		f.size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable: // an empty file
		f.size = 0
	}
	f.tag = resp.Header.Get("ETag")
	return f, nil
}

type httpFile struct {
	src  *HTTPSource
	ctx  context.Context
	url  string
	size int64
	tag  string
}

func (f *httpFile) Size() int64  { return f.size }
func (f *httpFile) Name() string { return f.url }
func (f *httpFile) Tag() string  { return f.tag }
func (f *httpFile) Close() error { return nil }

// do requests n bytes at off, retrying what may be transient. probe
// accepts a 416 (the one-byte probe of an empty file).
func (f *httpFile) do(off, n int64, probe bool) (*http.Response, error) {
	delay := f.src.Backoff
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > f.src.Retries {
				return nil, last
			}
			select {
			case <-f.ctx.Done():
				return nil, f.ctx.Err()
			case <-time.After(delay):
			}
			delay *= 2
		}
		req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, f.url, nil)
		if err != nil {
			return nil, &SourceError{URL: f.url, Op: "open", Err: err}
		}
		for k, v := range f.src.Header {
			req.Header[k] = v
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		resp, err := f.src.client().Do(req)
		if err != nil {
			if f.ctx.Err() != nil {
				return nil, f.ctx.Err()
			}
			last = &SourceError{URL: f.url, Op: "range", Err: err}
			continue
		}
		code := resp.StatusCode
		switch {
		case code == http.StatusPartialContent || code == http.StatusOK:
			return resp, nil
		case code == http.StatusRequestedRangeNotSatisfiable && probe:
			return resp, nil
		}
		resp.Body.Close()
		err = errors.New(http.StatusText(code))
		if code == http.StatusNotFound || code == http.StatusGone {
			err = fs.ErrNotExist
		}
		last = &SourceError{URL: f.url, Op: "range", Status: code, Err: err}
		if code != http.StatusTooManyRequests && code < 500 {
			return nil, last
		}
	}
}

// body opens the n bytes at off as a checked response body.
func (f *httpFile) body(off, n int64) (io.ReadCloser, error) {
	resp, err := f.do(off, n, false)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		// The whole file: usable only from its start.
		if off != 0 {
			resp.Body.Close()
			return nil, &SourceError{URL: f.url, Op: "range", Status: resp.StatusCode, Err: errors.New("the server ignores Range requests")}
		}
		return readCloser{io.LimitReader(resp.Body, n), resp.Body}, nil
	}
	a, b, _, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil || a != off || b > off+n-1 {
		resp.Body.Close()
		return nil, &SourceError{URL: f.url, Op: "range", Status: resp.StatusCode, Err: fmt.Errorf("asked for bytes %d-%d, got Content-Range %q", off, off+n-1, resp.Header.Get("Content-Range"))}
	}
	return resp.Body, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Stream implements File: one range request whose body is read as it
// arrives; a body that breaks off is re-requested from where it stopped.
func (f *httpFile) Stream(off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, &SourceError{URL: f.url, Op: "range", Err: fmt.Errorf("range [%d, +%d) outside the %d-byte file", off, n, f.size)}
	}
	return &httpStream{f: f, off: off, end: off + n}, nil
}

func (f *httpFile) ReadAt(p []byte, off int64) (int, error) {
	s, err := f.Stream(off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return io.ReadFull(s, p)
}

type httpStream struct {
	f        *httpFile
	off, end int64
	body     io.ReadCloser
	failures int
}

func (s *httpStream) Read(p []byte) (int, error) {
	if s.off >= s.end {
		return 0, io.EOF
	}
	if int64(len(p)) > s.end-s.off {
		p = p[:s.end-s.off]
	}
	for {
		if s.body == nil {
			b, err := s.f.body(s.off, s.end-s.off)
			if err != nil {
				return 0, err
			}
			s.body = b
		}
		n, err := s.body.Read(p)
		s.off += int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		s.body.Close()
		s.body = nil
		if s.f.ctx.Err() != nil {
			return 0, s.f.ctx.Err()
		}
		// The body ended early or broke: resume at s.off.
		s.failures++
		if s.failures > s.f.src.Retries {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, &SourceError{URL: s.f.url, Op: "read", Err: fmt.Errorf("body broke off at byte %d of %d: %w", s.off, s.end, err)}
		}
		select {
		case <-s.f.ctx.Done():
			return 0, s.f.ctx.Err()
		case <-time.After(s.f.src.Backoff << (s.failures - 1)):
		}
	}
}

func (s *httpStream) Close() error {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	return nil
}
