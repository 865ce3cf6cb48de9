// kernels.go: throughput of the GPU kernels at the full-size UNet's shapes
// (512×512 images: 64×64 latents, 320 channels, 8 heads of 40), the shapes
// of engine/kernels' benchmarks: GFLOP/s for Linear, Conv2D (2·M·N·K) and
// attention (4·Nq·Nk·d·heads), GB/s of the bytes GroupNorm must move, and
// first the adapter's own ceiling (register-only fma, kernels.Peak).
package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"harmony/engine/kernels"
	"harmony/engine/rng"
	"harmony/engine/tensor"
)

// kernelCase is one op at one shape.
type kernelCase struct {
	op, shape, weights string
	flop, bytes        float64 // per call (one of them)
	// setup makes the inputs and returns the call and a release.
	setup func(b *kernels.Backend) (call func() *tensor.Tensor, free func())
}

func putF32(b []byte, f float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(f)) }

// randTensor is an F32 tensor of N(0, s²) values, or an F16 weight.
func randTensor(b *kernels.Backend, seed uint64, dt tensor.DType, s float32, shape ...int) *tensor.Tensor {
	v := rng.Normal(seed, tensor.Numel(shape))
	for i := range v {
		v[i] *= s
	}
	if dt == tensor.F32 {
		return b.FromF32("bench", v, shape...)
	}
	t := b.NewWeight("bench", dt, shape...)
	b.Upload(t, 0, encode(make([]byte, 2*len(v)), v, dt))
	return t
}

func kernelCases(small bool) []kernelCase {
	// SD shapes, or test ones.
	m, k, n := 4096, 320, 1280          // Linear: tokens × in → out
	h, w, c, o := 64, 64, 320, 320      // 3×3 conv
	nq, heads, d, nk := 4096, 8, 40, 77 // attention
	gb, gh, gw, gc := 2, 64, 64, 320    // group norm
	if small {
		m, k, n = 64, 32, 48
		h, w, c, o = 8, 8, 32, 32
		nq, heads, d, nk = 64, 2, 8, 7
		gb, gh, gw, gc = 1, 8, 8, 64
	}
	threads := 64 * 1024
	if small {
		threads = 256
	}
	rows := 1024
	if small {
		rows = 4
	}
	// The adapter's ceilings first: the rows below are read against them.
	cs := []kernelCase{{
		op: "fma peak (no loads)", shape: fmt.Sprintf("%d threads × %d FLOP", threads, kernels.PeakFLOP), flop: float64(threads * kernels.PeakFLOP),
		setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
			return func() *tensor.Tensor { return b.Peak(threads) }, func() {}
		},
	}, {
		op: "storage loads", shape: fmt.Sprintf("%d threads × 256 vec4, own rows", threads), bytes: float64(threads * kernels.LoadBytes),
		setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
			src := randTensor(b, 13, tensor.F32, 1, rows, kernels.LoadBytes/4)
			return func() *tensor.Tensor { return b.Loads(src, threads) }, func() { b.Free(src) }
		},
	}}
	for _, dt := range []tensor.DType{tensor.F16, tensor.F32} {
		cs = append(cs, kernelCase{
			op: "linear", shape: fmt.Sprintf("[%d,%d]·[%d,%d]ᵀ", m, k, n, k), weights: dt.String(), flop: 2 * float64(m*n*k),
			setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
				x, wt, bias := randTensor(b, 1, tensor.F32, 1, m, k), randTensor(b, 2, dt, 0.05, n, k), randTensor(b, 3, tensor.F32, 0.1, n)
				return func() *tensor.Tensor { return b.Linear(x, wt, bias, tensor.Epilogue{}) }, func() { b.Free(x, wt, bias) }
			},
		})
	}
	for _, dt := range []tensor.DType{tensor.F16, tensor.F32} {
		cs = append(cs, kernelCase{
			op: "conv3x3", shape: fmt.Sprintf("[1,%d,%d,%d]→%d", h, w, c, o), weights: dt.String(), flop: 2 * float64(h*w*o*c*9),
			setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
				x, wt, bias := randTensor(b, 4, tensor.F32, 1, 1, h, w, c), randTensor(b, 5, dt, 0.02, o, c, 3, 3), randTensor(b, 6, tensor.F32, 0.1, o)
				return func() *tensor.Tensor { return b.Conv2D(x, wt, bias, tensor.ConvOpts{Stride: 1, Pad: 1}) }, func() { b.Free(x, wt, bias) }
			},
		})
	}
	for _, keys := range []int{nq, nk} {
		name := "attention (self)"
		if keys != nq {
			name = "attention (cross)"
		}
		cs = append(cs, kernelCase{
			op: name, shape: fmt.Sprintf("%d×%d tokens, %d heads of %d", nq, keys, heads, d), flop: 4 * float64(nq) * float64(keys) * float64(d*heads),
			setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
				q, kk, v := randTensor(b, 7, tensor.F32, 1, 1, nq, heads*d), randTensor(b, 8, tensor.F32, 1, 1, keys, heads*d), randTensor(b, 9, tensor.F32, 1, 1, keys, heads*d)
				o := tensor.AttnOpts{Heads: heads, Scale: float32(1 / math.Sqrt(float64(d)))}
				return func() *tensor.Tensor { out, _ := b.Attention(q, kk, v, o); return out }, func() { b.Free(q, kk, v) }
			},
		})
	}
	ne := float64(gb * gh * gw * gc)
	cs = append(cs, kernelCase{
		// Statistics read x, apply reads it again and writes out: 12 bytes per element.
		op: "group norm + SiLU", shape: fmt.Sprintf("[%d,%d,%d,%d], 32 groups", gb, gh, gw, gc), bytes: 12 * ne,
		setup: func(b *kernels.Backend) (func() *tensor.Tensor, func()) {
			x, g, bt := randTensor(b, 10, tensor.F32, 1, gb, gh, gw, gc), randTensor(b, 11, tensor.F32, 0.1, gc), randTensor(b, 12, tensor.F32, 0.1, gc)
			return func() *tensor.Tensor { return b.GroupNorm(x, g, bt, 32, 1e-5, true) }, func() { b.Free(x, g, bt) }
		},
	})
	return cs
}

// benchKernels times each kernel case: one op then a device sync per call.
func benchKernels(ctx context.Context, b *kernels.Backend, opt Options) ([]KernelResult, error) {
	var out []KernelResult
	for _, c := range kernelCases(opt.Small) {
		call, free := c.setup(b)
		t, err := measure(ctx, warmups(opt, 1), reps(opt, 7), func() error {
			o := call()
			err := b.Sync(ctx)
			b.Free(o)
			return err
		})
		free()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", c.op, c.shape, err)
		}
		kr := KernelResult{Op: c.op, Shape: c.shape, Weights: c.weights, Timing: t}
		if c.flop > 0 {
			kr.GFLOP = c.flop / 1e9
			kr.GFLOPS, kr.GFLOPC = perSecond(kr.GFLOP, t.MedianMS), perSecond(kr.GFLOP, t.CPUMS)
		} else {
			kr.GB = c.bytes / 1e9
			kr.GBPS = perSecond(kr.GB, t.MedianMS)
		}
		opt.Log("%-18s %-28s %-3s %8.2f ms", c.op, c.shape, c.weights, t.MedianMS)
		out = append(out, kr)
	}
	return out, nil
}
