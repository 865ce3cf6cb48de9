//go:build !js

package loader_test

// Faults of HTTP servers on 127.0.0.1: a server that never answers, one
// that stalls in the middle of a body, transient 503s and a missing file,
// each with short timeouts so that the tests take well under a second.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"harmony/loader"
)

var short = loader.Timeouts{Connect: time.Second, Response: 200 * time.Millisecond, Idle: 200 * time.Millisecond}

func faultSource(base string) *loader.HTTPSource {
	s := loader.NewHTTPSource(base)
	s.Backoff = time.Millisecond
	s.Timeouts = short
	return s
}

// payload is a file of distinct bytes, large enough to take several reads.
func payload() []byte {
	b := make([]byte, 300<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestHTTPNeverAnswers: a server that accepts connections and never says a
// word is reported, naming the URL, once the response timeout has passed.
func TestHTTPNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	base := "http://" + ln.Addr().String() + "/model/"
	start := time.Now()
	_, err = loader.ReadAll(context.Background(), faultSource(base), "model_index.json", 1<<20)
	took := time.Since(start)
	var te *loader.TimeoutError
	var se *loader.SourceError
	if !errors.As(err, &te) || te.Wait != "response" || !errors.As(err, &se) || se.URL != base+"model_index.json" {
		t.Fatalf("got %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("took %v with a 200ms response timeout", took)
	}
	if !strings.Contains(err.Error(), base+"model_index.json") || !strings.Contains(err.Error(), "no response within 200ms") {
		t.Errorf("message %q", err)
	}
	t.Logf("%v after %v", err, took.Round(time.Millisecond))
}

// stallServer serves data as "/f.bin", answering request number stall
// (counted from 1; the first is the size probe) with half the body and
// then silence until the client gives up.
func stallServer(t *testing.T, data []byte, stall func(n int) bool) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/f.bin" {
			http.NotFound(w, r)
			return
		}
		if stall(int(n.Add(1))) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		http.ServeContent(w, r, "f.bin", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestHTTPStall: a body that stops halfway is resumed by a range request
// from where it stopped once the idle timeout passes; without retries the
// error names the URL and the wait.
func TestHTTPStall(t *testing.T) {
	data := payload()
	srv, n := stallServer(t, data, func(n int) bool { return n == 2 })
	got, err := loader.ReadAll(context.Background(), faultSource(srv.URL), "f.bin", 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed read: %v (%d bytes)", err, len(got))
	}
	if n.Load() != 3 {
		t.Errorf("%d requests, want probe, stalled read, resumption", n.Load())
	}

	srv, _ = stallServer(t, data, func(n int) bool { return n >= 2 })
	src := faultSource(srv.URL)
	src.Retries = 0
	start := time.Now()
	_, err = loader.ReadAll(context.Background(), src, "f.bin", 1<<20)
	var te *loader.TimeoutError
	if !errors.As(err, &te) || te.Wait != "data" || !strings.Contains(err.Error(), srv.URL+"/f.bin") || !strings.Contains(err.Error(), "broke off") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a 200ms idle timeout", took)
	}
	t.Log(err)
}

// TestHTTPRetry: 503s are retried until the server recovers; a server
// that keeps failing is given up on after Retries more attempts.
func TestHTTPRetry(t *testing.T) {
	data := payload()
	var n atomic.Int32
	failing := int32(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= failing {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		http.ServeContent(w, r, "f.bin", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	got, err := loader.ReadAll(context.Background(), faultSource(srv.URL), "f.bin", 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after 503s: %v", err)
	}

	n.Store(0)
	failing = 1 << 30
	src := faultSource(srv.URL)
	src.Retries = 2
	_, err = loader.ReadAll(context.Background(), src, "f.bin", 1<<20)
	var se *loader.SourceError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.URL != srv.URL+"/f.bin" || n.Load() != 3 {
		t.Fatalf("got %v after %d requests", err, n.Load())
	}
	t.Log(err)
}

// TestHTTPNotFound: a 404 is not retried and reads as fs.ErrNotExist.
func TestHTTPNotFound(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, err := loader.ReadAll(context.Background(), faultSource(srv.URL), "unet/config.json", 1<<20)
	var se *loader.SourceError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Status != 404 || se.URL != srv.URL+"/unet/config.json" || n.Load() != 1 {
		t.Fatalf("got %v after %d requests", err, n.Load())
	}
	t.Log(err)
}
