//go:build js

// js.go: the small bridge between Go and the page: promises settled from
// goroutines (a JS callback must never block: the engine's GPU waits block
// on promises of their own), errors with stable codes, and byte arrays.
package main

import (
	"errors"
	"fmt"
	"syscall/js"
)

// Error codes the page can rely on (err.code in JS).
const (
	CodeNoWebGPU     = "no-webgpu"
	CodeNoF16        = "no-shader-f16" // a warning: the fp32-arithmetic fallback is taken
	CodeLimits       = "limits-too-small"
	CodeDeviceLost   = "device-lost"
	CodeOutOfMemory  = "out-of-memory"
	CodeQuota        = "quota-exceeded"
	CodeBadPhoto     = "bad-photo"
	CodeBadModel     = "bad-model"
	CodeBadArgument  = "bad-argument"
	CodeCancelled    = "cancelled"
	CodeNoModel      = "no-model"
	CodeInternal     = "internal"
	CodeNetwork      = "network"
	CodeNotSupported = "not-supported"
)

// codedError carries a stable code to JS.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func coded(code string, err error) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	return &codedError{code: code, err: err}
}

func codedf(code, f string, a ...any) error { return &codedError{code: code, err: fmt.Errorf(f, a...)} }

// jsError turns a Go error into a JS Error with .code.
func jsError(err error) js.Value {
	code := classify(err)
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", code)
	return e
}

// promise runs f on a new goroutine and returns a Promise settled with its
// result.
func promise(f func() (any, error)) js.Value {
	var handler js.Func
	handler = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer handler.Release()
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(jsError(codedf(CodeInternal, "internal error: %v", r)))
				}
			}()
			v, err := f()
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(handler)
}

// bytesToJS copies b into a new Uint8Array.
func bytesToJS(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// bytesFromJS copies a Uint8Array (or ArrayBuffer) into Go memory.
func bytesFromJS(v js.Value) []byte {
	if v.InstanceOf(js.Global().Get("ArrayBuffer")) {
		v = js.Global().Get("Uint8Array").New(v)
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b
}

// obj makes a plain JS object from a map.
func obj(m map[string]any) js.Value {
	o := js.Global().Get("Object").New()
	for k, v := range m {
		o.Set(k, v)
	}
	return o
}

func jsStr(o js.Value, k string) string {
	v := o.Get(k)
	if v.Type() == js.TypeString {
		return v.String()
	}
	if v.Type() == js.TypeNumber {
		return fmt.Sprint(v.Float())
	}
	return ""
}

func jsNum(o js.Value, k string, def float64) float64 {
	v := o.Get(k)
	if v.Type() == js.TypeNumber {
		return v.Float()
	}
	return def
}

func jsBool(o js.Value, k string, def bool) bool {
	v := o.Get(k)
	if v.Type() == js.TypeBoolean {
		return v.Bool()
	}
	return def
}
