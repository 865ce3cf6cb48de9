// peak.go: the adapter's two ceilings, for the benchmarks to set a kernel's
// figures beside. Peak runs selftest.wgsl's register-only fma kernel (eight
// independent vec4 chains per thread, no memory traffic but one store): the
// most this adapter computes with no loads at all. Loads runs its storage
// read kernel (256 vec4 loads per thread from the thread's own row): what a
// load from a per-thread address costs, which on CPU adapters that emulate
// storage loads lane by lane is what bounds a GEMM.
package kernels

import (
	"fmt"
	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// PeakFLOP is the floating-point operations of one Peak thread
// (64 rounds × 4 steps × 8 chains × vec4 fma).
const PeakFLOP = 64 * 4 * 8 * 8

var kPeak = gpu.Kernel{Shader: "selftest.wgsl", Entry: "peak", Defines: "PEAK=1,WG=64"}

// peakParams are selftest.wgsl's Params.
type peakParams struct {
	N     uint32  // threads that store their result
	Scale float32 // the chains' multiplier, below 1
	Off   uint32  // element offset of the output in its binding
	_     uint32
}

// Peak records threads·PeakFLOP of fma work and returns its [threads, 4]
// output (each row the sum of a thread's chains).
func (b *Backend) Peak(threads int) *tensor.Tensor {
	out := b.out("peak", threads, 4)
	if b.Err() != nil || threads == 0 {
		return out
	}
	oa := b.arg(out)
	b.run(kPeak, ceilDiv(threads, 64), peakParams{N: uint32(threads), Scale: 0.999, Off: oa.Off}, oa)
	return out
}

// LoadBytes is the bytes one Loads thread reads (256 vec4 of f32).
const LoadBytes = 256 * 16

// loadParams are selftest.wgsl's LoadParams.
type loadParams struct {
	Rows    uint32 // rows of 256 vec4 in the source
	Threads uint32 // threads that load
	Off     uint32 // element offset of the output in its binding
	SrcOff  uint32 // vec4 offset of the source in its binding
}

var kLoads = gpu.Kernel{Shader: "selftest.wgsl", Entry: "loads", Defines: "LOADS=1,WG=64"}

// Loads records threads·LoadBytes of storage reads from src, whose rows of
// 256 vec4 the threads share out (thread i reads row i mod rows), and
// returns the [threads] sums.
func (b *Backend) Loads(src *tensor.Tensor, threads int) *tensor.Tensor {
	out := b.out("loads", threads)
	rows := src.Numel() / (LoadBytes / 4)
	if rows == 0 || src.DType != tensor.F32 {
		b.SetErr(&tensor.ShapeError{Op: "loads", Msg: fmt.Sprintf("source %v: want F32 rows of %d values", src, LoadBytes/4)})
	}
	if b.Err() != nil || threads == 0 {
		return out
	}
	sa, oa := b.arg(src), b.arg(out)
	if sa.Off%4 != 0 {
		b.SetErr(&tensor.ShapeError{Op: "loads", Msg: "source view not vec4-aligned"})
		return out
	}
	b.run(kLoads, ceilDiv(threads, 64), loadParams{Rows: uint32(rows), Threads: uint32(threads), Off: oa.Off, SrcOff: sa.Off / 4}, sa, oa)
	return out
}
