// dense_test.go: parity of Linear and Conv2D against the CPU reference over
// odd sizes, views at odd offsets, both weight types and every epilogue.
package kernels

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/engine/tensor"
	"harmony/shaders"
)

func TestLinearParity(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	for _, tc := range linearCases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			e := runLinear(p, tc)
			t.Logf("max err / max|ref| = %.2g", e)
		})
	}
}

func TestLinearDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newOracle(t, true)
	for _, tc := range linearCases[1:4] {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			runLinear(p, tc)
		})
	}
}

// TestConv2DParity runs every case in both forms of conv2d.wgsl: TAPS
// (3×3 over channel quads, the default) and the general loops, which 3×3
// convolutions take with f16 arithmetic (F16N) and which the other cases
// take anyway.
func TestConv2DParity(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	for _, taps := range []bool{true, false} {
		for _, tc := range convCases {
			t.Run(fmt.Sprintf("%s/taps=%v", tc.name, taps), func(t *testing.T) {
				p.t = t
				p.g.cfg.convTaps = taps
				e := runConv(p, tc)
				t.Logf("max err / max|ref| = %.2g", e)
			})
		}
	}
}

func TestConv2DDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newOracle(t, true)
	for _, tc := range []convCase{convCases[1], convCases[5], convCases[7]} {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			runConv(p, tc)
		})
	}
}

// TestWeightVariantSelection: fp16 weights take the unpack2x16float path
// unless F16Arith is on; f32 weights never take an f16 variant. The f16n
// variants must at least preprocess with `enable f16;` ahead of everything.
func TestWeightVariantSelection(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	w16 := p.randF16("w16", 0, 1, 4, 4)
	w32 := p.rand("w32", 0, 1, 4, 4)
	for _, tc := range []struct {
		arith bool
		w     *tensor.Tensor
		want  weightType
	}{
		{false, w16.g, weightF16},
		{true, w16.g, weightF16N},
		{false, w32.g, weightF32},
		{true, w32.g, weightF32},
	} {
		p.g.F16Arith = tc.arith
		if got := p.g.weightType(tc.w); got != tc.want {
			t.Errorf("F16Arith=%v, %v: weight type %d, want %d", tc.arith, tc.w.DType, got, tc.want)
		}
	}
	p.g.F16Arith = false
	for _, conv := range []bool{false, true} {
		for _, vec := range []bool{false, true} {
			k := kernelOf(denseVariant{conv: conv, tile: defaultTuning().denseTile, weight: weightF16N, vec: vec})
			file := k.Shader
			src, err := shaders.Source(k.Shader, k.Defines)
			if err != nil {
				t.Fatal(err)
			}
			first := ""
			for _, line := range strings.Split(src, "\n") {
				if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "//") {
					first = s
					break
				}
			}
			if first != "enable f16;" {
				t.Errorf("%s VEC=%v: first statement %q, want enable f16;", file, vec, first)
			}
			if !strings.Contains(src, "f16>") {
				t.Errorf("%s VEC=%v: f16n variant declares no f16 storage", file, vec)
			}
		}
	}
	// Where the device really has f16 arithmetic, the variant must agree too.
	if p.g.Device().Info().ShaderF16 {
		p.g.F16Arith = true
		defer func() { p.g.F16Arith = false }()
		for _, tc := range linearCases {
			if tc.wdt == tensor.F16 {
				runLinear(p, tc)
				break
			}
		}
		runConv(p, convCases[9])
	}
}

// TestDenseBindingSplits: tensors larger than a storage binding may be are
// computed in bands (Conv2D) or row chunks (Linear). A tiny stand-in limit
// makes small tensors split into many pieces.
func TestDenseBindingSplits(t *testing.T) {
	p := newOracle(t, false)
	p.g.cfg.bindLimit = 2048
	convs := []convCase{
		{name: "3x3 bands res chanbias", b: 2, h: 13, w: 11, c: 4, o: 8, k: 3, stride: 1, pad: 1, bias: true, chanBias: true, res: true, act: tensor.ActSiLU},
		{name: "3x3 s2 bands", b: 1, h: 31, w: 9, c: 4, o: 8, k: 3, stride: 2, pad: 1, bias: true},
		{name: "upsample bands", b: 2, h: 7, w: 6, c: 4, o: 8, k: 3, stride: 1, pad: 1, upsample: true, bias: true, chanBias: true},
		{name: "wide chanbias bands", b: 2, h: 13, w: 11, c: 4, o: 8, k: 3, stride: 1, pad: 1, chanBias: true, cbWide: 21, cbCol: 5},
		{name: "f16 no padding bands", b: 1, h: 30, w: 10, c: 5, o: 6, k: 3, stride: 1, wdt: tensor.F16, wOff: 1, xOff: 1},
		{name: "1x1 row chunks", b: 2, h: 13, w: 11, c: 8, o: 8, k: 1, stride: 1, bias: true, res: true},
	}
	// Unguarded too: then every dispatch binds just its window, and the
	// stand-in limit is enforced like the device's. With many input
	// channels and few outputs the input rows decide the band height, and
	// an inner band reads more of them than the first (the 512×512 VAE
	// decode's 256-channel convolutions).
	unguarded := convs[0]
	unguarded.name += ", unguarded"
	convs = append(convs, unguarded,
		convCase{name: "3x3 input-bound bands, unguarded", b: 1, h: 20, w: 9, c: 16, o: 2, k: 3, stride: 1, pad: 1, bias: true},
		convCase{name: "upsample input-bound bands, unguarded", b: 2, h: 9, w: 9, c: 16, o: 3, k: 3, stride: 1, pad: 1, upsample: true, bias: true},
		convCase{name: "3x3 s2 input-bound bands, unguarded", b: 1, h: 23, w: 9, c: 16, o: 2, k: 3, stride: 2, pad: 1, bias: true, res: true},
	)
	for _, tc := range convs {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.g.guard = !strings.HasSuffix(tc.name, "unguarded")
			defer func() { p.g.guard = true }()
			d0 := p.g.Device().Stats().Dispatches
			e := runConv(p, tc)
			n := p.g.Device().Stats().Dispatches - d0
			if n < 3 {
				t.Fatalf("%d dispatches: the split did not happen", n)
			}
			t.Logf("max err / max|ref| = %.2g in %d dispatches", e, n)
		})
	}
	p.g.cfg.bindLimit = 1024
	for _, tc := range []linearCase{
		{name: "linear row chunks", lead: []int{37}, k: 16, n: 12, bias: true, res: true, act: tensor.ActGELU},
		{name: "linear row chunks odd offsets f16", lead: []int{3, 9}, k: 10, n: 6, wdt: tensor.F16, xOff: 3, wOff: 1, bias: true},
		{name: "linear split row chunks", lead: []int{37}, k: 16, n: 12, split: 4, bias: true, act: tensor.ActSiLU},
		{name: "linear geglu row chunks", lead: []int{37}, k: 16, n: 12, geglu: true, bias: true, res: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			d0 := p.g.Device().Stats().Dispatches
			e := runLinear(p, tc)
			n := p.g.Device().Stats().Dispatches - d0
			if n < 2 {
				t.Fatalf("%d dispatches: the split did not happen", n)
			}
			t.Logf("max err / max|ref| = %.2g in %d dispatches", e, n)
		})
	}
	// A weight that cannot be bound is refused, not computed wrong.
	p.g.cfg.bindLimit = 256
	p.t = t
	x := p.rand("x", 0, 1, 4, 64)
	w := p.rand("w", 0, 1, 8, 64)
	p.g.Linear(x.g, w.g, nil, tensor.Epilogue{})
	var le *gpu.LimitError
	if err := p.g.Err(); !errors.As(err, &le) {
		t.Fatalf("oversized weight: error %v, want a *gpu.LimitError", err)
	}
}

// TestDenseSubgroups: where the device vouches for subgroups, every Linear
// and Conv2D case agrees with the reference on the subgroup kernels
// (matmul.wgsl's and conv2d.wgsl's SG) as well as on the fallback, and the
// subgroup kernels really ran. CI's js/wasm run (Dawn on SwiftShader offers
// subgroups of 4) sets HARMONY_REQUIRE_SUBGROUPS=1 so that this cannot skip
// there.
func TestDenseSubgroups(t *testing.T) {
	t.Parallel()
	d := gputest.Open(t, gpu.Options{Profile: true})
	info := d.Info()
	if info.SubgroupSize == 0 {
		msg := fmt.Sprintf("no subgroup kernels on %s (offered %v: %s)", info.Adapter, info.Subgroups, info.SubgroupNote)
		if os.Getenv("HARMONY_REQUIRE_SUBGROUPS") == "1" {
			t.Fatal("HARMONY_REQUIRE_SUBGROUPS=1: " + msg)
		}
		// Without subgroups the backend must keep every dense kernel on
		// the fallback forms, whose parity the other dense tests check.
		if sg := New(d).Subgroup; sg != 0 {
			t.Fatalf("%s, yet the backend assumes subgroups of %d", msg, sg)
		}
		t.Log(msg + ": the dense kernels use the fallback forms")
		return
	}
	p := &oracle{t: t, g: New(d), c: cpu.New(), rng: rand.New(rand.NewSource(1))}
	p.g.guard = true
	for _, sg := range []int{int(info.SubgroupSize), 0} {
		d.ResetProfile()
		p.g.Subgroup = sg
		for _, tc := range linearCases {
			t.Run(fmt.Sprintf("SG=%d/linear/%s", sg, tc.name), func(t *testing.T) {
				p.t = t
				t.Logf("max err / max|ref| = %.2g", runLinear(p, tc))
			})
		}
		for _, tc := range convCases {
			t.Run(fmt.Sprintf("SG=%d/conv/%s", sg, tc.name), func(t *testing.T) {
				p.t = t
				t.Logf("max err / max|ref| = %.2g", runConv(p, tc))
			})
		}
		used := map[string]int{}
		for _, k := range d.Profile() {
			if strings.Contains(k.Kernel, ",SG=") || strings.Contains(k.Kernel, "[SG=") {
				used[k.Kernel[:strings.Index(k.Kernel, ":")]] += k.Calls
			}
		}
		t.Logf("SG=%d: subgroup dispatches %v", sg, used)
		// 12 Linear cases take the vector path (one of them a single row),
		// 7 Conv2D cases the 3×3 TAPS form.
		if sg > 0 && (used["matmul.wgsl"] < 11 || used["conv2d.wgsl"] < 7) {
			t.Errorf("SG=%d: subgroup dispatches %v, want 11 or more matmul and 7 or more conv2d", sg, used)
		}
		if sg == 0 && len(used) > 0 {
			t.Errorf("Subgroup=0: subgroup kernels still ran: %v", used)
		}
	}
}
