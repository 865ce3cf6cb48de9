// token_js.go: the browser build has no token to add (the web page has its
// own loading path); this keeps the package compiling there.
package state

import "harmony/loader"

func withToken(loader.Source, string) {}
