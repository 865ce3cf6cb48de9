//go:build !js

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServeHeaders(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "harmony.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models", "tiny"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", "tiny", "shard-000.bin"), []byte("0123456789"), 0o644))
	srv := httptest.NewServer(newHandler(dir))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "same-origin", res.Header.Get("Cross-Origin-Opener-Policy"))
	require.Equal(t, "require-corp", res.Header.Get("Cross-Origin-Embedder-Policy"))
	csp := res.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "connect-src 'self' blob:;")
	require.Contains(t, csp, "'wasm-unsafe-eval'")

	res, err = http.Get(srv.URL + "/harmony.wasm")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, "application/wasm", res.Header.Get("Content-Type"))

	req, _ := http.NewRequest("GET", srv.URL+"/models/tiny/shard-000.bin", nil)
	req.Header.Set("Range", "bytes=2-5")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	require.Equal(t, "2345", string(body))
	require.Contains(t, res.Header.Get("Cache-Control"), "immutable")

	res, err = http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

func TestContentSecurityPolicyOrigins(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "connect-src 'self' blob:;"},
		{"https://huggingface.co/Salesforce/blipdiffusion/resolve/main", "connect-src 'self' blob: https://huggingface.co https://*.huggingface.co https://*.hf.co;"},
		{"https://models.example.org:8443/packs/x", "connect-src 'self' blob: https://models.example.org:8443;"},
		{"http://127.0.0.1:9000/x", "connect-src 'self' blob: http://127.0.0.1:9000;"},
		{"http://evil.example.org", "connect-src 'self' blob:;"},
		{"javascript:alert(1)", "connect-src 'self' blob:;"},
		{"https://a.example.org; script-src *", "connect-src 'self' blob:;"},
	} {
		require.Contains(t, contentSecurityPolicy(tc.in), tc.want, tc.in)
	}
}

// An ELITE model's parts may come from several origins, each named once.
func TestContentSecurityPolicyManyOrigins(t *testing.T) {
	csp := contentSecurityPolicy("https://huggingface.co", "https://models.example.org", "https://huggingface.co/x", "http://evil.example.org")
	require.Contains(t, csp, "connect-src 'self' blob: https://huggingface.co https://*.huggingface.co https://*.hf.co https://models.example.org;")
}
