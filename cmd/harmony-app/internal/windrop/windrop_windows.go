// windrop_windows.go: makes a Win32 window a target for files dragged from
// Explorer (WM_DROPFILES). Gio owns the window procedure, so the window is
// subclassed: drops are handled here and every other message goes on to
// Gio's procedure unchanged.
package windrop

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

const (
	wmDropFiles = 0x0233
	wmNCDestroy = 0x0082
	gwlpWndProc = ^uintptr(3) // GWLP_WNDPROC, -4
)

var (
	shell32         = windows.NewLazySystemDLL("shell32.dll")
	dragAcceptFiles = shell32.NewProc("DragAcceptFiles")
	dragQueryFileW  = shell32.NewProc("DragQueryFileW")
	dragFinish      = shell32.NewProc("DragFinish")

	user32          = windows.NewLazySystemDLL("user32.dll")
	callWindowProcW = user32.NewProc("CallWindowProcW")
	defWindowProcW  = user32.NewProc("DefWindowProcW")
	isWindow        = user32.NewProc("IsWindow")
	getWindowLong   = user32.NewProc(longProc("Get"))
	setWindowLong   = user32.NewProc(longProc("Set"))
)

// longProc names the pointer-sized window-long call: 32-bit user32 has no
// ...PtrW export.
func longProc(verb string) string {
	if runtime.GOARCH == "386" || runtime.GOARCH == "arm" {
		return verb + "WindowLongW"
	}
	return verb + "WindowLongPtrW"
}

// target is one subclassed window.
type target struct {
	orig   uintptr // Gio's window procedure
	onDrop func(paths []string)
}

var (
	// targets maps HWND to *target; a sync.Map, so that the procedure can
	// never wait on a lock held by a caller on another thread.
	targets sync.Map
	// proc is created once: Go allows only a limited number of callbacks.
	proc = syscall.NewCallback(wndProc)
)

// Attach makes hwnd accept dropped files; onDrop receives their paths on
// the window's thread and must not block. stop undoes both the
// subclassing and the acceptance while the window lives, and only forgets
// the window once it is gone. Call both on the window's own thread
// (Gio's Window.Run): accepting drops changes the window's style, which
// sends it messages, so from another thread they wait on the window's
// message loop.
func Attach(hwnd uintptr, onDrop func(paths []string)) (stop func(), err error) {
	if hwnd == 0 || onDrop == nil {
		return nil, errors.New("windrop: no window or no drop handler")
	}
	if err := dragAcceptFiles.Find(); err != nil {
		return nil, fmt.Errorf("windrop: %w", err)
	}
	if _, ok := targets.Load(hwnd); ok {
		return nil, fmt.Errorf("windrop: window %#x already a drop target", hwnd)
	}
	orig, _, e := getWindowLong.Call(hwnd, gwlpWndProc)
	if orig == 0 {
		return nil, fmt.Errorf("windrop: reading the window procedure: %v", e)
	}
	// Stored before the swap so the first message through proc finds it.
	targets.Store(hwnd, &target{orig: orig, onDrop: onDrop})
	// Success returns the previous procedure, which is not 0.
	prev, _, e := setWindowLong.Call(hwnd, gwlpWndProc, proc)
	if prev == 0 {
		targets.Delete(hwnd)
		return nil, fmt.Errorf("windrop: subclassing the window: %v", e)
	}
	dragAcceptFiles.Call(hwnd, 1)
	var once sync.Once
	return func() { once.Do(func() { detach(hwnd) }) }, nil
}

func detach(hwnd uintptr) {
	v, ok := targets.Load(hwnd)
	if !ok {
		return // already torn down by WM_NCDESTROY
	}
	t := v.(*target)
	if alive, _, _ := isWindow.Call(hwnd); alive != 0 {
		dragAcceptFiles.Call(hwnd, 0)
		// Put Gio's procedure back only if ours is still the one in place;
		// if another subclass sits above ours, ours stays in the chain and
		// must keep finding Gio's procedure, so the target is kept.
		cur, _, _ := getWindowLong.Call(hwnd, gwlpWndProc)
		if cur != proc {
			return
		}
		setWindowLong.Call(hwnd, gwlpWndProc, t.orig)
	}
	targets.Delete(hwnd)
}

func wndProc(hwnd, msg, wParam, lParam uintptr) uintptr {
	v, ok := targets.Load(hwnd)
	if !ok {
		r, _, _ := defWindowProcW.Call(hwnd, msg, wParam, lParam)
		return r
	}
	t := v.(*target)
	switch uint32(msg) {
	case wmDropFiles:
		hdrop := wParam
		paths := dropPaths(func(index uint32, buf []uint16) uint32 {
			if len(buf) == 0 {
				r, _, _ := dragQueryFileW.Call(hdrop, uintptr(index), 0, 0)
				return uint32(r)
			}
			r, _, _ := dragQueryFileW.Call(hdrop, uintptr(index),
				uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			return uint32(r)
		})
		dragFinish.Call(hdrop)
		if len(paths) > 0 {
			t.onDrop(paths)
		}
		return 0
	case wmNCDestroy:
		// The last message a window gets: hand it on, then forget the
		// window so a reused handle does not find a stale target.
		r, _, _ := callWindowProcW.Call(t.orig, hwnd, msg, wParam, lParam)
		targets.Delete(hwnd)
		return r
	}
	r, _, _ := callWindowProcW.Call(t.orig, hwnd, msg, wParam, lParam)
	return r
}
