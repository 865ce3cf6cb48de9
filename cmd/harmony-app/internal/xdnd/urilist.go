// Package xdnd makes an X11 window that another connection created (Gio's)
// a file-drop target through the XDND protocol's proxy window, and parses
// the text/uri-list a drop carries. Gio v0.10.3 has no OS-level drop on any
// platform: its X11 loop ignores XDND client messages, and XSendEvent with
// an empty event mask (what XDND sources use) reaches only the connection
// that created the destination window. So this package creates its own
// window on a second connection and names it in the target's XdndProxy
// property: sources then send every XDND message, and the selection's
// SelectionNotify, to a window this connection owns.
package xdnd

import (
	"net/url"
	"strings"
)

// LocalPaths returns the local file paths of a text/uri-list (RFC 2483):
// file: URIs with no host or localhost, in order; comments, blank lines and
// other schemes are left out.
func LocalPaths(list []byte) []string {
	var paths []string
	for _, line := range strings.Split(string(list), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			continue
		}
		paths = append(paths, u.Path)
	}
	return paths
}
