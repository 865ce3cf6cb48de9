//go:build !ios && cgo

// drop_darwin.go: files dropped onto the window from the Finder, which
// Gio does not deliver itself: the AppKit view is made a dragging
// destination (internal/macdrop).
package main

import (
	"fmt"
	"os"

	"gioui.org/app"

	"harmony/cmd/harmony-app/internal/macdrop"
	"harmony/cmd/harmony-app/internal/ui"
)

var stopDrops func()

// watchDrops follows the window's native view: a valid AppKit view
// becomes a drop target, anything else ends the watch.
func watchDrops(_ *app.Window, e app.ViewEvent, u *ui.UI) {
	if stopDrops != nil {
		stopDrops()
		stopDrops = nil
	}
	v, ok := e.(app.AppKitViewEvent)
	if !ok || !v.Valid() {
		return
	}
	stop, err := macdrop.Attach(v.View, func(paths []string) {
		u.Drop(paths, logDrop)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harmony-app: no file drops: %v\n", err)
		return
	}
	stopDrops = stop
}
