package vae

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/released"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestTensorsSD(t *testing.T) {
	cfg, err := ParseConfig([]byte(released.VAE))
	if err != nil {
		t.Fatal(err)
	}
	want := modeltest.SpecTensors(t, "vae")
	if len(want) != 248 {
		t.Fatalf("tsv lists %d vae tensors, want 248 (the released checkpoint)", len(want))
	}
	// The released VAE (diffusers 0.16 save) spells the mid-block attention
	// the legacy way.
	cfg.AdaptNames(func(name string) bool { _, ok := want[name]; return ok })
	if !cfg.LegacyAttentionNames {
		t.Fatal("AdaptNames missed the legacy attention names")
	}
	got := Tensors(cfg)
	for name, ws := range want {
		if gs, ok := got[name]; !ok || !slices.Equal(gs, ws) {
			t.Errorf("%s: got %v (present %v), want %v", name, gs, ok, ws)
		}
	}
	for name, gs := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("extra %s %v", name, gs)
		}
	}
	var all, dec int
	for name, s := range got {
		all += tensor.Numel(s)
		if strings.HasPrefix(name, "decoder.") || strings.HasPrefix(name, "post_quant_conv.") {
			dec += tensor.Numel(s)
		}
	}
	// The SD 1.x AutoencoderKL's parameter counts.
	if all != 83653863 || dec != 49490199 {
		t.Errorf("%d parameters (%d in the decoder), want 83,653,863 (49,490,199)", all, dec)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	cases := []struct{ old, new, key string }{
		{`"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"]`, `"AttnDownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"]`, "down_block_types"},
		{`"UpDecoderBlock2D", "UpDecoderBlock2D"]`, `"UpDecoderBlock2D"]`, "block_out_channels"},
		{`"act_fn": "silu"`, `"act_fn": "relu"`, "act_fn"},
		{`"norm_num_groups": 32`, `"norm_num_groups": 48`, "block_out_channels"},
		{`"scaling_factor": 0.18215`, `"scaling_factor": 0`, "scaling_factor"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			js := strings.Replace(released.VAE, c.old, c.new, 1)
			if js == released.VAE {
				t.Fatal("edit did not apply")
			}
			_, err := ParseConfig([]byte(js))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, c.key) {
				t.Fatalf("err = %v, want a ConfigError on %s", err, c.key)
			}
		})
	}
}

func tinyConfig(t *testing.T) *Config {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tinyWeights(t *testing.T, b tensor.Backend) *tensor.Weights {
	t.Helper()
	w, err := loader.ReadSafetensorsWeights(b, "vae", golden.Path(t, "blipdiffusion-tiny", "vae", "diffusion_pytorch_model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// nchwToNHWC permutes a [B, C, H, W] array.
func nchwToNHWC(v []float32, s []int) []float32 {
	nb, c, h, w := s[0], s[1], s[2], s[3]
	out := make([]float32, len(v))
	for bi := range nb {
		for ci := range c {
			for y := range h {
				for x := range w {
					out[((bi*h+y)*w+x)*c+ci] = v[((bi*c+ci)*h+y)*w+x]
				}
			}
		}
	}
	return out
}

// upload puts a golden NCHW tensor on b as NHWC.
func upload(t *testing.T, b tensor.Backend, g *golden.File, name string) *tensor.Tensor {
	v, s := g.MustF32(t, name)
	return b.FromF32(name, nchwToNHWC(v, s), s[0], s[2], s[3], s[1])
}

func TestGoldenVAE(t *testing.T) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) { testGoldenVAE(t, b) })
}

func testGoldenVAE(t *testing.T, b tensor.Backend) {
	g := golden.Open(t, "golden", "f_vae.safetensors")
	d, err := Load(b, tinyConfig(t), tinyWeights(t, b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(b)
	traced := map[string][]float32{}
	d.Trace = func(name string, x *tensor.Tensor) {
		if v, err := b.Read(context.Background(), x); err == nil {
			traced[name] = v
		}
	}
	z := upload(t, b, g, "vae.decode.in")
	start := time.Now()
	out, err := d.DecodeZ(b, z)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: traced decode %v", b.Name(), time.Since(start))
	b.Free(z, out)
	traced["out"] = got
	d.Trace = nil

	checks := []struct{ golden, ours string }{
		{"vae.post_quant_conv_out", "post_quant_conv"},
		{"vae.decoder.conv_in_out", "decoder.conv_in"},
		{"vae.decoder.mid_block_out", "decoder.mid_block"},
		{"vae.decoder.up_block0_out", "decoder.up_blocks.0"},
		{"vae.decoder.up_block1_out", "decoder.up_blocks.1"},
		{"vae.decoder.conv_norm_out_out", "decoder.conv_norm_out"},
		{"vae.decode.out", "out"},
	}
	for _, c := range checks {
		want, ws := g.MustF32(t, c.golden)
		if traced[c.ours] == nil {
			t.Errorf("%s: %s was not captured", c.golden, c.ours)
			continue
		}
		golden.Close(t, c.golden, traced[c.ours], nchwToNHWC(want, ws), 1e-5, 1e-6)
	}

	// The random latent, untraced.
	z = upload(t, b, g, "vae.decode_random.in")
	out, err = d.DecodeZ(b, z)
	if err != nil {
		t.Fatal(err)
	}
	got, err = b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	b.Free(z, out)
	want, ws := g.MustF32(t, "vae.decode_random.out")
	golden.Close(t, "vae.decode_random.out", got, nchwToNHWC(want, ws), 1e-5, 1e-6)
}

// TestDecodeBatchScaleLegacy decodes a batch of two latents given unscaled
// (Decode divides by scaling_factor), with the weights renamed to the
// legacy attention spelling, and checks it against the golden.
func TestDecodeBatchScaleLegacy(t *testing.T) {
	b := cpu.New()
	g := golden.Open(t, "golden", "f_vae.safetensors")
	cfg := tinyConfig(t)
	src := tinyWeights(t, b)
	legacy := tensor.NewWeights("vae")
	rename := strings.NewReplacer(".to_q.", ".query.", ".to_k.", ".key.", ".to_v.", ".value.", ".to_out.0.", ".proj_attn.")
	renamed := 0
	for _, name := range src.Names() {
		x, _ := src.Get(name)
		nn := name
		if strings.Contains(name, "mid_block.attentions.0.") {
			nn = rename.Replace(name)
			renamed++
		}
		legacy.Put(nn, x)
	}
	if renamed != 2*10 { // encoder and decoder: group_norm + 4 projections, weight and bias
		t.Fatalf("renamed %d tensors", renamed)
	}
	d, err := Load(b, cfg, legacy)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(b)

	var lat []float32
	var shape []int
	for _, name := range []string{"vae.decode.in", "vae.decode_random.in"} {
		v, s := g.MustF32(t, name)
		for i := range v {
			v[i] *= cfg.ScalingFactor // back to sampler latents
		}
		lat = append(lat, nchwToNHWC(v, s)...)
		shape = s
	}
	base := b.Allocated()
	x := b.FromF32("latents", lat, 2, shape[2], shape[3], shape[1])
	start := time.Now()
	out, err := d.Decode(b, x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny VAE decode, batch 2, %d×%d latent, CPU: %v", shape[2], shape[3], time.Since(start))
	b.Free(x, out)
	if leak := b.Allocated() - base; leak != 0 {
		t.Errorf("Decode left %d bytes allocated", leak)
	}
	per := len(got) / 2
	for i, name := range []string{"vae.decode.out", "vae.decode_random.out"} {
		want, ws := g.MustF32(t, name)
		// Multiplying by scaling_factor and dividing again rounds the input
		// by up to an ulp.
		golden.Close(t, name+" (batched, unscaled input)", got[i*per:(i+1)*per], nchwToNHWC(want, ws), 1e-5, 1e-6)
	}
}

func TestLoadNamesMissingTensor(t *testing.T) {
	b := cpu.New()
	cfg := tinyConfig(t)
	const gone = "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"
	w := tensor.NewWeights("vae")
	for name, s := range Tensors(cfg) {
		if name != gone && !strings.HasPrefix(name, "encoder.") && !strings.HasPrefix(name, "quant_conv.") {
			w.Put(name, b.NewWeight(name, tensor.F32, s...))
		}
	}
	_, err := Load(b, cfg, w)
	var me *tensor.MissingError
	if !errors.As(err, &me) || me.Name != gone {
		t.Fatalf("err = %v, want a MissingError naming %s (the encoder is not needed)", err, gone)
	}
	w.Put(gone, b.NewWeight(gone, tensor.F32, 32, 64, 1, 1))
	if _, err := Load(b, cfg, w); err != nil {
		t.Fatal(err)
	}
}
