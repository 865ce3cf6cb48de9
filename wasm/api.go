//go:build js

// api.go implements the JS API over the engine.
package main

import (
	"context"
	"errors"
	"sync"
	"syscall/js"

	"harmony/engine/gpu"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
)

type api struct {
	mu     sync.Mutex
	dev    *gpu.Device
	be     *kernels.Backend
	cancel context.CancelFunc // of the call in flight
}

func newAPI() *api { return &api{} }

func (a *api) functions() map[string]func(js.Value, []js.Value) any {
	return map[string]func(js.Value, []js.Value) any{
		"init":       a.jsInit,
		"loadModel":  a.jsLoadModel,
		"checkPhoto": a.jsCheckPhoto,
		"generate":   a.jsGenerate,
		"cancel":     a.jsCancel,
		"clearCache": a.jsClearCache,
	}
}

// begin starts a cancellable call, cancelling any call in flight.
func (a *api) begin() (context.Context, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	return ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		cancel()
		a.cancel = nil
	}
}

func (a *api) jsCancel(js.Value, []js.Value) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		a.cancel()
	}
	return nil
}

func (a *api) jsInit(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		if a.dev == nil {
			dev, err := gpu.Open(context.Background(), gpu.Options{})
			if err != nil {
				return nil, err
			}
			a.dev, a.be = dev, kernels.New(dev)
		}
		i := a.dev.Info()
		feats := make([]any, len(i.Features))
		for k, f := range i.Features {
			feats[k] = f
		}
		var warnings []any
		if !i.ShaderF16 {
			warnings = append(warnings, "This GPU offers no usable shader-f16: fp16 weights are unpacked and computed in f32 (slower, same pictures).")
		}
		return obj(map[string]any{
			"adapter":   i.Adapter,
			"backend":   i.Backend,
			"fallback":  i.Fallback,
			"shaderF16": i.ShaderF16,
			"features":  js.ValueOf(feats),
			"warnings":  js.ValueOf(warnings),
			"limits": obj(map[string]any{
				"maxStorageBufferBindingSize": float64(i.Limits.MaxStorageBufferBindingSize),
				"maxBufferSize":               float64(i.Limits.MaxBufferSize),
			}),
		}), nil
	})
}

func (a *api) jsLoadModel(this js.Value, args []js.Value) any {
	return promise(func() (any, error) { return nil, codedf(CodeNotSupported, "harmony: model loading is not wired yet") })
}

func (a *api) jsCheckPhoto(this js.Value, args []js.Value) any {
	return promise(func() (any, error) { return nil, codedf(CodeNotSupported, "harmony: photo decoding is not wired yet") })
}

func (a *api) jsGenerate(this js.Value, args []js.Value) any {
	return promise(func() (any, error) { return nil, codedf(CodeNotSupported, "harmony: generation is not wired yet") })
}

func (a *api) jsClearCache(this js.Value, args []js.Value) any {
	return promise(func() (any, error) { return 0, nil })
}

// classify maps engine errors to the page's stable codes.
func classify(err error) string {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var lost *gpu.DeviceLostError
	var lim *gpu.LimitError
	var miss *tensor.MissingError
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCancelled
	case errors.Is(err, gpu.ErrNoAdapter):
		return CodeNoWebGPU
	case errors.As(err, &lost):
		return CodeDeviceLost
	case errors.As(err, &lim):
		return CodeLimits
	case errors.As(err, &miss):
		return CodeBadModel
	}
	return CodeInternal
}
