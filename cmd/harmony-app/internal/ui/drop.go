// drop.go: files dropped onto the window from the desktop. The platform
// hook hands the paths over from its own goroutine; the next frame opens
// the first one that decodes as a photo, as the Open button would.
package ui

import "sync"

type dropBox struct {
	mu     sync.Mutex
	paths  []string
	opened func(path string, err error)
}

// Drop queues files dropped onto the window (from any goroutine); opened,
// when not nil, hears on the window's goroutine which path became the
// photo, or the first path's error when none decoded.
func (u *UI) Drop(paths []string, opened func(path string, err error)) {
	u.drop.mu.Lock()
	u.drop.paths, u.drop.opened = paths, opened
	u.drop.mu.Unlock()
	u.invalidate()
}

// takeDrop opens a queued drop; update calls it each frame.
func (u *UI) takeDrop() {
	u.drop.mu.Lock()
	paths, opened := u.drop.paths, u.drop.opened
	u.drop.paths, u.drop.opened = nil, nil
	u.drop.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	var first error
	for _, p := range paths {
		err := u.App.OpenPhoto(p)
		if err == nil {
			u.photoFile, u.note = p, ""
			u.photoPath.SetText(p)
			if opened != nil {
				opened(p, nil)
			}
			return
		}
		if first == nil {
			first = err
		}
	}
	u.note, u.noteErr = first.Error(), true
	if opened != nil {
		opened("", first)
	}
}
