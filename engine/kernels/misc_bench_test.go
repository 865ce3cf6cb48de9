// misc_bench_test.go: benchmarks of the norm and elementwise kernels at
// Stable Diffusion shapes, reporting GB/s of the bytes the kernels must
// move. Each iteration ends with a Sync, so a figure includes one submit and
// wait. Run one at a time on a shared machine, e.g.
//
//	go test ./engine/kernels -run '^$' -bench GroupNormSiLU -benchtime 10x
package kernels

import (
	"context"
	"math/rand"
	"testing"

	"harmony/engine/gpu/gputest"
	"harmony/engine/tensor"
)

// benchBandwidth times op on a fresh unguarded backend and reports GB/s for the
// given bytes per call.
func benchBandwidth(b *testing.B, bytes float64, setup func(be *Backend) func() *tensor.Tensor) {
	be := New(gputest.Default(b))
	ctx := context.Background()
	op := setup(be)
	// One untimed call compiles the pipelines.
	be.Free(op())
	if err := be.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		be.Free(op())
		if err := be.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func benchRandF32(be *Backend, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewSource(2))
	v := make([]float32, tensor.Numel(shape))
	for i := range v {
		v[i] = r.Float32()*4 - 2
	}
	return be.FromF32("bench", v, shape...)
}

// benchGroupNorm: GN_STATS reads x, GN_APPLY reads it again and writes out.
func benchGroupNorm(b *testing.B, groups int, shape ...int) {
	n := float64(tensor.Numel(shape))
	benchBandwidth(b, 12*n, func(be *Backend) func() *tensor.Tensor {
		c := shape[len(shape)-1]
		x, g, bt := benchRandF32(be, shape...), benchRandF32(be, c), benchRandF32(be, c)
		return func() *tensor.Tensor { return be.GroupNorm(x, g, bt, groups, 1e-5, true) }
	})
}

// BenchmarkGroupNormSiLU: a UNet ResnetBlock's norm at 64×64×320.
func BenchmarkGroupNormSiLU(b *testing.B) { benchGroupNorm(b, 32, 2, 64, 64, 320) }

// BenchmarkGroupNormVAE: the VAE decoder's last norm, 512×512×128 (a
// million elements per group).
func BenchmarkGroupNormVAE(b *testing.B) { benchGroupNorm(b, 32, 1, 512, 512, 128) }

// BenchmarkLayerNorm: a transformer block's norm at 64×64 tokens × 320.
func BenchmarkLayerNorm(b *testing.B) {
	n := float64(2 * 4096 * 320)
	benchBandwidth(b, 8*n, func(be *Backend) func() *tensor.Tensor {
		x, g, bt := benchRandF32(be, 2, 4096, 320), benchRandF32(be, 320), benchRandF32(be, 320)
		return func() *tensor.Tensor { return be.LayerNorm(x, g, bt, 1e-5) }
	})
}

// BenchmarkGEGLU: the feed-forward gate at 64×64 tokens, 2560 → 1280.
func BenchmarkGEGLU(b *testing.B) {
	n := float64(2 * 4096 * 1280)
	benchBandwidth(b, 4*3*n, func(be *Backend) func() *tensor.Tensor {
		x := benchRandF32(be, 2, 4096, 2560)
		return func() *tensor.Tensor { return be.GEGLU(x) }
	})
}

// BenchmarkAddChannel: adding a per-channel bias to a 64×64×320 map.
func BenchmarkAddChannel(b *testing.B) {
	n := float64(2 * 64 * 64 * 320)
	benchBandwidth(b, 8*n, func(be *Backend) func() *tensor.Tensor {
		x, c := benchRandF32(be, 2, 64, 64, 320), benchRandF32(be, 2, 1, 1, 320)
		return func() *tensor.Tensor { return be.Add(x, c) }
	})
}

// BenchmarkPeak is the adapter's arithmetic ceiling (selftest.wgsl's peak:
// register-only fma chains): what the other benchmarks' GFLOP/s compare to.
//
//	go test ./engine/kernels/ -run '^$' -bench Peak
func BenchmarkPeak(b *testing.B) {
	g := benchBackend(b)
	const threads = 64 * 1024
	benchOp(b, g, threads*PeakFLOP, func() []*tensor.Tensor { return []*tensor.Tensor{g.Peak(threads)} })
}

// BenchmarkLoads is the cost of storage loads from per-thread addresses
// (selftest.wgsl's loads), in GB/s: the other side of BenchmarkPeak.
//
//	go test ./engine/kernels/ -run '^$' -bench Loads
func BenchmarkLoads(b *testing.B) {
	g := benchBackend(b)
	const rows, threads = 1024, 64 * 1024
	src := g.FromF32("src", make([]float32, rows*LoadBytes/4), rows, LoadBytes/4)
	defer g.Free(src)
	benchOp(b, g, 0, func() []*tensor.Tensor { return []*tensor.Tensor{g.Loads(src, threads)} })
	b.ReportMetric(float64(threads*LoadBytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
