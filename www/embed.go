// Package www holds the web page and the bundled demo: the tiny
// BLIP-Diffusion model as a pack (random weights, the architecture of the
// released model at test sizes) and a demo photo. serve.go serves this
// folder; the CLI embeds the demo so it runs offline with no download.
package www

import (
	"embed"
	"io/fs"
)

//go:embed models/tiny demo/subject.png
var demo embed.FS

// DemoModel is the bundled tiny model pack (manifest.json at its root).
func DemoModel() fs.FS {
	sub, err := fs.Sub(demo, "models/tiny")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// DemoPhoto is the bundled demo subject photo (PNG).
func DemoPhoto() []byte {
	b, err := demo.ReadFile("demo/subject.png")
	if err != nil {
		panic(err)
	}
	return b
}
