//go:build linux && !android && !nox11 && cgo

// source_x11.go: a minimal XDND drag source, as file managers behave, for
// tests: it follows XdndProxy as the protocol says (the proxy must name
// itself), checks XdndAware, sends Enter, Position and Drop, serves the
// text/uri-list selection and waits for XdndFinished. No pointer grab: the
// drag is scripted onto one window.
package xdnd

/*
#cgo linux pkg-config: x11
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <X11/Xlib.h>
#include <X11/Xatom.h>

#include "xdnd.h"

static Window xdnd_prop_window(Display *d, Window w, Atom prop, Atom want) {
	Atom type; int format; unsigned long n, after; unsigned char *p = NULL; Window r = None;
	if (XGetWindowProperty(d, w, prop, 0, 1, False, want, &type, &format, &n, &after, &p) == Success && p) {
		if (format == 32 && n == 1) r = *(unsigned long *)p;
		XFree(p);
	}
	return r;
}

static long xdnd_now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// xdnd_drag returns 0 when the target accepted the drop, 1 when the
// display does not open, 2 when the target is not XdndAware, 3 when it
// refused in XdndStatus, 4 when it refused in XdndFinished, 5 on timeout.
static int xdnd_drag(const char *name, Window target, int x, int y, const char *uris, char **offer, int noffer, int timeout_ms) {
	Display *d = XOpenDisplay(name);
	if (!d) return 1;
	xdnd_trap(d, 1);
	Atom aware = XInternAtom(d, "XdndAware", False), proxyAtom = XInternAtom(d, "XdndProxy", False),
		enter = XInternAtom(d, "XdndEnter", False), position = XInternAtom(d, "XdndPosition", False),
		status = XInternAtom(d, "XdndStatus", False), drop = XInternAtom(d, "XdndDrop", False),
		finished = XInternAtom(d, "XdndFinished", False), selection = XInternAtom(d, "XdndSelection", False),
		uriList = XInternAtom(d, "text/uri-list", False), copy = XInternAtom(d, "XdndActionCopy", False);
	Window src = XCreateWindow(d, DefaultRootWindow(d), -10, -10, 1, 1, 0, CopyFromParent, InputOnly, CopyFromParent, 0, NULL);
	XSetSelectionOwner(d, selection, src, CurrentTime);
	Window dest = target, proxy = xdnd_prop_window(d, target, proxyAtom, XA_WINDOW);
	if (proxy != None && xdnd_prop_window(d, proxy, proxyAtom, XA_WINDOW) == proxy) dest = proxy;
	long version = xdnd_prop_window(d, dest, aware, XA_ATOM);
	int rc = 5;
	if (version == 0) { rc = 2; goto out; }
	if (version > 5) version = 5;
	// The offered types (text/uri-list alone by default); more than three
	// go in the XdndTypeList property, as file managers' lists do.
	Atom types[8];
	int ntypes = 0;
	for (int i = 0; i < noffer && ntypes < 8; i++) types[ntypes++] = XInternAtom(d, offer[i], False);
	if (ntypes == 0) types[ntypes++] = uriList;
	if (ntypes > 3) {
		XChangeProperty(d, src, XInternAtom(d, "XdndTypeList", False), XA_ATOM, 32, PropModeReplace, (unsigned char *)types, ntypes);
		xdnd_send(d, dest, target, enter, src, version << 24 | 1, types[0], types[1], types[2]);
	} else {
		xdnd_send(d, dest, target, enter, src, version << 24, types[0], ntypes > 1 ? types[1] : None, ntypes > 2 ? types[2] : None);
	}
	xdnd_send(d, dest, target, position, src, 0, (x << 16) | y, CurrentTime, copy);
	int dropped = 0;
	for (long end = xdnd_now_ms() + timeout_ms; xdnd_now_ms() < end;) {
		if (!XPending(d)) {
			struct pollfd p = {ConnectionNumber(d), POLLIN, 0};
			poll(&p, 1, 50);
			continue;
		}
		XEvent e;
		XNextEvent(d, &e);
		if (e.type == ClientMessage && e.xclient.message_type == status && !dropped) {
			if (!(e.xclient.data.l[1] & 1)) { rc = 3; goto out; }
			xdnd_send(d, dest, target, drop, src, 0, CurrentTime, 0, 0);
			dropped = 1;
		} else if (e.type == ClientMessage && e.xclient.message_type == finished) {
			rc = e.xclient.data.l[1] & 1 ? 0 : 4;
			goto out;
		} else if (e.type == SelectionRequest) {
			XSelectionRequestEvent *r = &e.xselectionrequest;
			XEvent n = {0};
			n.xselection.type = SelectionNotify;
			n.xselection.requestor = r->requestor;
			n.xselection.selection = r->selection;
			n.xselection.target = r->target;
			n.xselection.time = r->time;
			n.xselection.property = None;
			if (r->target == uriList) {
				Atom prop = r->property != None ? r->property : r->target;
				XChangeProperty(d, r->requestor, prop, uriList, 8, PropModeReplace, (const unsigned char *)uris, strlen(uris));
				n.xselection.property = prop;
			}
			XSendEvent(d, r->requestor, False, NoEventMask, &n);
			XFlush(d);
		}
	}
out:
	XDestroyWindow(d, src);
	XSync(d, False);
	xdnd_trap(d, 0);
	XCloseDisplay(d);
	return rc;
}

// xdnd_foreign_window maps a plain top-level window on a connection of its
// own that never reads its events, as Gio's would for XDND messages.
static Display *xdnd_foreign_window(const char *name, Window *w) {
	Display *d = XOpenDisplay(name);
	if (!d) return NULL;
	*w = XCreateSimpleWindow(d, DefaultRootWindow(d), 0, 0, 200, 200, 0, 0, 0);
	XMapWindow(d, *w);
	XSync(d, False);
	return d;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Drag drops uris (a text/uri-list) onto window at root position x, y on
// display, the way an XDND source does, and waits for the target's answer.
// The source offers the types in offer (at most 8; nil: text/uri-list).
func Drag(display string, window uintptr, x, y int, uris string, offer []string, timeout time.Duration) error {
	name, list := C.CString(display), C.CString(uris)
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(list))
	// The array in C memory: cgo forbids Go pointers to Go pointers.
	arr := (**C.char)(C.malloc(C.size_t(len(offer)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	cs := unsafe.Slice(arr, len(offer)+1)
	for i, o := range offer {
		cs[i] = C.CString(o)
		defer C.free(unsafe.Pointer(cs[i]))
	}
	switch rc := C.xdnd_drag(name, C.Window(window), C.int(x), C.int(y), list, arr, C.int(len(offer)), C.int(timeout.Milliseconds())); rc {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("xdnd: cannot open display %q", display)
	case 2:
		return fmt.Errorf("xdnd: window %#x is not XdndAware", window)
	case 3:
		return fmt.Errorf("xdnd: window %#x refused the drag (XdndStatus)", window)
	case 4:
		return fmt.Errorf("xdnd: window %#x refused the drop (XdndFinished)", window)
	default:
		return fmt.Errorf("xdnd: no XdndFinished from window %#x within %v", window, timeout)
	}
}

// ForeignWindow maps a top-level window on a connection of its own that
// never reads its events, standing in for a toolkit's window; close closes
// that connection.
func ForeignWindow(display string) (window uintptr, close func(), err error) {
	name := C.CString(display)
	defer C.free(unsafe.Pointer(name))
	var w C.Window
	d := C.xdnd_foreign_window(name, &w)
	if d == nil {
		return 0, nil, fmt.Errorf("xdnd: cannot open display %q", display)
	}
	return uintptr(w), func() { C.XCloseDisplay(d) }, nil
}
