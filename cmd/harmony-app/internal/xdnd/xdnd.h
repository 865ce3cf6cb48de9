// xdnd.h: the XDND client message, shared by the target and the test source.
#ifndef HARMONY_XDND_H
#define HARMONY_XDND_H
#include <pthread.h>
#include <X11/Xlib.h>

static inline void xdnd_send(Display *d, Window to, Window window, Atom type, long l0, long l1, long l2, long l3, long l4) {
	XEvent e = {0};
	e.xclient.type = ClientMessage;
	e.xclient.display = d;
	e.xclient.window = window;
	e.xclient.message_type = type;
	e.xclient.format = 32;
	e.xclient.data.l[0] = l0; e.xclient.data.l[1] = l1; e.xclient.data.l[2] = l2;
	e.xclient.data.l[3] = l3; e.xclient.data.l[4] = l4;
	// An empty mask: the event goes to the client that created "to".
	XSendEvent(d, to, False, NoEventMask, &e);
	XFlush(d);
}

// Xlib's default error handler ends the process. The drag partner can vanish
// at any moment (a BadWindow on our next request), so errors on this
// package's connections are ignored (each file that includes this keeps its
// own list, and the handlers chain) and all others go to the handler that
// was there before, Gio's process-wide default.
static XErrorHandler xdnd_prev_handler;
static Display *xdnd_ours[16];
static pthread_mutex_t xdnd_mu = PTHREAD_MUTEX_INITIALIZER;

static int xdnd_on_error(Display *d, XErrorEvent *e) {
	for (int i = 0; i < 16; i++)
		if (xdnd_ours[i] == d) return 0;
	return xdnd_prev_handler ? xdnd_prev_handler(d, e) : 0;
}

static inline void xdnd_trap(Display *d, int on) {
	pthread_mutex_lock(&xdnd_mu);
	if (!xdnd_prev_handler) xdnd_prev_handler = XSetErrorHandler(xdnd_on_error);
	for (int i = 0; i < 16; i++) {
		if (on && !xdnd_ours[i]) { xdnd_ours[i] = d; break; }
		if (!on && xdnd_ours[i] == d) { xdnd_ours[i] = NULL; break; }
	}
	pthread_mutex_unlock(&xdnd_mu);
}
#endif
