//go:build js

package loader_test

// Faults of servers read with fetch, under Node: the servers are Node
// http servers on 127.0.0.1 started from JavaScript (the wasm test binary
// has no sockets of its own).

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"harmony/engine/jsx"
	"harmony/loader"
)

// faultServerJS starts a server in one of the modes: "never" (accepts,
// never answers), "stall" (its second request gets half the body, then
// silence), "503" (two 503s, then the file), "404".
const faultServerJS = `(function (mode) {
  const http = require('http');
  const data = new Uint8Array(300 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 255;
  let n = 0;
  const srv = http.createServer((req, res) => {
    n++;
    if (mode === 'never') return;
    if (mode === '404' || req.url !== '/f.bin') { res.writeHead(404); res.end(); return; }
    if (mode === '503' && n <= 2) { res.writeHead(503); res.end(); return; }
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range || '');
    const a = m ? +m[1] : 0, b = m ? Math.min(+m[2], data.length - 1) : data.length - 1;
    res.writeHead(206, {'Content-Range': 'bytes ' + a + '-' + b + '/' + data.length, 'Content-Length': b - a + 1});
    if (mode === 'stall' && n === 2) { res.write(data.subarray(a, a + (b - a + 1) / 2)); return; }
    res.end(data.subarray(a, b + 1));
  });
  return new Promise(resolve => srv.listen(0, '127.0.0.1', () => resolve({
    port: srv.address().port,
    count: () => n,
    close: () => { srv.closeAllConnections(); srv.close(); },
  })));
})`

func faultServer(t *testing.T, mode string) (base string, count func() int) {
	start := js.Global().Call("eval", faultServerJS)
	s, err := jsx.Await(context.Background(), start.Invoke(mode), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Call("close") })
	return "http://127.0.0.1:" + strconv.Itoa(s.Get("port").Int()) + "/", func() int { return s.Call("count").Int() }
}

func faultFetch(base string) *loader.FetchSource {
	s := loader.NewFetchSource(base)
	s.Backoff = time.Millisecond
	s.Timeouts = loader.Timeouts{Response: 300 * time.Millisecond, Idle: 300 * time.Millisecond}
	return s
}

func payload() []byte {
	b := make([]byte, 300<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestFetchNeverAnswers(t *testing.T) {
	base, _ := faultServer(t, "never")
	start := time.Now()
	_, err := loader.ReadAll(context.Background(), faultFetch(base), "f.bin", 1<<20)
	var te *loader.TimeoutError
	if !errors.As(err, &te) || te.Wait != "response" || !strings.Contains(err.Error(), base+"f.bin") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v with a 300ms response timeout", took)
	}
	t.Log(err)
}

func TestFetchStall(t *testing.T) {
	base, count := faultServer(t, "stall")
	got, err := loader.ReadAll(context.Background(), faultFetch(base), "f.bin", 1<<20)
	if err != nil || !bytes.Equal(got, payload()) {
		t.Fatalf("resumed read: %v (%d bytes)", err, len(got))
	}
	if count() != 3 {
		t.Errorf("%d requests, want probe, stalled read, resumption", count())
	}

	base, _ = faultServer(t, "stall")
	src := faultFetch(base)
	src.Retries = 0
	_, err = loader.ReadAll(context.Background(), src, "f.bin", 1<<20)
	var te *loader.TimeoutError
	if !errors.As(err, &te) || te.Wait != "data" || !strings.Contains(err.Error(), base+"f.bin") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

func TestFetchRetry(t *testing.T) {
	base, count := faultServer(t, "503")
	got, err := loader.ReadAll(context.Background(), faultFetch(base), "f.bin", 1<<20)
	if err != nil || !bytes.Equal(got, payload()) || count() != 4 {
		t.Fatalf("after 503s: %v, %d requests", err, count())
	}
}

func TestFetchNotFound(t *testing.T) {
	base, count := faultServer(t, "404")
	_, err := loader.ReadAll(context.Background(), faultFetch(base), "f.bin", 1<<20)
	var se *loader.SourceError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.URL != base+"f.bin" || count() != 1 {
		t.Fatalf("got %v after %d requests", err, count())
	}
	t.Log(err)
}
