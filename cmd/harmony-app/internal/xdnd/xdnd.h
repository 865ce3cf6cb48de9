// xdnd.h: the XDND client message, shared by the target and the test source.
#ifndef HARMONY_XDND_H
#define HARMONY_XDND_H
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
#endif
