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
// a drop target, anything else undoes it. Both run on the window's thread
// (w.Run): accepting drops changes the window's style, which sends it
// messages, and that thread is blocked delivering this very event.
func watchDrops(w *app.Window, e app.ViewEvent, u *ui.UI) {
	if stopDrops != nil {
		w.Run(stopDrops)
		stopDrops = nil
	}
	v, ok := e.(app.Win32ViewEvent)
	if !ok || !v.Valid() {
		return
	}
	var err error
	w.Run(func() {
		stopDrops, err = windrop.Attach(v.HWND, func(paths []string) {
			u.Drop(paths, logDrop)
		})
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harmony-app: no file drops: %v\n", err)
	}
}
