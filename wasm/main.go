//go:build js

// Command wasm is the engine built for the browser (GOOS=js GOARCH=wasm).
// It exposes a small JS API as globalThis.harmony and hands it to the page
// through globalThis.__harmonyReady:
//
//	init()                                → {adapter, backend, fallback, shaderF16, limits, features, warnings}
//	loadModel({source, url, files, precision}, onProgress) → {name, bytes, precision, warnings}
//	checkPhoto(bytes, name)                → {width, height}
//	generate(bytes, name, options, onProgress) → {harmony, baseline, visual, mask (PNG bytes), warnings, timings}
//	cancel()                               cancels the load or generation in flight
//	clearCache()                           → bytes removed from the model cache
//
// generate's options are the pipeline's options (pipeline.OptionList) by
// their camelCase names: {steps: 25, maskThreshold: 0.3, swap: "off", …};
// a refused value rejects with code bad-argument and the message the CLI
// gives for the same flag.
//
// Every call returns a Promise; errors are Error objects with a stable
// .code (see js.go). Work runs on goroutines, never on the goroutine that
// serves a JS callback, because GPU waits block on promises.
package main

import (
	"syscall/js"
)

// extensions are functions other files add in init (bench.go: benchUNet).
var extensions = map[string]func(js.Value, []js.Value) any{}

func main() {
	api := newAPI()
	h := js.Global().Get("Object").New()
	for name, f := range api.functions() {
		h.Set(name, js.FuncOf(f))
	}
	for name, f := range extensions {
		h.Set(name, js.FuncOf(f))
	}
	js.Global().Set("harmony", h)
	if ready := js.Global().Get("__harmonyReady"); ready.Type() == js.TypeFunction {
		ready.Invoke(h)
	}
	select {} // serve calls until the page goes away
}
