//go:build !js

// token.go passes the user's Hugging Face token (HF_TOKEN) with requests
// to the Hub, which gated repositories need. Native builds only: the
// browser build of this package never downloads.
package state

import (
	"net/http"
	"os"
	"strings"

	"harmony/loader"
)

// withToken adds HF_TOKEN to src's requests when base is on the Hub; the
// token is never sent to any other host.
func withToken(src loader.Source, base string) {
	hs, ok := src.(*loader.HTTPSource)
	tok := os.Getenv("HF_TOKEN")
	if !ok || tok == "" || !strings.HasPrefix(base, "https://huggingface.co/") {
		return
	}
	hs.Header = http.Header{"Authorization": {"Bearer " + tok}}
}
