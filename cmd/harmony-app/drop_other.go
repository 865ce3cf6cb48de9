//go:build !(linux && !android && !nox11 && cgo) && !windows && !(darwin && !ios && cgo)

// drop_other.go: no file drops from the desktop where neither XDND, Win32
// nor AppKit is hooked up (Wayland gets none from Gio v0.10.3); the Open
// button and the path field remain.
package main

import (
	"gioui.org/app"

	"harmony/cmd/harmony-app/internal/ui"
)

func watchDrops(*app.Window, app.ViewEvent, *ui.UI) {}
