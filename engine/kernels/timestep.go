// timestep.go: the sinusoidal timestep embedding on the GPU, kernel
// in shaders/timestep.wgsl; reference cpu.Backend.TimestepEmbedding.
package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// timestepParams is timestep.wgsl's Params.
type timestepParams struct {
	N      uint32 // output elements: rows·dim
	Dim    uint32 // embedding width
	NFreq  uint32 // frequencies per row: dim/2
	Flip   uint32 // 1: [cos, sin]; 0: [sin, cos]
	ArgOff uint32 // elements: the reduced arguments within their binding
	OutOff uint32 // elements: out within its binding
	_      [2]uint32
}

var kTimestep = gpu.Kernel{Shader: "timestep.wgsl", Entry: "timestep", Defines: shaders.Defines()}

// timestepArgs returns t·f_i for every row and frequency, rounded exactly as
// the reference computes them in float32, then reduced into [−π, π] in
// float64 (math.Remainder is exact there) so that the kernel's sin/cos see
// small arguments whatever t is. Only the final rounding to f32 (≤ 1.2e-7)
// separates them from the reference's argument modulo 2π.
func timestepArgs(ts []float32, half int, shift float32) []float32 {
	args := make([]float32, len(ts)*half)
	for r, t := range ts {
		for i := 0; i < half; i++ {
			e := float32(-math.Log(10000)) * float32(i) / (float32(half) - shift)
			arg := t * float32(math.Exp(float64(e)))
			args[r*half+i] = float32(math.Remainder(float64(arg), 2*math.Pi))
		}
	}
	return args
}

// TimestepEmbedding implements tensor.Backend: out [len(t), dim] with
// f_i = exp(−ln(10000)·i/(dim/2 − shift)), [sin(t·f), cos(t·f)] or with
// flip [cos, sin], and a zero last column when dim is odd.
func (b *Backend) TimestepEmbedding(ts []float32, dim int, flip bool, shift float32) *tensor.Tensor {
	if dim < 0 {
		b.SetErr(&tensor.ShapeError{Op: "timestep_embedding", Msg: fmt.Sprintf("dim %d", dim)})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out := b.out("timestep_embedding", len(ts), dim)
	n := len(ts) * dim
	if n == 0 {
		return out
	}
	half := dim / 2
	args := timestepArgs(ts, half, shift)
	at := b.scratch("timestep_embedding.args", max(len(args), 1))
	defer b.Free(at)
	raw := make([]byte, 4*len(args))
	for i, v := range args {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if len(raw) > 0 {
		b.Upload(at, 0, raw)
	}
	p := timestepParams{N: uint32(n), Dim: uint32(dim), NFreq: uint32(half)}
	if flip {
		p.Flip = 1
	}
	aa, oa := b.arg(at), b.arg(out)
	p.ArgOff, p.OutOff = aa.Off, oa.Off
	b.run(kTimestep, ceilDiv(n, 256), p, aa, oa)
	return out
}
