// Package gpu is the engine's one device layer: adapter and device creation,
// labelled storage buffers with a size-bucketed pool, compute pipelines built
// from the embedded WGSL in shaders/ and cached by a comparable key, batched
// dispatches, and one explicit read-back/sync point.
//
// It has two builds chosen by build tags: a native one on wgpu-native
// (device_native.go) and a browser one on navigator.gpu (device_js.go), both
// through github.com/cogentcore/webgpu. Nothing else in the project imports
// those bindings. The js side of the bindings has gaps (no required limits or
// features, no automatic layouts, copied mapped ranges, errors never
// returned, promises that block); this package absorbs them so that code
// above it behaves the same in both builds.
package gpu

import "time"

// Options select how the device is opened.
type Options struct {
	// DefaultLimits keeps the WebGPU specification's default limits (128 MiB
	// storage bindings, 256 MiB buffers, 16 KiB workgroup storage, 256
	// invocations) instead of asking for everything the adapter offers, to
	// prove the engine runs on small adapters.
	DefaultLimits bool
	// NoF16 refuses the shader-f16 path even when the adapter offers it.
	NoF16 bool
	// NoSubgroups refuses the subgroup kernels even when the adapter offers
	// them (to compare with, and to test, the fallback).
	NoSubgroups bool
	// Timeout bounds every wait on the GPU (map, queue idle). Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Label names the device in validation messages.
	Label string
	// Profile submits and waits for every dispatch on its own and keeps
	// per-kernel wall times (Device.Profile); HARMONY_GPU_PROFILE=1 does
	// the same. For finding where a slow adapter's time goes.
	Profile bool
}

// DefaultTimeout bounds a single wait on the GPU when Options.Timeout is zero.
// CPU adapters are slow: a full-size UNet call on lavapipe takes minutes.
const DefaultTimeout = 10 * time.Minute

// Kernel identifies one compiled compute pipeline. It is comparable and is
// the pipeline cache key: shader file, entry point and the canonical define
// string (see shaders.Defines) are compile-time facts; shapes never are.
type Kernel struct {
	Shader  string // file in shaders/, e.g. "matmul.wgsl"
	Entry   string // entry point, e.g. "main"
	Defines string // canonical "K=V,…" define list
}

func (k Kernel) String() string {
	if k.Defines == "" {
		return k.Shader + ":" + k.Entry
	}
	return k.Shader + ":" + k.Entry + "[" + k.Defines + "]"
}
