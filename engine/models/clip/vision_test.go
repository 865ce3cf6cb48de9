// vision_test.go checks the CLIP vision tower against transformers'
// CLIPModel on a tiny random whole-model checkpoint (testdata/clip-tiny,
// goldens testdata/eval/clip.safetensors, made by testdata/gen/make_clip.py)
// on every backend, and its config parsing and input checks.
package clip

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
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

// visionRel is the parity bound for every output, relative to max|ref|.
const visionRel = 1e-5

func tinyVisionConfig(t *testing.T) VisionConfig {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "clip-tiny", "config.json"))
	require.NoError(t, err)
	cfg, err := ParseVisionConfig(data)
	require.NoError(t, err)
	return cfg
}

func readT(t *testing.T, b tensor.Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.Read(context.Background(), x)
	require.NoError(t, err)
	return v
}

func TestVisionGolden(t *testing.T) {
	cfg := tinyVisionConfig(t)
	require.Equal(t, VisionConfig{Hidden: 24, Intermediate: 37, Layers: 17, Heads: 3, ImageSize: 30, PatchSize: 6,
		Act: tensor.ActQuickGELU, LayerNormEps: 1e-5, ProjectionDim: 20}, cfg)
	g := golden.Open(t, "eval", "clip.safetensors")
	path := golden.Path(t, "clip-tiny", "model.safetensors")
	for _, pc := range precisions {
		t.Run(pc.name, func(t *testing.T) { visionGolden(t, cfg, g, path, pc.p, pc.goldenRel) })
	}
}

// visionGolden compares every output on every backend with weights of
// precision p (fp16: rounded weights, the bound of the text encoder test).
func visionGolden(t *testing.T, cfg VisionConfig, g *golden.File, path string, p loader.Precision, rel float64) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, bc modeltest.Backend) {
		w, err := loader.ReadSafetensorsWeights(b, "clip", path, p)
		require.NoError(t, err)
		m, err := LoadVision(b, cfg, w)
		require.NoError(t, err)
		defer m.Free(b)
		pv, ps := g.MustF32(t, "vision.pixel_values")
		px := b.FromF32("pixels", pv, ps...)
		defer b.Free(px)
		out, err := m.Forward(b, px)
		require.NoError(t, err)
		defer out.Free(b)
		require.Len(t, out.Hidden, cfg.Layers+1)
		check := func(name string, x *tensor.Tensor) {
			t.Helper()
			want, shape := g.MustF32(t, name)
			require.Equal(t, shape, x.Shape, name)
			golden.Close(t, name, readT(t, b, x), want, rel, 0)
		}
		for k, h := range out.Hidden {
			check("vision.hidden_states."+strconv.Itoa(k), h)
		}
		check("vision.pooler_output", out.Pooled)
		require.True(t, m.HasProjection())
		emb, err := m.Project(b, out.Pooled)
		require.NoError(t, err)
		defer b.Free(emb)
		check("vision.image_embeds", emb)
	})
}

func TestVisionTensors(t *testing.T) {
	cfg := tinyVisionConfig(t)
	got := VisionTensors(cfg)
	f := golden.Open(t, "clip-tiny", "model.safetensors")
	want := map[string][]int{}
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "vision_model.") || n == "visual_projection.weight" {
			info := f.Find(n)
			if info.DType == loader.I64 {
				continue // position_ids buffer
			}
			want[n] = info.Shape
		}
	}
	modeltest.CompareTensorLists(t, got, want)

	// A vision-only config has no projection unless it names one.
	cfg.ProjectionDim = 0
	require.NotContains(t, VisionTensors(cfg), "visual_projection.weight")
}

func TestParseVisionConfig(t *testing.T) {
	// CLIPVisionConfig defaults, as CLIPVisionModel.from_pretrained fills them.
	cfg, err := ParseVisionConfig([]byte(`{"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14, "architectures": ["CLIPVisionModel"]}`))
	require.NoError(t, err)
	require.Equal(t, VisionConfig{Hidden: 1024, Intermediate: 4096, Layers: 24, Heads: 16, ImageSize: 224, PatchSize: 14,
		Act: tensor.ActQuickGELU, LayerNormEps: 1e-5}, cfg)
	require.Equal(t, 257, cfg.Positions())
	cfg, err = ParseVisionConfig([]byte(`{"projection_dim": 768, "architectures": ["CLIPVisionModelWithProjection"]}`))
	require.NoError(t, err)
	require.Equal(t, 768, cfg.ProjectionDim)
	require.Equal(t, 32, cfg.PatchSize)
	// A whole CLIPModel config: vision_config with defaults, top-level projection_dim (default 512).
	cfg, err = ParseVisionConfig([]byte(`{"architectures": ["CLIPModel"], "vision_config": {"patch_size": 16}}`))
	require.NoError(t, err)
	require.Equal(t, 512, cfg.ProjectionDim)
	require.Equal(t, 16, cfg.PatchSize)
	require.Equal(t, 768, cfg.Hidden)

	for _, tc := range []struct{ json, field string }{
		{`{"hidden_size": 10, "num_attention_heads": 3}`, "hidden_size"},
		{`{"image_size": 100, "patch_size": 32}`, "image_size"},
		{`{"hidden_act": "swish2"}`, "hidden_act"},
		{`{"num_channels": 4}`, "num_channels"},
		{`{"vision_config": {"num_hidden_layers": 0}}`, "num_hidden_layers"},
		{`{"num_hidden_layers": 100000}`, "num_hidden_layers"},
	} {
		_, err := ParseVisionConfig([]byte(tc.json))
		var ce *cfgcheck.ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v", tc.json, err)
		require.Contains(t, ce.Field, tc.field, tc.json)
	}
	_, err = ParseVisionConfig([]byte(`{`))
	require.Error(t, err)
}

func TestVisionInputChecks(t *testing.T) {
	b := cpu.New()
	cfg := VisionConfig{Hidden: 8, Intermediate: 8, Layers: 1, Heads: 2, ImageSize: 8, PatchSize: 4, Act: tensor.ActQuickGELU, LayerNormEps: 1e-5}
	w := nn.Placeholders(b, "clip", VisionTensors(cfg), nil)
	m, err := LoadVision(b, cfg, w)
	require.NoError(t, err)
	defer m.Free(b)
	for _, shape := range [][]int{{1, 3, 8, 8}, {1, 8, 8}, {1, 16, 16, 3}, {0, 8, 8, 3}} {
		x := b.New("x", tensor.F32, shape...)
		_, err := m.Forward(b, x)
		require.ErrorContains(t, err, "clip: vision: pixels", "%v", shape)
		b.Free(x)
	}
	out, err := m.Forward(b, b.New("x", tensor.F32, 2, 8, 8, 3))
	require.NoError(t, err)
	require.Equal(t, []int{2, 8}, out.Pooled.Shape)
	_, err = m.Project(b, out.Pooled)
	require.ErrorContains(t, err, "no visual_projection")
	out.Free(b)

	// A missing tensor is named.
	w2 := tensor.NewWeights("clip")
	_, err = LoadVision(b, cfg, w2)
	var me *tensor.MissingError
	require.True(t, errors.As(err, &me), "%v", err)
	require.ErrorContains(t, err, "vision_model.")
}
