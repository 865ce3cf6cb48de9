// paritysuite_test.go: the variants ParityCases offers per adapter, and
// RunParity's reporting of failures (a wrong result, a Fatalf, a panic).
package kernels

import (
	"context"
	"strings"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
	"harmony/engine/tensor"
)

func TestParityCasesVariants(t *testing.T) {
	count := func(cs []ParityCase) map[string]int {
		m := map[string]int{}
		for _, c := range cs {
			m[c.Variant]++
		}
		return m
	}
	plain := count(ParityCases(gpu.Info{}))
	if plain[VariantF32] == 0 || plain[VariantFP16Weight] == 0 || len(plain) != 2 {
		t.Errorf("no f16 arithmetic, no subgroups: variants %v, want f32 and fp16-weight only", plain)
	}
	full := count(ParityCases(gpu.Info{ShaderF16: true, SubgroupSize: 32}))
	for _, v := range []string{VariantF32, VariantFP16Weight, VariantF16Arith, "subgroup-32", "f16-arith+subgroup-32"} {
		if full[v] == 0 {
			t.Errorf("shader-f16 and subgroups of 32: no %s cases (%v)", v, full)
		}
	}
	// Every dense case runs on the subgroup kernels; every f16 one with f16
	// arithmetic; both conv forms.
	dense := 0
	for _, c := range linearCases {
		if c.wdt == tensor.F16 {
			dense++
		}
	}
	for _, c := range convCases {
		if c.wdt == tensor.F16 {
			dense += 2
		}
	}
	if full[VariantF16Arith] != dense {
		t.Errorf("f16-arith cases %d, want %d", full[VariantF16Arith], dense)
	}
	if want := len(linearCases) + 2*len(convCases); full["subgroup-32"] != want {
		t.Errorf("subgroup cases %d, want %d", full["subgroup-32"], want)
	}
	families := map[string]bool{}
	for _, c := range ParityCases(gpu.Info{}) {
		families[c.Family] = true
	}
	for _, f := range []string{"linear", "conv2d", "attention", "group_norm", "layer_norm", "activate", "scale", "geglu", "add/mul", "upsample2x", "concat/slice", "embedding", "convert", "timestep", "local_mix"} {
		if !families[f] {
			t.Errorf("no %s cases", f)
		}
	}
}

// TestRunParityFailures: a case whose GPU result is wrong, one that stops
// with Fatalf and one that panics each come back failed, and the next
// case still runs.
func TestRunParityFailures(t *testing.T) {
	dev := gputest.Default(t)
	ok := ParityCases(dev.Info())[0]
	wrong := ParityCase{Family: "test", Variant: VariantF32, Name: "wrong", tune: func(*Backend) {}, run: func(r reporter, b *Backend) {
		p := elemParity(r, b)
		x := p.rand(1, 2, 3, 5)
		p.check("wrong", p.ref.Scale(x.ref, 2, 0), p.gpu.Scale(x.gpu, 2.001, 0), tolRel, tolAbs)
	}}
	fatal := ParityCase{Family: "test", Variant: VariantF32, Name: "fatal", tune: func(*Backend) {}, run: func(r reporter, b *Backend) {
		r.Fatalf("stop here")
		panic("not reached")
	}}
	boom := ParityCase{Family: "test", Variant: VariantF32, Name: "panic", tune: func(*Backend) {}, run: func(r reporter, b *Backend) {
		var s []int
		_ = s[3]
	}}
	res := RunParity(context.Background(), dev, []ParityCase{wrong, fatal, boom, ok}, nil)
	if len(res) != 4 {
		t.Fatalf("%d results, want 4", len(res))
	}
	for i, want := range []string{"max|gpu − cpu|", "stop here", "panic: runtime error"} {
		if res[i].Err == nil || !strings.Contains(res[i].Err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", res[i].Name, res[i].Err, want)
		}
	}
	if res[3].Err != nil || len(res[3].Log) == 0 {
		t.Errorf("%s after the failures: error %v, log %v", ok.ID(), res[3].Err, res[3].Log)
	}
}
