// gpu_bench_test.go: the tiny golden UNet call on the GPU backend — time and
// dispatches per call, the figures that matter on CPU-emulated adapters
// where each dispatch has a fixed cost (SwiftShader, lavapipe).
//
//	go test ./engine/models/unet/ -run '^$' -bench TinyUNetGPU -benchtime 5x
package unet

import (
	"context"
	"testing"
	"time"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/loader"
	"harmony/loader/golden"
)

func BenchmarkTinyUNetGPU(bm *testing.B) {
	dev := gputest.Default(bm)
	b := kernels.New(dev)
	g := golden.Open(bm, "golden", "e_unet.safetensors")
	u := tiny(bm, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	sample, ts, ctx := goldenInputs(bm, b, g)
	defer b.Free(sample, ctx)
	ctxb := context.Background()
	// The first call compiles the pipelines.
	t0 := time.Now()
	b.Free(mustForward(bm, u, b, sample, ts, ctx, nil))
	if err := b.Sync(ctxb); err != nil {
		bm.Fatal(err)
	}
	first := time.Since(t0)
	d0 := dev.Stats().Dispatches
	bm.ResetTimer()
	for range bm.N {
		b.Free(mustForward(bm, u, b, sample, ts, ctx, nil))
		if err := b.Sync(ctxb); err != nil {
			bm.Fatal(err)
		}
	}
	bm.ReportMetric(float64(dev.Stats().Dispatches-d0)/float64(bm.N), "dispatches/op")
	bm.ReportMetric(first.Seconds(), "first-call-s")
}
