//go:build js

// js_js.go adapts the shared promise glue (engine/jsx) to the loader.
package loader

import (
	"context"
	"syscall/js"

	"harmony/engine/jsx"
)

// jsError is a rejected promise's reason (a DOMException or an Error).
type jsError = jsx.Error

func toJSError(v js.Value) error { return jsx.ToError(v) }

// await blocks until the promise p settles or ctx ends (see jsx.Await).
func await(ctx context.Context, p js.Value) (js.Value, error) { return jsx.Await(ctx, p, 0) }
