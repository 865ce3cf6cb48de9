//go:build linux && !android && !nox11 && cgo

// target_x11.go: the drop target, on its own Xlib connection: an InputOnly
// proxy window that carries XdndAware (version 5) and is named in the
// target window's XdndProxy (XdndAware only on the proxy: a source that
// ignored the proxy would send to Gio's connection and wait forever), the
// XdndEnter/Position/Leave/Drop handling, the request of the selection as
// text/uri-list, and XdndStatus and XdndFinished back to the source.
package xdnd

/*
#cgo linux pkg-config: x11
#include <stdlib.h>
#include <poll.h>
#include <X11/Xlib.h>
#include <X11/Xatom.h>
#include "xdnd.h"

typedef struct {
	Display *d;
	Window target, proxy, source;
	long version;
	int accept;
	Atom aware, proxyAtom, enter, position, status, leave, drop, finished,
		selection, typeList, uriList, copy, prop;
} xdnd_target;

static void xdnd_atoms(Display *d, Atom *a[], const char *names[], int n) {
	for (int i = 0; i < n; i++) *a[i] = XInternAtom(d, names[i], False);
}

static xdnd_target *xdnd_target_open(const char *name, unsigned long target) {
	Display *d = XOpenDisplay(name);
	if (!d) return NULL;
	xdnd_target *x = calloc(1, sizeof *x);
	x->d = d;
	x->target = target;
	xdnd_trap(d, 1);
	Atom *a[] = {&x->aware, &x->proxyAtom, &x->enter, &x->position, &x->status, &x->leave, &x->drop,
		&x->finished, &x->selection, &x->typeList, &x->uriList, &x->copy, &x->prop};
	const char *n[] = {"XdndAware", "XdndProxy", "XdndEnter", "XdndPosition", "XdndStatus", "XdndLeave", "XdndDrop",
		"XdndFinished", "XdndSelection", "XdndTypeList", "text/uri-list", "XdndActionCopy", "HARMONY_XDND"};
	xdnd_atoms(d, a, n, 13);
	x->proxy = XCreateWindow(d, DefaultRootWindow(d), -10, -10, 1, 1, 0, CopyFromParent, InputOnly, CopyFromParent, 0, NULL);
	Atom version = 5;
	Window proxy = x->proxy;
	XChangeProperty(d, x->proxy, x->aware, XA_ATOM, 32, PropModeReplace, (unsigned char *)&version, 1);
	XChangeProperty(d, x->proxy, x->proxyAtom, XA_WINDOW, 32, PropModeReplace, (unsigned char *)&proxy, 1);
	XChangeProperty(d, target, x->proxyAtom, XA_WINDOW, 32, PropModeReplace, (unsigned char *)&proxy, 1);
	XSync(d, False);
	return x;
}

static void xdnd_target_close(xdnd_target *x) {
	// The target may be gone already: it is left alone. Its XdndProxy then
	// names a window that no longer exists, which sources ignore.
	XDestroyWindow(x->d, x->proxy);
	XSync(x->d, False);
	xdnd_trap(x->d, 0);
	XCloseDisplay(x->d);
	free(x);
}

static void xdnd_finish(xdnd_target *x, int ok) {
	if (x->source)
		xdnd_send(x->d, x->source, x->source, x->finished, x->target, ok ? 1 : 0, ok ? x->copy : None, 0, 0);
	x->source = 0;
}

static int xdnd_offers_uris(xdnd_target *x, XClientMessageEvent *c) {
	if (!(c->data.l[1] & 1)) {
		for (int i = 2; i < 5; i++)
			if ((Atom)c->data.l[i] == x->uriList) return 1;
		return 0;
	}
	Atom type; int format; unsigned long n, after; unsigned char *p = NULL; int found = 0;
	if (XGetWindowProperty(x->d, x->source, x->typeList, 0, 1024, False, XA_ATOM, &type, &format, &n, &after, &p) == Success && p) {
		if (format == 32)
			for (unsigned long i = 0; i < n; i++)
				if (((Atom *)p)[i] == x->uriList) found = 1;
		XFree(p);
	}
	return found;
}

// xdnd_step handles the events that arrive within ms milliseconds. It
// returns 1 with the dropped text/uri-list in *data (XFree it, then call
// xdnd_finish), 0 when nothing was dropped, -1 when the connection broke.
static int xdnd_step(xdnd_target *x, int ms, unsigned char **data, unsigned long *len) {
	if (!XPending(x->d)) {
		struct pollfd p = {ConnectionNumber(x->d), POLLIN, 0};
		int r = poll(&p, 1, ms);
		if (r <= 0) return 0;
		if (p.revents & (POLLERR | POLLHUP)) return -1;
	}
	while (XPending(x->d)) {
		XEvent e;
		XNextEvent(x->d, &e);
		if (e.type == ClientMessage) {
			XClientMessageEvent *c = &e.xclient;
			if (c->message_type == x->enter) {
				x->source = c->data.l[0];
				x->version = (unsigned long)c->data.l[1] >> 24;
				x->accept = xdnd_offers_uris(x, c);
			} else if (c->message_type == x->position && (Window)c->data.l[0] == x->source) {
				xdnd_send(x->d, x->source, x->source, x->status, x->target, x->accept ? 1 : 0, 0, 0, x->accept ? x->copy : None);
			} else if (c->message_type == x->leave) {
				x->source = 0;
			} else if (c->message_type == x->drop && (Window)c->data.l[0] == x->source) {
				if (!x->accept) {
					xdnd_finish(x, 0);
					continue;
				}
				XConvertSelection(x->d, x->selection, x->uriList, x->prop, x->proxy,
					x->version >= 1 ? (Time)c->data.l[2] : CurrentTime);
				XFlush(x->d);
			}
		} else if (e.type == SelectionNotify && e.xselection.requestor == x->proxy && e.xselection.selection == x->selection) {
			if (e.xselection.property == None) {
				xdnd_finish(x, 0);
				continue;
			}
			Atom type; int format; unsigned long after; unsigned char *p = NULL;
			if (XGetWindowProperty(x->d, x->proxy, x->prop, 0, 1 << 20, True, AnyPropertyType, &type, &format, len, &after, &p) != Success || !p || format != 8) {
				if (p) XFree(p);
				xdnd_finish(x, 0);
				continue;
			}
			*data = p;
			return 1;
		}
	}
	return 0;
}

static const char *xdnd_display_name(void *d) { return DisplayString((Display *)d); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// DisplayName is the name of an open Xlib Display (Gio's X11ViewEvent
// Display), for opening a second connection to the same server.
func DisplayName(display unsafe.Pointer) string {
	return C.GoString(C.xdnd_display_name(display))
}

// Watch makes window, a top-level window on the X server named display
// (created by any connection), accept file drops: drop receives the local
// paths of each drop on a goroutine of its own and says whether it took
// them (the source hears it in XdndFinished). stop destroys the proxy window
// and closes the connection.
func Watch(display string, window uintptr, drop func(paths []string) bool) (stop func(), err error) {
	name := C.CString(display)
	defer C.free(unsafe.Pointer(name))
	x := C.xdnd_target_open(name, C.ulong(window))
	if x == nil {
		return nil, fmt.Errorf("xdnd: cannot open display %q", display)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				C.xdnd_target_close(x)
				return
			default:
			}
			var data *C.uchar
			var n C.ulong
			switch C.xdnd_step(x, 100, &data, &n) {
			case -1:
				return
			case 1:
				list := C.GoBytes(unsafe.Pointer(data), C.int(n))
				C.XFree(unsafe.Pointer(data))
				ok := false
				if paths := LocalPaths(list); len(paths) > 0 {
					ok = drop(paths)
				}
				C.xdnd_finish(x, boolInt(ok))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
