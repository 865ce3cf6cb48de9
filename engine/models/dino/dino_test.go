// dino_test.go checks the DINO ViT against transformers' ViTModel and the
// original facebookresearch/dino VisionTransformer on a tiny random model
// stored in both layouts (testdata/dino-tiny, goldens
// testdata/eval/dino.safetensors, made by testdata/gen/make_dino.py) on every
// backend, and the config parsing and input checks.
package dino

import (
	"context"
	"errors"
	"os"
	"testing"

	"harmony/engine/cfgcheck"
	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"

	"github.com/stretchr/testify/require"
)

// rel is the parity bound, relative to max|ref|.
const rel = 1e-5

// pixels is the generator's deterministic input, NHWC.
func pixels(n, h, w int) []float32 {
	out := make([]float32, n*h*w*3)
	for i := range out {
		v := (uint32(i) * 2654435761) >> 22
		out[i] = float32(float64(v)/512 - 1)
	}
	return out
}

func read(t *testing.T, b tensor.Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.Read(context.Background(), x)
	require.NoError(t, err)
	return v
}

func TestGolden(t *testing.T) {
	g := golden.Open(t, "eval", "dino.safetensors")
	config, err := os.ReadFile(golden.Path(t, "dino-tiny", "config.json"))
	require.NoError(t, err)
	for _, pc := range []struct {
		name string
		p    loader.Precision
		rel  float64
	}{{"f32", loader.PrecisionF32, rel}, {"f16", loader.PrecisionF16, 3e-3}} {
		for _, file := range []string{"model.safetensors", "dino_tiny16_pretrain.pth"} {
			t.Run(pc.name+"/"+file, func(t *testing.T) {
				modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, bc modeltest.Backend) {
					w, err := loader.ReadSafetensorsWeights(b, "dino", golden.Path(t, "dino-tiny", file), pc.p)
					require.NoError(t, err)
					heads := 0
					if file != "model.safetensors" {
						heads = 2 // the tiny model's head width is 8, not DINO's 64
					}
					m, err := LoadCheckpoint(b, config, w, heads)
					require.NoError(t, err)
					defer m.Free(b)
					want := Config{Hidden: 16, Intermediate: 64, Layers: 2, Heads: 2, ImageSize: 224, PatchSize: 16,
						Act: tensor.ActGELU, LayerNormEps: 1e-6, QKVBias: true}
					if heads != 0 {
						want.Layout = LayoutOriginal
					}
					require.Equal(t, want, m.Config)
					x := b.FromF32("pixels", pixels(2, 224, 224), 2, 224, 224, 3)
					defer b.Free(x)
					cls, err := m.Forward(b, x)
					require.NoError(t, err)
					defer b.Free(cls)
					for _, name := range []string{"hf.cls", "original.cls"} {
						ref, shape := g.MustF32(t, name)
						require.Equal(t, shape, cls.Shape)
						golden.Close(t, name, read(t, b, cls), ref, pc.rel, 0)
					}
					tok, err := m.Tokens(b, x)
					require.NoError(t, err)
					defer b.Free(tok)
					ref, shape := g.MustF32(t, "hf.last_hidden_state")
					require.Equal(t, shape, tok.Shape)
					golden.Close(t, "hf.last_hidden_state", read(t, b, tok), ref, pc.rel, 0)
				})
			})
		}
	}
}

func TestTensorsMatchCheckpoints(t *testing.T) {
	config, err := os.ReadFile(golden.Path(t, "dino-tiny", "config.json"))
	require.NoError(t, err)
	cfg, err := ParseConfig(config)
	require.NoError(t, err)
	f := golden.Open(t, "dino-tiny", "model.safetensors")
	want := map[string][]int{}
	for _, n := range f.Names() {
		if n != "pooler.dense.weight" && n != "pooler.dense.bias" {
			want[n] = f.Find(n).Shape
		}
	}
	modeltest.CompareTensorLists(t, Tensors(cfg), want)

	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "dino", golden.Path(t, "dino-tiny", "dino_tiny16_pretrain.pth"), loader.PrecisionF32)
	require.NoError(t, err)
	defer w.Free(b)
	shapes := map[string][]int{}
	for _, n := range w.Names() {
		x, _ := w.Get(n)
		shapes[n] = x.Shape
	}
	ocfg, err := ConfigFromShapes(shapes, 2)
	require.NoError(t, err)
	modeltest.CompareTensorLists(t, Tensors(ocfg), shapes)

	// The prefix of a classification checkpoint is found.
	require.Equal(t, "vit.", cfg.WithPrefix([]string{"vit.embeddings.cls_token"}).Prefix)
	pc := cfg.WithPrefix([]string{"vit.embeddings.cls_token"})
	_, ok := Tensors(pc)["vit.layernorm.weight"]
	require.True(t, ok)
}

func TestConfigs(t *testing.T) {
	// facebook/dino-vits16's config.json (the keys that differ from ViTConfig's defaults).
	cfg, err := ParseConfig([]byte(`{"hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 6, "architectures": ["ViTModel"]}`))
	require.NoError(t, err)
	require.Equal(t, Config{Hidden: 384, Intermediate: 1536, Layers: 12, Heads: 6, ImageSize: 224, PatchSize: 16,
		Act: tensor.ActGELU, LayerNormEps: 1e-12, QKVBias: true}, cfg)
	require.Equal(t, 197, cfg.Positions())

	// dino_deitsmall16_pretrain.pth's shapes.
	shapes := map[string][]int{"cls_token": {1, 1, 384}, "pos_embed": {1, 197, 384}, "patch_embed.proj.weight": {384, 3, 16, 16},
		"blocks.0.mlp.fc1.weight": {1536, 384}, "blocks.11.norm1.weight": {384}, "blocks.0.attn.qkv.bias": {1152}}
	cfg, err = ConfigFromShapes(shapes, 0)
	require.NoError(t, err)
	require.Equal(t, Config{Hidden: 384, Intermediate: 1536, Layers: 12, Heads: 6, ImageSize: 224, PatchSize: 16,
		Act: tensor.ActGELU, LayerNormEps: 1e-6, QKVBias: true, Layout: LayoutOriginal}, cfg)

	for _, bad := range []map[string][]int{
		{"pos_embed": {1, 197, 384}},
		{"cls_token": {1, 1, 384}, "pos_embed": {1, 198, 384}, "patch_embed.proj.weight": {384, 3, 16, 16}, "blocks.0.mlp.fc1.weight": {1536, 384}},
		{"cls_token": {1, 1, 384}, "pos_embed": {1, 197, 384}, "patch_embed.proj.weight": {384, 3, 16, 8}},
	} {
		_, err := ConfigFromShapes(bad, 0)
		require.ErrorContains(t, err, "dino:")
	}
	for _, tc := range []struct{ json, field string }{
		{`{"hidden_size": 10, "num_attention_heads": 3}`, "hidden_size"},
		{`{"image_size": 100}`, "image_size"},
		{`{"hidden_act": "nope"}`, "hidden_act"},
		{`{"num_channels": 1}`, "num_channels"},
	} {
		_, err := ParseConfig([]byte(tc.json))
		var ce *cfgcheck.ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v", tc.json, err)
		require.Equal(t, tc.field, ce.Field)
	}
}

func TestInputChecks(t *testing.T) {
	b := cpu.New()
	cfg := Config{Hidden: 8, Intermediate: 8, Layers: 1, Heads: 2, ImageSize: 8, PatchSize: 4, Act: tensor.ActGELU, LayerNormEps: 1e-6, QKVBias: true, Layout: LayoutOriginal}
	m, err := Load(b, cfg, nn.Placeholders(b, "dino", Tensors(cfg), nil))
	require.NoError(t, err)
	defer m.Free(b)
	for _, shape := range [][]int{{1, 3, 8, 8}, {1, 16, 16, 3}, {8, 8, 3}} {
		x := b.New("x", tensor.F32, shape...)
		_, err := m.Forward(b, x)
		require.ErrorContains(t, err, "dino: pixels")
		b.Free(x)
	}
	_, err = Load(b, cfg, tensor.NewWeights("dino"))
	require.ErrorContains(t, err, `missing tensor "cls_token"`)
	_, err = LoadCheckpoint(b, nil, tensor.NewWeights("dino"), 0)
	require.ErrorContains(t, err, "no config.json")
}
