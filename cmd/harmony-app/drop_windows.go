// drop_windows.go: files dropped onto the window from Explorer, which Gio
// does not deliver itself: the window is subclassed for WM_DROPFILES
// (internal/windrop).
package main

import (
	"fmt"
	"os"

	"gioui.org/app"

	"harmony/cmd/harmony-app/internal/ui"
	"harmony/cmd/harmony-app/internal/windrop"
)

var stopDrops func()

// watchDrops follows the window's native view: a valid Win32 view becomes
// a drop target, anything else undoes it.
func watchDrops(e app.ViewEvent, u *ui.UI) {
	if stopDrops != nil {
		stopDrops()
		stopDrops = nil
	}
	w, ok := e.(app.Win32ViewEvent)
	if !ok || !w.Valid() {
		return
	}
	stop, err := windrop.Attach(w.HWND, func(paths []string) {
		u.Drop(paths, logDrop)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harmony-app: no file drops: %v\n", err)
		return
	}
	stopDrops = stop
}
