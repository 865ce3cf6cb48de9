//go:build js

package loader_test

// A Hub repository read with fetch, under Node: a stand-in Hub (tree API,
// 302 to a second port) and CDN (in one of the modes: Content-Range,
// none, Range ignored, a corrupt byte) are Node servers started from
// JavaScript, as in fetch_js_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"syscall/js"

	"harmony/engine/jsx"
	"harmony/loader"
)

// hubServerJS serves the repository org/r at main: "config.json" (a git
// file) and "w.bin" (LFS, sha256 given) on the Hub port, redirected to
// the CDN port. mode: "cr", "nocr", "norange", "corrupt".
const hubServerJS = `(function (mode, sha, cfgBytes) {
  const http = require('http');
  const data = new Uint8Array(300 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 255;
  const files = { 'config.json': new TextEncoder().encode(cfgBytes), 'w.bin': data };
  const log = [];
  const cdn = http.createServer((req, res) => {
    log.push('cdn ' + req.method + ' ' + req.url + ' ' + (req.headers.range || ''));
    if (req.method !== 'GET') { res.writeHead(403); res.end(); return; }
    let b = files[req.url.replace(/^\/x\//, '').replace(/\?.*$/, '')];
    if (!b) { res.writeHead(404); res.end(); return; }
    if (mode === 'corrupt' && b === data) { b = b.slice(); b[b.length >> 1] ^= 0x5a; }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || '');
    if (!m || mode === 'norange') { res.writeHead(200, {'Content-Length': b.length}); res.end(b); return; }
    const a = +m[1], e = Math.min(+m[2], b.length - 1);
    const h = {'Content-Length': e - a + 1};
    if (mode !== 'nocr') h['Content-Range'] = 'bytes ' + a + '-' + e + '/' + b.length;
    res.writeHead(206, h);
    res.end(b.subarray(a, e + 1));
  });
  const hub = http.createServer((req, res) => {
    log.push('hub ' + req.method + ' ' + req.url);
    if (req.url === '/api/models/org/r/tree/main?recursive=true') {
      res.writeHead(200, {'Content-Type': 'application/json'});
      res.end(JSON.stringify([
        {type: 'file', path: 'config.json', size: files['config.json'].length, oid: 'aa'},
        {type: 'directory', path: 'sub', size: 0, oid: 'bb'},
        {type: 'file', path: 'w.bin', size: 134, oid: 'cc', lfs: {oid: sha, size: data.length, pointerSize: 134}},
      ]));
      return;
    }
    const m = /^\/org\/r\/resolve\/main\/(.*)$/.exec(req.url);
    if (!m) { res.writeHead(404); res.end(); return; }
    res.writeHead(302, {Location: 'http://127.0.0.1:' + cdn.address().port + '/x/' + m[1] + '?sig=1'});
    res.end();
  });
  return new Promise(resolve => cdn.listen(0, '127.0.0.1', () => hub.listen(0, '127.0.0.1', () => resolve({
    port: hub.address().port,
    cdnPort: cdn.address().port,
    log: () => log.join('\n'),
    count: () => log.length,
    close: () => { for (const s of [hub, cdn]) { s.closeAllConnections(); s.close(); } },
  }))));
})`

const hubConfig = `{"_class_name": "X"}`

func hubServer(t *testing.T, mode string) (loader.HubRepo, func() string, func() int) {
	h, _, log, count := hubServerCDN(t, mode)
	return h, log, count
}

// hubServerCDN is hubServer, also returning the CDN's base URL.
func hubServerCDN(t *testing.T, mode string) (loader.HubRepo, string, func() string, func() int) {
	sum := sha256.Sum256(payload())
	start := js.Global().Call("eval", hubServerJS)
	s, err := jsx.Await(context.Background(), start.Invoke(mode, hex.EncodeToString(sum[:]), hubConfig), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Call("close") })
	h := loader.HubRepo{Endpoint: "http://127.0.0.1:" + strconv.Itoa(s.Get("port").Int()), Repo: "org/r", Rev: "main"}
	cdn := "http://127.0.0.1:" + strconv.Itoa(s.Get("cdnPort").Int()) + "/x/"
	return h, cdn, func() string { return s.Call("log").String() }, func() int { return s.Call("count").Int() }
}

// TestHubFetch reads a repository's files through fetch in each CDN mode:
// whole, in ranges and streamed, with the sizes from the tree listing.
func TestHubFetch(t *testing.T) {
	for _, mode := range []string{"cr", "nocr", "norange"} {
		h, log, count := hubServer(t, mode)
		src := loader.NewHubSource(h)
		cfg, err := loader.ReadAll(context.Background(), src, "config.json", 1<<20)
		if err != nil || string(cfg) != hubConfig {
			t.Fatalf("%s: config.json: %q, %v\n%s", mode, cfg, err, log())
		}
		f, err := src.Open(context.Background(), "w.bin")
		if err != nil {
			t.Fatal(err)
		}
		want := payload()
		if f.Size() != int64(len(want)) {
			t.Fatalf("%s: size %d from the listing, want %d", mode, f.Size(), len(want))
		}
		p := make([]byte, 1000)
		if _, err := f.ReadAt(p, 5000); err != nil || !bytes.Equal(p, want[5000:6000]) {
			t.Fatalf("%s: ReadAt: %v\n%s", mode, err, log())
		}
		s, err := f.Stream(0, f.Size())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		s.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: streamed %d bytes, %v\n%s", mode, len(got), err, log())
		}
		n := count()
		if _, err := src.Open(context.Background(), "nothing.bin"); !errors.Is(err, fs.ErrNotExist) || count() != n {
			t.Fatalf("%s: missing file: %v after %d requests", mode, err, count()-n)
		}
	}
}

// TestHubFetchCorrupt: a file whose bytes differ from the listed SHA-256
// fails the read that completes it.
func TestHubFetchCorrupt(t *testing.T) {
	h, _, _ := hubServer(t, "corrupt")
	f, err := loader.NewHubSource(h).Open(context.Background(), "w.bin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Stream(0, f.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = io.ReadAll(s)
	var he *loader.HashError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want a HashError", err)
	}
	t.Log(err)
}

// TestHubFetchPlainNoContentRange: a plain URL source (no listing) on a
// server that sends no Content-Range learns the size from the
// Content-Length of a whole GET (not a HEAD, which the CDN refuses).
func TestHubFetchPlainNoContentRange(t *testing.T) {
	_, cdn, log, _ := hubServerCDN(t, "nocr")
	got, err := loader.ReadAll(context.Background(), loader.NewFetchSource(cdn), "w.bin", 1<<20)
	if err != nil || !bytes.Equal(got, payload()) {
		t.Fatalf("%d bytes, %v\n%s", len(got), err, log())
	}
	if strings.Contains(log(), "HEAD") {
		t.Errorf("a HEAD request:\n%s", log())
	}
}
