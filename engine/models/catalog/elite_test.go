// elite_test.go checks the ELITE table: the released mapper files' tensor
// count and parameter count (elite.md A.8), and the whole tiny ELITE folder
// loading through the table in order, the UNet taking the mappers'
// attention projections, with nothing left on the backend after Free.
package catalog

import (
	"context"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/elite"
	"harmony/engine/models/unet"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestELITEReleasedMappers(t *testing.T) {
	m := ReleasedMapperTensors()
	var params int
	for _, s := range m {
		params += tensor.Numel(s)
	}
	// 100 mapping tensors and 32 attention projections; 48,074,240
	// parameters per file (192 MB in fp32, the released size).
	if len(m) != 132 || params != 48074240 {
		t.Fatalf("%d tensors, %d parameters; want 132, 48074240", len(m), params)
	}
	if s := m["down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.weight"]; len(s) != 2 || s[0] != 320 || s[1] != 768 {
		t.Fatalf("down_blocks_0 to_k %v, want [320 768]", s)
	}
}

func TestELITETableLoadsTiny(t *testing.T) {
	b := cpu.New()
	m, err := loader.LoadELITE(context.Background(), loader.ELITESources{Base: loader.NewDirSource(golden.Path(t, "elite-tiny"))}, b, &loader.Options{Precision: loader.PrecisionF32})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]Model{}
	for _, c := range ELITE.Models() {
		cfg, err := c.Parse(m.Configs[c.Name])
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if loaded[c.Name], err = c.LoadIn(b, cfg, m.Weights[c.Name], loaded); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
	}
	if u := loaded["unet"].(*unet.UNet); !u.ELITE() {
		t.Fatal("the table's UNet has no local branch")
	}
	if g := loaded["global_mapper"].(*elite.Mapper); g.Config.Hidden != 1024 || g.Config.In != 16 {
		t.Fatalf("global mapper %+v", g.Config)
	}
	for _, mod := range loaded {
		mod.Free(b)
	}
	if a := b.Allocated(); a != 0 {
		t.Fatalf("%d bytes left after freeing every model", a)
	}
	// The UNet alone (no mappers before it) is refused by name.
	uc, _ := ELITE.Component("unet")
	cfg, err := uc.Parse(m.Configs["unet"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uc.LoadIn(b, cfg, tensor.NewWeights("unet"), map[string]Model{}); err == nil {
		t.Fatal("ELITE's UNet loaded without the mappers")
	}
}
