//go:build js

// Package jsx is the glue every js-build package shares: waiting for a
// promise from Go and turning JS exceptions into Go errors.
//
// A promise settles only when the JS event loop runs, so Await must never
// be called on the goroutine that is running a JS callback (inside a
// js.FuncOf): that goroutine has to return first. The engine's entry points
// (wasm/) start a goroutine per call for this reason.
package jsx

import (
	"context"
	"errors"
	"syscall/js"
	"time"
)

// Error is a rejected promise's reason or a thrown exception.
type Error struct {
	Name    string // "QuotaExceededError", "TypeError", "AbortError", "OperationError", …
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// ErrTimeout is returned when a promise does not settle in time.
var ErrTimeout = errors.New("jsx: timed out waiting for a promise")

// ToError converts a JS value (an Error, a DOMException, anything) to an error.
func ToError(v js.Value) error {
	if v.Type() == js.TypeObject {
		n, m := v.Get("name"), v.Get("message")
		if n.Type() == js.TypeString {
			e := &Error{Name: n.String()}
			if m.Type() == js.TypeString {
				e.Message = m.String()
			}
			return e
		}
	}
	return &Error{Name: "Error", Message: js.Global().Get("String").Invoke(v).String()}
}

// Await blocks until promise settles, ctx ends or timeout passes (0: no
// timeout). A value that is not a thenable is returned as is.
func Await(ctx context.Context, promise js.Value, timeout time.Duration) (js.Value, error) {
	if promise.Type() != js.TypeObject || promise.Get("then").Type() != js.TypeFunction {
		return promise, nil
	}
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
		ch <- result{err: ToError(v)}
		return nil
	})
	release := func() { then.Release(); catch.Release() }
	promise.Call("then", then, catch)
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case r := <-ch:
		release()
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks may still fire: release them only then.
		go func() { <-ch; release() }()
		return js.Undefined(), ctx.Err()
	case <-timer:
		go func() { <-ch; release() }()
		return js.Undefined(), ErrTimeout
	}
}
