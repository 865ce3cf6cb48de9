// dense_bench_test.go: throughput of the dense and attention kernels at the
// full-size UNet shapes (512×512 images: 64×64 latents, 320 channels, 8
// heads of 40). Each iteration runs one op and waits for the device, and the
// GFLOP/s metric counts 2·M·N·K for Linear / Conv2D and 4·N²·d·H for
// attention (N² → Nq·Nk); GFLOP/cpu-s divides by the process's CPU time
// instead (steadier on a shared machine with a CPU adapter). Run one at a
// time, e.g.
//
//	go test ./engine/kernels/ -run '^$' -bench 'Linear' -benchtime 3x
package kernels

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/x448/float16"

	"harmony/engine/bench/cputime"
	"harmony/engine/gpu/gputest"
	"harmony/engine/tensor"
)

func benchBackend(b *testing.B) *Backend {
	return New(gputest.Default(b))
}

func benchRand(g *Backend, rng *rand.Rand, name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	v := make([]float32, tensor.Numel(shape))
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	t := g.FromF32(name, v, shape...)
	if dt == tensor.F16 {
		// Converting with the reference keeps this independent of the GPU
		// Convert kernel.
		raw := make([]byte, 2*len(v))
		for i, f := range v {
			h := float16.Fromfloat32(f).Bits()
			raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		}
		g.Free(t)
		t = g.NewWeight(name, tensor.F16, shape...)
		g.Upload(t, 0, raw)
	}
	return t
}

// benchOp times op (one dispatch set, then a device sync) and reports GFLOP/s.
func benchOp(b *testing.B, g *Backend, flops float64, op func() []*tensor.Tensor) {
	ctx := context.Background()
	g.Free(op()...) // compile the pipelines outside the timing
	if err := g.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := cputime.Process()
	for range b.N {
		outs := op()
		if err := g.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		g.Free(outs...)
	}
	cpu := cputime.Process() - c0
	if flops == 0 {
		return // the caller reports its own metric
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

func BenchmarkLinear(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		b.Run("4096x320x1280/"+dt.String(), func(b *testing.B) {
			g := benchBackend(b)
			rng := rand.New(rand.NewSource(1))
			const m, k, n = 4096, 320, 1280
			x := benchRand(g, rng, "x", tensor.F32, m, k)
			w := benchRand(g, rng, "w", dt, n, k)
			bias := benchRand(g, rng, "b", tensor.F32, n)
			defer g.Free(x, w, bias)
			benchOp(b, g, 2*m*n*k, func() []*tensor.Tensor {
				return []*tensor.Tensor{g.Linear(x, w, bias, tensor.Epilogue{})}
			})
		})
	}
}

func BenchmarkConv3x3(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		b.Run("64x64x320/"+dt.String(), func(b *testing.B) {
			g := benchBackend(b)
			rng := rand.New(rand.NewSource(1))
			const h, w, c, o = 64, 64, 320, 320
			x := benchRand(g, rng, "x", tensor.F32, 1, h, w, c)
			wt := benchRand(g, rng, "w", dt, o, c, 3, 3)
			bias := benchRand(g, rng, "b", tensor.F32, o)
			defer g.Free(x, wt, bias)
			benchOp(b, g, 2*h*w*o*c*9, func() []*tensor.Tensor {
				return []*tensor.Tensor{g.Conv2D(x, wt, bias, tensor.ConvOpts{Stride: 1, Pad: 1})}
			})
		})
	}
}

func BenchmarkAttention(b *testing.B) {
	for _, bc := range []struct {
		name   string
		nq, nk int
	}{
		{"self-4096", 4096, 4096},
		{"cross-4096x77", 4096, 77},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := benchBackend(b)
			rng := rand.New(rand.NewSource(1))
			const heads, d = 8, 40
			q := benchRand(g, rng, "q", tensor.F32, 1, bc.nq, heads*d)
			k := benchRand(g, rng, "k", tensor.F32, 1, bc.nk, heads*d)
			v := benchRand(g, rng, "v", tensor.F32, 1, bc.nk, heads*d)
			defer g.Free(q, k, v)
			o := tensor.AttnOpts{Heads: heads, Scale: 0.158}
			benchOp(b, g, 4*float64(bc.nq)*float64(bc.nk)*d*heads, func() []*tensor.Tensor {
				out, _ := g.Attention(q, k, v, o)
				return []*tensor.Tensor{out}
			})
		})
	}
}

// linVariant is one numbered variant of matmul.wgsl: whether f16 weights
// may take W8, and the register tiling of the path it exercises.
type linVariant struct {
	name string
	w8   bool
	tile gemmTile
	sg   bool // subgroup kernel (SG); only where the device has one
}

// linearVariants are the kernels BenchmarkLinearVariants races (llm.c
// style; the engine's choice is marked). v1 was the first kernel
// (matmul_v1.wgsl, loops instead of straight-line code), removed since: no
// path used it and no parity test covered it; its figures stay below. Best of b.N interleaved rounds, GFLOP per CPU-second, LP_NUM_THREADS
// unset (2 threads), 4096×320 · 320×1280 on lavapipe, machine loaded by
// other jobs (±20 %). W8 only concerns f16 weights (f32 rows of v3 repeat v2):
//
//	                                        f32    f16
//	v1  matmul_v1 loops 8×8 (vec2 f16)      7.5    8.2
//	v2  straight-line 8×8 (vec2 f16)        7.5    7.7
//	v3  straight-line 8×8, W8               7.8    8.3
//	v4  straight-line 8×16, W8 (engine)     9.5   12.3
//	v5  straight-line 16×8, W8              9.2    8.9
//	v6  straight-line 16×16, W8            11.8   10.2
//
// The engine runs 8×16 for both weight types: 16×16 is faster in f32 only,
// tiles 128×128 (work wasted on narrow layers) and compiles longer. See
// matmul.wgsl for why loads set the pace.
//
// v7–v10 are the subgroup kernels (SG; lavapipe offers no subgroups, so they
// only run where the device has them). Dawn on SwiftShader under Node
// (subgroups of 4), GOOS=js GOARCH=wasm, -benchtime 2x, best round, GFLOP/s
// (2026-11-26, one round each, ±10 %):
//
//	                                        f32    f16
//	v4  8×16 (the fallback)                 2.10   1.84
//	v6  16×16                               2.47   2.30
//	v7  SG 8×16                             2.68   2.62
//	v8  SG 4×32                             2.62   2.00
//	v9  SG 8×32, 8×8 threads                3.11   2.68
//	v10 SG 8×32, 16×4 threads (engine)      3.27   2.64
//
// With SG the engine takes v10 (sgLinearTile): as fast as v9 and a 128-wide
// column tile, which wastes less on 320-channel layers than v9's 256.
var linearVariants = []linVariant{
	{"v2", false, gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}, false},
	{"v3", true, gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}, false},
	{"v4", true, gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8}, false},
	{"v5", true, gemmTile{TM: 16, TN: 8, WGM: 8, WGN: 8}, false},
	{"v6", true, gemmTile{TM: 16, TN: 16, WGM: 8, WGN: 8}, false},
	{"v7", true, gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8}, true},
	{"v8", true, gemmTile{TM: 4, TN: 32, WGM: 8, WGN: 8}, true},
	{"v9", true, gemmTile{TM: 8, TN: 32, WGM: 8, WGN: 8}, true},
	{"v10", true, gemmTile{TM: 8, TN: 32, WGM: 16, WGN: 4}, true},
}

// BenchmarkLinearVariants races linearVariants at the full-size UNet's
// widest Linear shape, interleaved round by round so that the load of a
// shared machine hits them alike; each reports its best round.
//
//	go test ./engine/kernels/ -run '^$' -bench LinearVariants -benchtime 3x
func BenchmarkLinearVariants(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		b.Run("4096x320x1280/"+dt.String(), func(b *testing.B) {
			g := benchBackend(b)
			sgSize := g.Subgroup
			variants := slices.DeleteFunc(slices.Clone(linearVariants), func(v linVariant) bool { return v.sg && sgSize == 0 })
			rng := rand.New(rand.NewSource(1))
			const m, k, n = 4096, 320, 1280
			x := benchRand(g, rng, "x", tensor.F32, m, k)
			w := benchRand(g, rng, "w", dt, n, k)
			bias := benchRand(g, rng, "b", tensor.F32, n)
			defer g.Free(x, w, bias)
			names := make([]string, len(variants))
			for i, v := range variants {
				names[i] = v.name
			}
			raceVariants(b, g, names, func(i int) {
				v := variants[i]
				g.cfg.matmulW8 = v.w8
				g.cfg.linearTile, g.cfg.w8Tile = v.tile, v.tile
				g.Subgroup = 0
				if v.sg {
					g.Subgroup = sgSize
				}
			}, 2*m*n*k, func() *tensor.Tensor { return g.Linear(x, w, bias, tensor.Epilogue{}) })
		})
	}
}

// raceVariants times op under each of the named variants (set(i) selects
// variant i): one untimed call each first (pipeline compilation, logged),
// then b.N rounds that run every variant once, interleaved so that the load
// of a shared machine hits them alike. Each variant reports its best round
// in GFLOP/s and GFLOP per CPU-second.
func raceVariants(b *testing.B, g *Backend, names []string, set func(i int), flops float64, op func() *tensor.Tensor) {
	ctx := context.Background()
	run := func() (wall, cpu float64) {
		c0, t0 := cputime.Process(), time.Now()
		g.Free(op())
		if err := g.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0).Seconds(), (cputime.Process() - c0).Seconds()
	}
	for i, name := range names {
		set(i)
		t0 := time.Now()
		run()
		b.Logf("%s: first call (compile) %v", name, time.Since(t0))
	}
	bestWall := make([]float64, len(names))
	bestCPU := make([]float64, len(names))
	b.ResetTimer()
	for range b.N {
		for i := range names {
			set(i)
			wall, cpu := run()
			bestWall[i] = max(bestWall[i], flops/wall/1e9)
			if cpu > 0 {
				bestCPU[i] = max(bestCPU[i], flops/cpu/1e9)
			}
		}
	}
	for i, name := range names {
		b.ReportMetric(bestCPU[i], name+"-GFLOP/cpu-s")
		b.ReportMetric(bestWall[i], name+"-GFLOP/s")
	}
}

// convVariant is one Conv2D form BenchmarkConvVariants races.
type convVariant struct {
	name string
	taps bool
	tile gemmTile
	sg   bool // subgroup kernel (SG); only where the device has one
}

var convVariants = []convVariant{
	{"v1", false, gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}, false},
	{"v2", true, gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}, false},
	{"v3", true, gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8}, false},
	{"v4", true, gemmTile{TM: 16, TN: 8, WGM: 8, WGN: 8}, false},
	{"v5", true, gemmTile{TM: 16, TN: 16, WGM: 8, WGN: 8}, false},
	{"v6", true, gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}, true},
	{"v7", true, gemmTile{TM: 8, TN: 16, WGM: 8, WGN: 8}, true},
	{"v8", true, gemmTile{TM: 4, TN: 16, WGM: 16, WGN: 4}, true},
}

// BenchmarkConvVariants races convVariants like BenchmarkLinearVariants.
//
//	go test ./engine/kernels/ -run '^$' -bench ConvVariants -benchtime 3x
func BenchmarkConvVariants(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		b.Run("64x64x320/"+dt.String(), func(b *testing.B) {
			g := benchBackend(b)
			sgSize := g.Subgroup
			variants := slices.DeleteFunc(slices.Clone(convVariants), func(v convVariant) bool { return v.sg && sgSize == 0 })
			rng := rand.New(rand.NewSource(1))
			const h, w, c, o = 64, 64, 320, 320
			x := benchRand(g, rng, "x", tensor.F32, 1, h, w, c)
			wt := benchRand(g, rng, "w", dt, o, c, 3, 3)
			bias := benchRand(g, rng, "b", tensor.F32, o)
			defer g.Free(x, wt, bias)
			names := make([]string, len(variants))
			for i, v := range variants {
				names[i] = v.name
			}
			raceVariants(b, g, names, func(i int) {
				v := variants[i]
				g.cfg.convTaps, g.cfg.denseTile, g.cfg.convTapsTile = v.taps, v.tile, v.tile
				g.Subgroup = 0
				if v.sg {
					g.Subgroup = sgSize
				}
			}, 2*h*w*o*c*9, func() *tensor.Tensor { return g.Conv2D(x, wt, bias, tensor.ConvOpts{Stride: 1, Pad: 1}) })
		})
	}
}

// BenchmarkAttentionBlocks times attention.wgsl's key-block sizes (see
// attnConfig for the figures measured).
func BenchmarkAttentionBlocks(b *testing.B) {
	for _, kb := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("KB%d", kb), func(b *testing.B) {
			g := benchBackend(b)
			g.cfg.attn.KB = kb
			rng := rand.New(rand.NewSource(1))
			const n, heads, d = 1024, 8, 40
			q := benchRand(g, rng, "q", tensor.F32, 1, n, heads*d)
			k := benchRand(g, rng, "k", tensor.F32, 1, n, heads*d)
			v := benchRand(g, rng, "v", tensor.F32, 1, n, heads*d)
			defer g.Free(q, k, v)
			o := tensor.AttnOpts{Heads: heads, Scale: 0.158}
			benchOp(b, g, 4*n*n*d*heads, func() []*tensor.Tensor {
				out, _ := g.Attention(q, k, v, o)
				return []*tensor.Tensor{out}
			})
		})
	}
}
