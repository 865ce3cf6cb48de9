// Package www holds the web page and the bundled demo: the tiny
// BLIP-Diffusion model as a pack (random weights, the architecture of the
// released model at test sizes) and a demo photo. serve.go serves this
// folder; the CLI embeds the demo so it runs offline with no download.
//
// The demo pack (models/tiny) is not committed: .ci/setup (and serve.go,
// when it is missing) writes it with harmony pack from
// testdata/blipdiffusion-tiny. The folder's committed README.md keeps the
// embed pattern valid on a fresh clone; until the pack is built,
// DemoModel's files fail to open with ErrDemoNotBuilt. A build with the tag
// devicekit embeds the pack without its weights (demo_kit.go).
package www

import (
	"errors"
	"io/fs"
)

// ErrDemoNotBuilt is the error of every file of DemoModel while the demo
// pack is absent.
var ErrDemoNotBuilt = errors.New("www: the demo model pack is not built: run ./.ci/setup")

// DemoModel is the bundled tiny model pack (manifest.json at its root).
// Before the pack is built, opening any of its files fails with
// ErrDemoNotBuilt.
func DemoModel() fs.FS {
	sub, err := fs.Sub(demo, "models/tiny")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	if !DemoBuilt() {
		return notBuilt{}
	}
	return sub
}

// DemoBuilt reports whether the binary embeds the demo pack.
func DemoBuilt() bool {
	_, err := fs.Stat(demo, "models/tiny/manifest.json")
	return err == nil
}

// notBuilt is the file system of an absent demo pack.
type notBuilt struct{}

func (notBuilt) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: ErrDemoNotBuilt}
}

// DemoPhoto is the bundled demo subject photo (PNG).
func DemoPhoto() []byte {
	b, err := demo.ReadFile("demo/subject.png")
	if err != nil {
		panic(err)
	}
	return b
}
