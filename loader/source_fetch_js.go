//go:build js

// source_fetch_js.go reads files below a base URL with the browser's fetch:
// Range requests whose bodies are streamed chunk by chunk into Go memory
// (ReadableStream readers), so the wasm heap holds only what the loader
// asks for. Retries and resumption follow source_http.go, and so do the
// timeouts: each request has an AbortController that a timer fires when
// the response, or the next chunk of the body, is later than Timeouts
// allow (the timer is reset by every chunk: no deadline on the whole body).
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync/atomic"
	"syscall/js"
	"time"
)

// FetchSource is the files below a base URL, read with fetch.
type FetchSource struct {
	Base     string            // absolute or page-relative base URL
	Header   map[string]string // extra request headers
	Retries  int               // attempts after the first
	Backoff  time.Duration
	Timeouts Timeouts // Response and Idle; zero fields: DefaultTimeouts
}

// NewFetchSource returns a fetch source with 4 retries and the default
// timeouts.
func NewFetchSource(base string) *FetchSource {
	return &FetchSource{Base: base, Retries: 4, Backoff: 500 * time.Millisecond}
}

func newURLSource(loc string) (Source, error) { return NewFetchSource(loc), nil }

func newSizedSource(base string) sizedSource { return NewFetchSource(base) }

func hubEndpoint() string { return HubEndpoint }

// browser is true: every location is a URL.
const browser = true

func (s *FetchSource) String() string { return s.Base }

// Open implements Source with a one-byte range request.
func (s *FetchSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f := &fetchFile{src: s, ctx: ctx, url: joinURL(s.Base, name)}
	resp, status, ab, err := f.do(0, 1, true)
	if err != nil {
		return nil, err
	}
	cancelBody(resp)
	ab.close()
	hdr := resp.Get("headers")
	switch status {
	case 206:
		if _, _, total, err := parseContentRange(header(hdr, "Content-Range")); err == nil && total >= 0 {
			f.size = total
		} else if n, err := f.wholeLength(); err == nil {
			// Content-Range is hidden from cross-origin pages unless exposed.
			f.size = n
		} else {
			return nil, &SourceError{URL: f.url, Op: "open", Status: status, Err: errNoContentRange}
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
		ignoreRejection(b.Call("cancel"))
	}
}

// ignoreRejection marks a promise whose failure does not matter (the
// cancel of a body that already broke off or was aborted) as handled:
// an unhandled rejection ends a Node process and litters a page's console.
func ignoreRejection(p js.Value) {
	if p.Type() == js.TypeObject {
		p.Call("catch", ignore)
	}
}

var ignore = js.FuncOf(func(js.Value, []js.Value) any { return nil })

type fetchFile struct {
	src     *FetchSource
	ctx     context.Context
	url     string
	size    int64
	tag     string
	noRange bool
	known   bool // size from a listing (the Hub's tree API), not from the server's answer
}

// openSized implements sizedSource: no request until the file is read.
func (s *FetchSource) openSized(ctx context.Context, name string, size int64, tag string) File {
	return &fetchFile{src: s, ctx: ctx, url: joinURL(s.Base, name), size: size, tag: tag, known: true}
}

// getAll implements sizedSource with a plain GET (no Range, no custom
// header: no preflight), retried as range requests are.
func (s *FetchSource) getAll(ctx context.Context, u string, limit int64) ([]byte, string, error) {
	f := &fetchFile{src: s, ctx: ctx, url: u}
	resp, status, ab, err := f.do(0, -1, false)
	if err != nil {
		return nil, "", err
	}
	defer ab.close()
	if status != 200 {
		cancelBody(resp)
		return nil, "", &SourceError{URL: u, Op: "read", Status: status, Err: errors.New("expected the whole resource")}
	}
	next := nextLink(u, header(resp.Get("headers"), "Link"))
	ab.arm("data", s.Timeouts.orDefault().Idle)
	buf, err := await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		return nil, "", &SourceError{URL: u, Op: "read", Err: ab.why(err)}
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	if int64(arr.Length()) > limit {
		return nil, "", &SourceError{URL: u, Op: "read", Err: fmt.Errorf("more than %d bytes", limit)}
	}
	b := make([]byte, arr.Length())
	js.CopyBytesToGo(b, arr)
	return b, next, nil
}

func (f *fetchFile) Size() int64  { return f.size }
func (f *fetchFile) Name() string { return f.url }
func (f *fetchFile) Tag() string  { return f.tag }
func (f *fetchFile) Close() error { return nil }

// wholeLength learns the size from the Content-Length (a CORS-safelisted
// response header) of a plain GET whose body is then dropped: not a HEAD,
// which CDNs serving pages have been seen to refuse.
func (f *fetchFile) wholeLength() (int64, error) {
	resp, status, ab, err := f.do(0, -1, false)
	if err != nil {
		return 0, err
	}
	cancelBody(resp)
	ab.close()
	if status != 200 {
		return 0, fmt.Errorf("status %d", status)
	}
	return strconv.ParseInt(header(resp.Get("headers"), "Content-Length"), 10, 64)
}

// aborter is one request's AbortController, fired when ctx ends or when
// the armed timer runs out; the timer's TimeoutError then explains the
// rejection.
type aborter struct {
	ac       js.Value
	timer    *time.Timer
	timedOut atomic.Pointer[TimeoutError]
	stopCtx  func() bool
}

func newAborter(ctx context.Context) *aborter {
	a := &aborter{ac: js.Global().Get("AbortController").New()}
	a.stopCtx = context.AfterFunc(ctx, func() { a.ac.Call("abort") })
	return a
}

// arm starts (or restarts) the wait for what must come within d.
func (a *aborter) arm(wait string, d time.Duration) {
	a.disarm()
	a.timer = time.AfterFunc(d, func() {
		a.timedOut.Store(&TimeoutError{Wait: wait, After: d})
		a.ac.Call("abort")
	})
}

func (a *aborter) disarm() {
	if a.timer != nil {
		a.timer.Stop()
	}
}

func (a *aborter) close() {
	a.disarm()
	a.stopCtx()
}

// why turns a rejected fetch or read into the error to report: the
// timeout that aborted it, else the rejection with a hint at its usual
// causes (fetch gives a bare TypeError for network and CORS failures).
func (a *aborter) why(err error) error {
	if te := a.timedOut.Load(); te != nil {
		return te
	}
	var je *jsError
	if errors.As(err, &je) && je.Name == "TypeError" {
		return fmt.Errorf("%w (the network failed or the server refused this page: check the URL, the connection, and that the server sends CORS headers allowing this origin)", err)
	}
	return err
}

// do fetches n bytes at off with retries (n < 0: the whole resource,
// without Range); it returns the Response and
// the aborter that bounds the reads of its body (the caller closes it).
func (f *fetchFile) do(off, n int64, probe bool) (js.Value, int, *aborter, error) {
	op := "range"
	if n < 0 {
		op = "get"
	}
	to := f.src.Timeouts.orDefault()
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > f.src.Retries {
				return js.Undefined(), 0, nil, gaveUp(last, attempt)
			}
			select {
			case <-f.ctx.Done():
				return js.Undefined(), 0, nil, f.ctx.Err()
			case <-time.After(backoff(f.src.Backoff, attempt-1)):
			}
		}
		// A single "bytes=a-b" Range is a CORS-safelisted request header:
		// no preflight, which the Hub's CDN refuses.
		headers := map[string]any{}
		if n >= 0 {
			headers["Range"] = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
		}
		for k, v := range f.src.Header {
			headers[k] = v
		}
		ab := newAborter(f.ctx)
		ab.arm("response", to.Response)
		p := js.Global().Call("fetch", f.url, js.ValueOf(map[string]any{"headers": headers, "signal": ab.ac.Get("signal")}))
		resp, err := await(f.ctx, p)
		ab.disarm()
		if err != nil {
			ab.close()
			if f.ctx.Err() != nil {
				return js.Undefined(), 0, nil, f.ctx.Err()
			}
			err = ab.why(err)
			var te *TimeoutError
			if errors.As(err, &te) {
				// Not retried, as in source_http.go: the server kept
				// silent for the whole timeout.
				return js.Undefined(), 0, nil, &SourceError{URL: f.url, Op: op, Err: err}
			}
			last = &SourceError{URL: f.url, Op: op, Err: err}
			continue
		}
		status := resp.Get("status").Int()
		if status == 206 || status == 200 || (status == 416 && probe) {
			return resp, status, ab, nil
		}
		cancelBody(resp)
		ab.close()
		err = errors.New(resp.Get("statusText").String())
		if status == 404 || status == 410 {
			err = fs.ErrNotExist
		}
		last = &SourceError{URL: f.url, Op: op, Status: status, Err: err}
		if status != 429 && status < 500 {
			return js.Undefined(), 0, nil, last
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
	abort    *aborter // the request's, while reader is open
	chunk    js.Value // current Uint8Array
	chunkOff int
	skip     int64 // bytes of the body before off (a server that ignored Range)
	failures int   // breaks since the stream last made resumeProgress
	resumed  int64 // offset of the last resumption
}

func (s *fetchStream) open() error {
	resp, status, ab, err := s.f.do(s.off, s.end-s.off, false)
	if err != nil {
		return err
	}
	s.skip = 0
	if status == 200 && s.off != 0 {
		// The server ignored Range and sends the whole file. A file of a
		// listing (a Hub repository, whose CDN should honour Range) is
		// read on by skipping to off; elsewhere it is refused, as reading
		// it would fetch it again from its start for every piece.
		if !s.f.known {
			cancelBody(resp)
			ab.close()
			return &SourceError{URL: s.f.url, Op: "range", Status: status, Err: errors.New("the server ignores Range requests: serve the model from a server that answers them")}
		}
		s.skip = s.off
	}
	if status == 206 {
		hdr := resp.Get("headers")
		if cr := header(hdr, "Content-Range"); cr != "" {
			if a, _, _, err := parseContentRange(cr); err != nil || a != s.off {
				cancelBody(resp)
				ab.close()
				return &SourceError{URL: s.f.url, Op: "range", Status: status, Err: fmt.Errorf("asked for bytes from %d, got Content-Range %q", s.off, cr)}
			}
		} else {
			// Hidden from this page (not exposed by the CDN): trusted by
			// its length, the size being known once the file is open (from
			// the tree listing, or the Content-Length of a whole GET).
			clen, err := strconv.ParseInt(header(hdr, "Content-Length"), 10, 64)
			if err != nil {
				clen = -1
			}
			if err := trustRange(true, clen, s.end-s.off); err != nil {
				cancelBody(resp)
				ab.close()
				return &SourceError{URL: s.f.url, Op: "range", Status: status, Err: err}
			}
		}
	}
	s.reader = resp.Get("body").Call("getReader")
	s.abort = ab
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
		if !s.chunk.IsUndefined() && s.chunkOff < s.chunk.Length() && s.skip > 0 {
			k := min(int64(s.chunk.Length()-s.chunkOff), s.skip)
			s.chunkOff += int(k)
			s.skip -= k
			continue
		}
		if !s.chunk.IsUndefined() && s.chunkOff < s.chunk.Length() {
			n := js.CopyBytesToGo(p, s.chunk.Call("subarray", s.chunkOff))
			s.chunkOff += n
			s.off += int64(n)
			return n, nil
		}
		s.abort.arm("data", s.f.src.Timeouts.orDefault().Idle)
		r, err := await(s.f.ctx, s.reader.Call("read"))
		s.abort.disarm()
		if err == nil && !r.Get("done").Bool() {
			s.chunk, s.chunkOff = r.Get("value"), 0
			if s.failures > 0 && s.off-s.resumed >= resumeProgress {
				s.failures = 0
			}
			continue
		}
		if s.f.ctx.Err() != nil {
			return 0, s.f.ctx.Err()
		}
		if err != nil {
			err = s.abort.why(err)
		}
		// The body ended early, broke off or stalled: resume at s.off.
		s.Close()
		s.failures++
		s.resumed = s.off
		if s.failures > s.f.src.Retries {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return 0, &SourceError{URL: s.f.url, Op: "read", Err: fmt.Errorf("body broke off at byte %d of %d: %w", s.off, s.end, err)}
		}
		select {
		case <-s.f.ctx.Done():
			return 0, s.f.ctx.Err()
		case <-time.After(backoff(s.f.src.Backoff, s.failures-1)):
		}
	}
}

func (s *fetchStream) Close() error {
	if !s.reader.IsUndefined() {
		ignoreRejection(s.reader.Call("cancel"))
		s.reader = js.Undefined()
	}
	if s.abort != nil {
		s.abort.close()
		s.abort = nil
	}
	s.chunk = js.Undefined()
	return nil
}
