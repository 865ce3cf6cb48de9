//go:build js

// source_fetch_js.go reads files below a base URL with the browser's fetch:
// Range requests whose bodies are streamed chunk by chunk into Go memory
// (ReadableStream readers), so the wasm heap holds only what the loader
// asks for. Retries and resumption follow source_http.go.
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"syscall/js"
	"time"
)

// FetchSource is the files below a base URL, read with fetch.
type FetchSource struct {
	Base    string            // absolute or page-relative base URL
	Header  map[string]string // extra request headers
	Retries int               // attempts after the first
	Backoff time.Duration
}

// NewFetchSource returns a fetch source with 4 retries.
func NewFetchSource(base string) *FetchSource {
	return &FetchSource{Base: base, Retries: 4, Backoff: 500 * time.Millisecond}
}

func newURLSource(loc string) (Source, error) { return NewFetchSource(loc), nil }

// browser is true: every location is a URL.
const browser = true

func (s *FetchSource) String() string { return s.Base }

// Open implements Source with a one-byte range request.
func (s *FetchSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f := &fetchFile{src: s, ctx: ctx, url: joinURL(s.Base, name)}
	resp, status, err := f.do(0, 1, true)
	if err != nil {
		return nil, err
	}
	cancelBody(resp)
	hdr := resp.Get("headers")
	switch status {
	case 206:
		if _, _, total, err := parseContentRange(header(hdr, "Content-Range")); err == nil && total >= 0 {
			f.size = total
		} else if n, err := f.headLength(); err == nil {
			// Content-Range is hidden from cross-origin pages unless exposed.
			f.size = n
		} else {
			return nil, &SourceError{URL: f.url, Op: "open", Status: status, Err: errors.New("cannot learn the file size (Content-Range not exposed, no Content-Length)")}
		}
	case 200:
		n, err := strconv.ParseInt(header(hdr, "Content-Length"), 10, 64)
		if err != nil {
			return nil, &SourceError{URL: f.url, Op: "open", Status: status, Err: errors.New("the server ignores Range requests and sends no Content-Length")}
		}
		f.size, f.noRange = n, true
	case 416:
		f.size = 0
	}
	f.tag = header(hdr, "ETag")
	return f, nil
}

func header(h js.Value, name string) string {
	v := h.Call("get", name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

func cancelBody(resp js.Value) {
	if b := resp.Get("body"); b.Truthy() {
		b.Call("cancel")
	}
}

type fetchFile struct {
	src     *FetchSource
	ctx     context.Context
	url     string
	size    int64
	tag     string
	noRange bool
}

func (f *fetchFile) Size() int64  { return f.size }
func (f *fetchFile) Name() string { return f.url }
func (f *fetchFile) Tag() string  { return f.tag }
func (f *fetchFile) Close() error { return nil }

func (f *fetchFile) headLength() (int64, error) {
	p := js.Global().Call("fetch", f.url, js.ValueOf(map[string]any{"method": "HEAD"}))
	resp, err := await(f.ctx, p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(header(resp.Get("headers"), "Content-Length"), 10, 64)
}

// do fetches n bytes at off with retries; it returns the Response.
func (f *fetchFile) do(off, n int64, probe bool) (js.Value, int, error) {
	delay := f.src.Backoff
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > f.src.Retries {
				return js.Undefined(), 0, last
			}
			select {
			case <-f.ctx.Done():
				return js.Undefined(), 0, f.ctx.Err()
			case <-time.After(delay):
			}
			delay *= 2
		}
		headers := map[string]any{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)}
		for k, v := range f.src.Header {
			headers[k] = v
		}
		ac := js.Global().Get("AbortController").New()
		stop := context.AfterFunc(f.ctx, func() { ac.Call("abort") })
		p := js.Global().Call("fetch", f.url, js.ValueOf(map[string]any{"headers": headers, "signal": ac.Get("signal")}))
		resp, err := await(f.ctx, p)
		stop()
		if err != nil {
			if f.ctx.Err() != nil {
				return js.Undefined(), 0, f.ctx.Err()
			}
			last = &SourceError{URL: f.url, Op: "range", Err: err}
			continue
		}
		status := resp.Get("status").Int()
		if status == 206 || status == 200 || (status == 416 && probe) {
			return resp, status, nil
		}
		cancelBody(resp)
		err = errors.New(resp.Get("statusText").String())
		if status == 404 || status == 410 {
			err = fs.ErrNotExist
		}
		last = &SourceError{URL: f.url, Op: "range", Status: status, Err: err}
		if status != 429 && status < 500 {
			return js.Undefined(), 0, last
		}
	}
}

func (f *fetchFile) Stream(off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, &SourceError{URL: f.url, Op: "range", Err: fmt.Errorf("range [%d, +%d) outside the %d-byte file", off, n, f.size)}
	}
	return &fetchStream{f: f, off: off, end: off + n}, nil
}

func (f *fetchFile) ReadAt(p []byte, off int64) (int, error) {
	s, err := f.Stream(off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return io.ReadFull(s, p)
}

// fetchStream reads a range through a ReadableStream reader, resuming
// where a broken body stopped.
type fetchStream struct {
	f        *fetchFile
	off, end int64
	reader   js.Value // ReadableStreamDefaultReader, undefined when closed
	chunk    js.Value // current Uint8Array
	chunkOff int
	failures int
}

func (s *fetchStream) open() error {
	resp, status, err := s.f.do(s.off, s.end-s.off, false)
	if err != nil {
		return err
	}
	if status == 200 && s.off != 0 {
		cancelBody(resp)
		return &SourceError{URL: s.f.url, Op: "range", Status: status, Err: errors.New("the server ignores Range requests")}
	}
	if status == 206 {
		if cr := header(resp.Get("headers"), "Content-Range"); cr != "" {
			if a, _, _, err := parseContentRange(cr); err != nil || a != s.off {
				cancelBody(resp)
				return &SourceError{URL: s.f.url, Op: "range", Status: status, Err: fmt.Errorf("asked for bytes from %d, got Content-Range %q", s.off, cr)}
			}
		}
	}
	s.reader = resp.Get("body").Call("getReader")
	s.chunk, s.chunkOff = js.Undefined(), 0
	return nil
}

func (s *fetchStream) Read(p []byte) (int, error) {
	if s.off >= s.end {
		return 0, io.EOF
	}
	if int64(len(p)) > s.end-s.off {
		p = p[:s.end-s.off]
	}
	for {
		if s.reader.IsUndefined() {
			if err := s.open(); err != nil {
				return 0, err
			}
		}
		if !s.chunk.IsUndefined() && s.chunkOff < s.chunk.Length() {
			n := js.CopyBytesToGo(p, s.chunk.Call("subarray", s.chunkOff))
			s.chunkOff += n
			s.off += int64(n)
			return n, nil
		}
		r, err := await(s.f.ctx, s.reader.Call("read"))
		if err == nil && !r.Get("done").Bool() {
			s.chunk, s.chunkOff = r.Get("value"), 0
			continue
		}
		if s.f.ctx.Err() != nil {
			return 0, s.f.ctx.Err()
		}
		// The body ended early or broke off: resume at s.off.
		s.Close()
		s.failures++
		if s.failures > s.f.src.Retries {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return 0, &SourceError{URL: s.f.url, Op: "read", Err: fmt.Errorf("body broke off at byte %d of %d: %w", s.off, s.end, err)}
		}
		time.Sleep(s.f.src.Backoff << (s.failures - 1))
	}
}

func (s *fetchStream) Close() error {
	if !s.reader.IsUndefined() {
		s.reader.Call("cancel")
		s.reader = js.Undefined()
	}
	s.chunk = js.Undefined()
	return nil
}
