//go:build !js

// serve.go serves the Harmony web page on the loopback interface:
//
//	go run serve.go [-addr 127.0.0.1:8080]
//
// It rebuilds www/harmony.wasm (GOOS=js GOARCH=wasm go build ./wasm) when a
// Go source or shader is newer, copies Go's wasm_exec.js next to it, packs
// the tiny demo model (harmony pack of testdata/blipdiffusion-tiny into
// www/models/tiny) when it is missing, builds www/harmony-bench.wasm (the
// engine with the benchmark entry points, -tags harmonybench) when the
// benchmark page first asks for it, and serves www/ (the page, bench.html
// and the demo model) with the headers the page relies on: application/wasm,
// Range requests, cross-origin isolation (COOP/COEP), a Content-Security-
// Policy that lets the page fetch only from its own origin and the model
// origin the user chose, and long-lived cache headers for pack shards
// (their names carry no version, but a pack's manifest pins each shard's
// sha256, so a stale shard is detected and refetched).
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (keep it on loopback: the page is for this machine)")
	root := flag.String("www", "www", "folder with the page")
	noBuild := flag.Bool("no-build", false, "do not rebuild www/harmony.wasm, www/harmony-bench.wasm or the demo model")
	flag.Parse()
	h := newHandler(*root)
	if !*noBuild {
		if err := buildWasm(*root, false); err != nil {
			log.Fatalf("serve: %v", err)
		}
		if err := buildDemo(*root); err != nil {
			log.Fatalf("serve: %v", err)
		}
		h = withBenchBuild(*root, h)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("serve: %v", err)
	}
	fmt.Printf("Harmony is served at http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// buildWasm rebuilds root/harmony.wasm when any Go source or shader of the
// module is newer than it (or force), and refreshes wasm_exec.js.
func buildWasm(root string, force bool) error {
	return buildWasmFile(root, "harmony.wasm", "", force)
}

// buildWasmFile rebuilds root/name (./wasm built with the given build tags)
// when any Go source or shader of the module is newer than it (or force),
// and refreshes wasm_exec.js.
func buildWasmFile(root, name, tags string, force bool) error {
	out := filepath.Join(root, name)
	st, err := os.Stat(out)
	stale := force || err != nil
	if !stale {
		newest, err := newestSource(".")
		if err != nil {
			return err
		}
		stale = newest.After(st.ModTime())
	}
	if stale {
		fmt.Printf("building %s …\n", out)
		args := []string{"build", "-trimpath", "-o", out}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, "./wasm")...)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the wasm engine: %v", err)
		}
	}
	src := filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js")
	if goroot, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		src = filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading Go's wasm_exec.js: %v", err)
	}
	return os.WriteFile(filepath.Join(root, "wasm_exec.js"), data, 0o644)
}

// benchTag is the build tag of the engine with the benchmark entry points
// (wasm/bench.go).
const benchTag = "harmonybench"

// withBenchBuild builds root/harmony-bench.wasm (when stale) before serving
// it, so the production page never waits for the benchmark build.
func withBenchBuild(root string, h http.Handler) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/harmony-bench.wasm" {
			mu.Lock()
			err := buildWasmFile(root, "harmony-bench.wasm", benchTag, false)
			mu.Unlock()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// demoDir is the tiny demo model pack below the page folder, and demoSource
// the diffusers folder it is packed from.
const (
	demoDir    = "models/tiny"
	demoSource = "testdata/blipdiffusion-tiny"
)

// buildDemo packs the tiny demo model into root/models/tiny (harmony pack
// with its defaults) when its manifest.json is missing. The pack is
// byte-for-byte what .ci/setup writes.
func buildDemo(root string) error {
	out := filepath.Join(root, demoDir)
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
		return nil
	}
	fmt.Printf("packing %s into %s …\n", demoSource, out)
	cmd := exec.Command("go", "run", "./cmd/harmony", "pack", "-q", "--model", demoSource, "--out", out)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("packing the demo model: %v", err)
	}
	return nil
}

// newestSource is the latest modification time of the sources the wasm
// build depends on.
func newestSource(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "www", ".ci":
				return filepath.SkipDir
			}
			return nil
		}
		n := d.Name()
		if (strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")) || strings.HasSuffix(n, ".wgsl") || n == "go.mod" || n == "go.sum" || strings.HasSuffix(n, ".txt") {
			if info, err := d.Info(); err == nil && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
		}
		return nil
	})
	return newest, err
}

// newHandler serves root with the page's headers.
func newHandler(root string) http.Handler {
	files := http.FileServer(http.Dir(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Cross-origin isolation: SharedArrayBuffer and precise timers for
		// the engine; every subresource is same-origin or CORS.
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Embedder-Policy", "require-corp")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", contentSecurityPolicy(r.URL.Query()["model-origin"]...))
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, ".wasm"):
			h.Set("Content-Type", "application/wasm")
			h.Set("Cache-Control", "no-cache")
		case strings.HasPrefix(p, "/models/") && !strings.HasSuffix(p, ".json"):
			// Shards and weight files are immutable in practice; the
			// manifest (revalidated) pins their hashes.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			h.Set("Cache-Control", "no-cache")
		}
		if strings.HasSuffix(p, ".mjs") || strings.HasSuffix(p, ".js") {
			h.Set("Content-Type", "text/javascript; charset=utf-8")
		}
		// http.FileServer answers Range requests (206, Content-Range).
		files.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the page's own origin and, when the user
// chose a remote model, its origins (an ELITE model may come from up to
// three: Stable Diffusion, the image encoder, the mappers), plus the CDN
// hosts the Hugging Face hub redirects weight downloads to. Anything else
// is refused by the browser, so neither the photo, its mask nor anything
// derived from them can leave.
func contentSecurityPolicy(modelOrigins ...string) string {
	// blob: lets the page read back its own result images (object URLs
	// of data it made); it reaches nothing outside the tab.
	connect := []string{"'self'", "blob:"}
	add := func(o string) {
		if !slices.Contains(connect, o) {
			connect = append(connect, o)
		}
	}
	for _, mo := range modelOrigins {
		if o := sanitizeOrigin(mo); o != "" {
			add(o)
			if host := strings.TrimPrefix(o, "https://"); host == "huggingface.co" || strings.HasSuffix(host, ".huggingface.co") || host == "hf.co" {
				add("https://*.huggingface.co")
				add("https://*.hf.co")
			}
		}
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"connect-src " + strings.Join(connect, " "),
		"worker-src 'self' blob:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// sanitizeOrigin returns scheme://host[:port] for an https (or loopback
// http) origin, or "" when s is not one.
func sanitizeOrigin(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(u.Host, " ;'\"") {
		return ""
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (host == "127.0.0.1" || host == "localhost" || host == "::1"):
	default:
		return ""
	}
	return u.Scheme + "://" + u.Host
}
