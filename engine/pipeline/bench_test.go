package pipeline

import (
	"context"
	"testing"
	"time"

	"harmony/loader"
)

// BenchmarkHarmonyVsPlain times the golden 8-step generation on the tiny
// model with plain BLIP-Diffusion (batch 2) and with Harmony's defaults
// (batch 4: orchestration, visual-only process, masks, swap), and reports
// both and their ratio (Harmony is about twice the UNet work: batch 4
// instead of 2).
//
//	go test -run XXX -bench HarmonyVsPlain -benchtime 3x ./engine/pipeline/
func BenchmarkHarmonyVsPlain(b *testing.B) {
	m := gpuModel(b, "blipdiffusion-tiny", loader.PrecisionF32, "")
	plain := goldenOptions(b)
	plain.Method = MethodBLIPDiffusion
	h := goldenOptions(b)
	var tp, th time.Duration
	for i := 0; i < b.N; i++ {
		for _, c := range []struct {
			o Options
			d *time.Duration
		}{{plain, &tp}, {h, &th}} {
			start := time.Now()
			if _, err := Generate(context.Background(), m, c.o); err != nil {
				b.Fatal(err)
			}
			*c.d += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(tp.Seconds()/n, "s/plain")
	b.ReportMetric(th.Seconds()/n, "s/harmony")
	b.ReportMetric(th.Seconds()/tp.Seconds(), "harmony/plain")
}
