//go:build !js

// source_http.go reads files below an HTTP(S) base URL (a web server, a
// pack on a CDN, a Hugging Face "resolve/main/" URL) with Range requests
// (RFC 9110 §14), retrying network errors, 429 and 5xx responses, and
// resuming a body that breaks off or stalls at the byte where it stopped.
// Every wait on the server is bounded (Timeouts): connecting, the response
// headers, and each read of a body, so that a server that accepts a
// connection and then says nothing is reported instead of waited on.
package loader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
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
	Timeouts   Timeouts // zero fields: DefaultTimeouts
}

// NewHTTPSource returns a source for a base URL with 4 retries starting
// at half a second and the default timeouts.
func NewHTTPSource(base string) *HTTPSource {
	return &HTTPSource{Base: base, Retries: 4, Backoff: 500 * time.Millisecond}
}

func newURLSource(loc string) (Source, error) { return NewHTTPSource(loc), nil }

func newSizedSource(base string) sizedSource { return NewHTTPSource(base) }

// hubEndpoint is HubEndpoint, or HF_ENDPOINT when set.
func hubEndpoint() string {
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		return e
	}
	return HubEndpoint
}

// browser is false: local paths are folders.
const browser = false

func (s *HTTPSource) String() string { return s.Base }

func (s *HTTPSource) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return connectClient(s.Timeouts.orDefault().Connect)
}

// clients holds one client per connect timeout, so that sources with the
// same settings share their connections.
var clients struct {
	sync.Mutex
	m map[time.Duration]*http.Client
}

// connectClient returns a client like http.DefaultClient whose dialer and
// TLS handshake give up after d.
func connectClient(d time.Duration) *http.Client {
	clients.Lock()
	defer clients.Unlock()
	if c := clients.m[d]; c != nil {
		return c
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = d
	c := &http.Client{Transport: t}
	if clients.m == nil {
		clients.m = map[time.Duration]*http.Client{}
	}
	clients.m[d] = c
	return c
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
		cr := resp.Header.Get("Content-Range")
		if cr == "" {
			return nil, &SourceError{URL: f.url, Op: "open", Status: resp.StatusCode, Err: errNoContentRange}
		}
		_, _, total, err := parseContentRange(cr)
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
	src   *HTTPSource
	ctx   context.Context
	url   string
	size  int64
	tag   string
	known bool // size from a listing (the Hub's tree API), not from the server's answer
}

// openSized implements sizedSource: no request until the file is read.
func (s *HTTPSource) openSized(ctx context.Context, name string, size int64, tag string) File {
	return &httpFile{src: s, ctx: ctx, url: joinURL(s.Base, name), size: size, tag: tag, known: true}
}

// getAll implements sizedSource with a GET without Range, retried as
// range requests are.
func (s *HTTPSource) getAll(ctx context.Context, u string, limit int64) ([]byte, string, error) {
	f := &httpFile{src: s, ctx: ctx, url: u}
	resp, err := f.do(0, -1, false)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", &SourceError{URL: u, Op: "read", Status: resp.StatusCode, Err: errors.New("expected the whole resource")}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", &SourceError{URL: u, Op: "read", Err: err}
	}
	if int64(len(b)) > limit {
		return nil, "", &SourceError{URL: u, Op: "read", Err: fmt.Errorf("more than %d bytes", limit)}
	}
	return b, nextLink(u, resp.Header.Get("Link")), nil
}

func (f *httpFile) Size() int64  { return f.size }
func (f *httpFile) Name() string { return f.url }
func (f *httpFile) Tag() string  { return f.tag }
func (f *httpFile) Close() error { return nil }

// do requests n bytes at off (n < 0: the whole resource, no Range),
// retrying what may be transient. probe accepts a 416 (the one-byte probe of an empty file). The response body
// gives up after the idle timeout without bytes (timedBody).
func (f *httpFile) do(off, n int64, probe bool) (*http.Response, error) {
	op := "range"
	if n < 0 {
		op = "get"
	}
	to := f.src.Timeouts.orDefault()
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > f.src.Retries {
				return nil, gaveUp(last, attempt)
			}
			select {
			case <-f.ctx.Done():
				return nil, f.ctx.Err()
			case <-time.After(backoff(f.src.Backoff, attempt-1)):
			}
		}
		// Each request has its own context: a timer cancels it when the
		// headers or the next body bytes are late, with a TimeoutError as
		// the cause.
		rctx, cancel := context.WithCancelCause(f.ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, f.url, nil)
		if err != nil {
			cancel(nil)
			return nil, &SourceError{URL: f.url, Op: "open", Err: err}
		}
		for k, v := range f.src.Header {
			req.Header[k] = v
		}
		if n >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		}
		wait := time.AfterFunc(to.Response, func() { cancel(&TimeoutError{Wait: "response", After: to.Response}) })
		resp, err := f.src.client().Do(req)
		if !wait.Stop() && err == nil {
			// The timer fired as the headers came: the body is cancelled.
			resp.Body.Close()
			err = context.Cause(rctx)
		}
		if err != nil {
			cancel(nil)
			if f.ctx.Err() != nil {
				return nil, f.ctx.Err()
			}
			var te *TimeoutError
			if errors.As(context.Cause(rctx), &te) {
				// Not retried: the server accepted the request and kept
				// silent for the whole timeout; waiting that long again
				// Retries times would hide a dead server for many minutes.
				return nil, &SourceError{URL: f.url, Op: op, Err: te}
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = &TimeoutError{Wait: "connection", After: to.Connect}
			}
			last = &SourceError{URL: f.url, Op: op, Err: err}
			if permanent(err) {
				return nil, last
			}
			continue
		}
		resp.Body = newTimedBody(resp.Body, rctx, cancel, to.Idle)
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
		last = &SourceError{URL: f.url, Op: op, Status: code, Err: err}
		if code != http.StatusTooManyRequests && code < 500 {
			return nil, last
		}
	}
}

// permanent reports request errors that no retry mends: a name that does
// not resolve, a certificate the client does not trust.
func permanent(err error) bool {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	return errors.As(err, &dns) && dns.IsNotFound || errors.As(err, &cert) || errors.As(err, &ua) || errors.As(err, &hn)
}

// timedBody is a response body whose every Read must bring bytes within
// idle: a stalled server cancels the request, and the read fails with a
// TimeoutError, which Stream resumes from like any broken body.
type timedBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   time.Duration
	timer  *time.Timer
}

func newTimedBody(body io.ReadCloser, ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration) *timedBody {
	t := time.AfterFunc(idle, func() { cancel(&TimeoutError{Wait: "data", After: idle}) })
	t.Stop() // armed by each Read
	return &timedBody{body: body, ctx: ctx, cancel: cancel, idle: idle, timer: t}
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.body.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		var te *TimeoutError
		if errors.As(context.Cause(b.ctx), &te) {
			err = te
		}
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// body opens the n bytes at off as a checked response body.
func (f *httpFile) body(off, n int64) (io.ReadCloser, error) {
	resp, err := f.do(off, n, false)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		// The server ignored Range and sends the whole file. A file of a
		// listing (a Hub repository, whose CDN should honour Range) is
		// read on by skipping to off; elsewhere a large file the server
		// will not send in pieces is refused, as reading it would fetch it
		// again from its start for every piece.
		if off != 0 && !f.known {
			resp.Body.Close()
			return nil, &SourceError{URL: f.url, Op: "range", Status: resp.StatusCode, Err: errors.New("the server ignores Range requests, and the file is too large to hold whole: serve it from a server that answers Range requests")}
		}
		if off != 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				resp.Body.Close()
				return nil, &SourceError{URL: f.url, Op: "read", Status: resp.StatusCode, Err: fmt.Errorf("the server ignores Range requests, and skipping to byte %d failed: %w", off, err)}
			}
		}
		return readCloser{io.LimitReader(resp.Body, n), resp.Body}, nil
	}
	if resp.Header.Get("Content-Range") == "" {
		if err := trustRange(f.known, resp.ContentLength, n); err != nil {
			resp.Body.Close()
			return nil, &SourceError{URL: f.url, Op: "range", Status: resp.StatusCode, Err: err}
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
	failures int   // breaks since the stream last made resumeProgress
	resumed  int64 // offset of the last resumption
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
		if s.failures > 0 && s.off-s.resumed >= resumeProgress {
			s.failures = 0
		}
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
		s.resumed = s.off
		if s.failures > s.f.src.Retries {
			if err == io.EOF {
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

func (s *httpStream) Close() error {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	return nil
}
