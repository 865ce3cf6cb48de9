//go:build !(linux && !android && !nox11 && cgo)

// drop_other.go: no file drops from the desktop outside X11 yet (Gio
// v0.10.3 delivers none on Wayland, Windows or macOS); the Open button and
// the path field remain.
package main

import (
	"gioui.org/app"

	"harmony/cmd/harmony-app/internal/ui"
)

func watchDrops(app.ViewEvent, *ui.UI) {}
