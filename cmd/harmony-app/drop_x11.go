//go:build linux && !android && !nox11 && cgo

// drop_x11.go: files dropped onto the window from an X11 desktop (XDND),
// which Gio does not deliver itself: a second connection watches the
// window through an XdndProxy window (internal/xdnd).
package main

import (
	"fmt"
	"os"

	"gioui.org/app"

	"harmony/cmd/harmony-app/internal/ui"
	"harmony/cmd/harmony-app/internal/xdnd"
)

var stopDrops func()

// watchDrops follows the window's native view: a valid X11 view becomes a
// drop target, anything else ends the watch.
func watchDrops(_ *app.Window, e app.ViewEvent, u *ui.UI) {
	if stopDrops != nil {
		stopDrops()
		stopDrops = nil
	}
	x, ok := e.(app.X11ViewEvent)
	if !ok || !x.Valid() {
		return
	}
	stop, err := xdnd.Watch(xdnd.DisplayName(x.Display), x.Window, func(paths []string) bool {
		u.Drop(paths, logDrop)
		return true
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harmony-app: no file drops: %v\n", err)
		return
	}
	stopDrops = stop
}
