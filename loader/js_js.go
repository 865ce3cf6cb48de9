//go:build js

// js_js.go holds the glue shared by the browser source and cache: waiting
// for promises and turning JS exceptions into Go errors.
package loader

import (
	"context"
	"syscall/js"
)

// jsError is a rejected promise's reason (a DOMException or an Error).
type jsError struct {
	Name    string // "QuotaExceededError", "TypeError", "AbortError", …
	Message string
}

func (e *jsError) Error() string { return e.Name + ": " + e.Message }

func toJSError(v js.Value) error {
	if v.Type() == js.TypeObject {
		n, m := v.Get("name"), v.Get("message")
		if n.Type() == js.TypeString {
			e := &jsError{Name: n.String()}
			if m.Type() == js.TypeString {
				e.Message = m.String()
			}
			return e
		}
	}
	return &jsError{Name: "Error", Message: js.Global().Get("String").Invoke(v).String()}
}

// await blocks until the promise p settles. It must not be called on the
// goroutine that runs a JS callback (inside a js.FuncOf): that goroutine
// has to return for the promise to settle. The engine calls the loader from
// its own goroutine.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{err: toJSError(v)}
		return nil
	})
	release := func() { then.Release(); catch.Release() }
	p.Call("then", then, catch)
	select {
	case r := <-ch:
		release()
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks may still fire: release them only then.
		go func() { <-ch; release() }()
		return js.Undefined(), ctx.Err()
	}
}
