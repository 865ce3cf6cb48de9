// Package macdrop makes a Gio AppKit view a target for files dragged from
// the Finder, which Gio does not deliver itself. It has code only for
// macOS with cgo (macdrop_darwin.go, macdrop_darwin.m); elsewhere it is
// empty.
package macdrop
