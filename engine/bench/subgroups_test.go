package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/models/unet"
)

// BenchmarkUNetSubgroups races the subgroup kernels against the fallback on
// one device, call for call (the medium UNet of the peer harness, batch 2,
// 32×32 latents, random weights): interleaving keeps a CPU adapter's drift
// out of the ratio. Only where the device has subgroup kernels (Dawn on
// SwiftShader: run it under Node),
//
//	GOOS=js GOARCH=wasm go test -exec "$PWD/wasm/node/go_js_wasm_exec" ./engine/bench -run '^$' -bench UNetSubgroups -benchtime 5x
func BenchmarkUNetSubgroups(b *testing.B) {
	dev := gputest.Default(b)
	sg := int(dev.Info().SubgroupSize)
	if sg == 0 {
		b.Skipf("no subgroup kernels on %s (%s)", dev.Info().Adapter, dev.Info().SubgroupNote)
	}
	ctx := context.Background()
	be := kernels.New(dev)
	cfg, err := unet.ParseConfig(MediumConfig)
	if err != nil {
		b.Fatal(err)
	}
	u, err := SyntheticUNet(be, cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer u.Free(be)
	in := SyntheticInput(cfg, 2, 32, 32, 77, 2)
	run := func(s int) float64 {
		be.Subgroup = s
		t0 := time.Now()
		if _, _, err := call(ctx, be, u, in); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(t0).Microseconds()) / 1e3
	}
	run(sg) // compile both kernel sets outside the timing
	run(0)
	var on, off []float64
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, too.
		if i%2 == 0 {
			on, off = append(on, run(sg)), append(off, run(0))
		} else {
			off, on = append(off, run(0)), append(on, run(sg))
		}
	}
	slices.Sort(on)
	slices.Sort(off)
	b.ReportMetric(on[len(on)/2], "subgroups-ms")
	b.ReportMetric(off[len(off)/2], "fallback-ms")
	b.ReportMetric(off[len(off)/2]/on[len(on)/2], "fallback/subgroups")
}
