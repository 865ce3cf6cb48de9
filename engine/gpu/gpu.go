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

import (
	"errors"
	"fmt"
	"time"
)

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

// Limits are the device limits the engine cares about.
type Limits struct {
	MaxStorageBufferBindingSize       uint64 // bytes one storage binding may span
	MaxBufferSize                     uint64 // bytes one buffer may hold
	MaxUniformBufferBindingSize       uint64 // bytes one uniform binding may span
	MaxComputeWorkgroupStorageSize    uint32 // bytes of var<workgroup> per pipeline
	MaxComputeInvocationsPerWorkgroup uint32 // threads per workgroup
	MaxComputeWorkgroupSizeX          uint32 // threads along x
	MaxComputeWorkgroupSizeY          uint32 // threads along y
	MaxComputeWorkgroupSizeZ          uint32 // threads along z
	MaxComputeWorkgroupsPerDimension  uint32 // workgroups per grid dimension
	MaxStorageBuffersPerShaderStage   uint32 // storage bindings per kernel
	MinStorageBufferOffsetAlignment   uint32 // bytes; binding offsets are multiples of this
	MinUniformBufferOffsetAlignment   uint32 // bytes; uniform (dynamic) offsets likewise
}

// SpecDefaultLimits are the WebGPU specification's default limits: what every
// conforming adapter grants.
func SpecDefaultLimits() Limits {
	return Limits{
		MaxStorageBufferBindingSize:       128 << 20,
		MaxBufferSize:                     256 << 20,
		MaxUniformBufferBindingSize:       64 << 10,
		MaxComputeWorkgroupStorageSize:    16 << 10,
		MaxComputeInvocationsPerWorkgroup: 256,
		MaxComputeWorkgroupSizeX:          256,
		MaxComputeWorkgroupSizeY:          256,
		MaxComputeWorkgroupSizeZ:          64,
		MaxComputeWorkgroupsPerDimension:  65535,
		MaxStorageBuffersPerShaderStage:   8,
		MinStorageBufferOffsetAlignment:   256,
		MinUniformBufferOffsetAlignment:   256,
	}
}

// Info describes the opened adapter and device.
type Info struct {
	Backend       string   // "vulkan", "metal", "browser", …
	Adapter       string   // adapter / driver description
	Vendor        string   // vendor name where the adapter reports one
	Architecture  string   // architecture where the adapter reports one
	Fallback      bool     // a software (CPU) adapter
	AdapterLimits Limits   // what the adapter offers
	Limits        Limits   // what the device was granted
	Features      []string // adapter features, WebGPU spelling
	ShaderF16     bool     // f16 arithmetic in WGSL works on this device (feature granted and probe compiled)
	F16Note       string   // why ShaderF16 is false when the adapter advertises the feature
	Subgroups     bool     // the adapter offers subgroups
	SubgroupSize  uint32   // lanes per subgroup the kernels may assume (SubgroupProbe passed); 0: subgroup kernels off
	SubgroupNote  string   // why SubgroupSize is 0 when the adapter offers subgroups
	DefaultMode   bool     // opened with Options.DefaultLimits
}

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

// Binding is one storage-buffer binding of a dispatch: a byte range of a
// buffer. Offset must be a multiple of MinStorageBufferOffsetAlignment
// (kernels take finer element offsets in their Params); Size 0 binds to the
// end of the buffer.
type Binding struct {
	Buf    *Buffer
	Offset uint64
	Size   uint64
}

// Grid is a dispatch size in workgroups along x, y, z. Dispatch folds an x
// beyond MaxComputeWorkgroupsPerDimension into y (and z); kernels rebuild the
// linear workgroup index with wg_linear from common.wgsl and must ignore
// indices past their work.
type Grid [3]uint32

// Grid1 is a one-dimensional grid of n workgroups.
func Grid1(n int) Grid { return Grid{uint32(n), 1, 1} }

// Errors a caller may need to tell apart.
var (
	// ErrNoAdapter: no WebGPU adapter (no driver, no navigator.gpu).
	ErrNoAdapter = errors.New("gpu: no adapter")
	// ErrTimeout: a wait on the GPU outlived Options.Timeout.
	ErrTimeout = errors.New("gpu: timed out waiting for the GPU")
	// ErrClosed: the device was closed.
	ErrClosed = errors.New("gpu: device closed")
)

// DeviceLostError reports that the device is gone (driver reset, tab
// backgrounded, out of memory); every later call fails with it.
type DeviceLostError struct {
	Reason  string
	Message string
}

func (e *DeviceLostError) Error() string {
	return fmt.Sprintf("gpu: device lost (%s): %s", e.Reason, e.Message)
}

// ValidationError is a WebGPU validation or out-of-memory error, tied to the
// pipeline or operation that raised it.
type ValidationError struct {
	Op      string // what was being done: "pipeline matmul.wgsl:main[W=f16]", "dispatch …", "buffer …"
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("gpu: %s: %s", e.Op, e.Message)
}

// LimitError reports a request beyond what the device was granted.
type LimitError struct {
	What string // which limit, e.g. "buffer \"unet.conv_in.weight\" size"
	Need uint64
	Have uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("gpu: %s needs %d, the device allows %d", e.What, e.Need, e.Have)
}
