// text_test.go checks the standard CLIP text tower with its projection
// against transformers' CLIPModel on the tiny whole-model checkpoint
// (testdata/clip-tiny, goldens testdata/eval/clip.safetensors) on every
// backend, and its config parsing and pooled-token choice.
package clip

import (
	"os"
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"

	"github.com/stretchr/testify/require"
)

func TestTextGolden(t *testing.T) {
	data, err := os.ReadFile(golden.Path(t, "clip-tiny", "config.json"))
	require.NoError(t, err)
	cfg, err := ParseTextConfig(data)
	require.NoError(t, err)
	require.Equal(t, TextConfig{Config: Config{VocabSize: 500, Hidden: 32, Intermediate: 45, Layers: 2, Heads: 4, MaxPositions: 77,
		Act: tensor.ActQuickGELU, LayerNormEps: 1e-5}, EOSTokenID: 2, ProjectionDim: 20}, cfg)
	g := golden.Open(t, "eval", "clip.safetensors")
	ids := idRows(t, g, "text.input_ids")
	path := golden.Path(t, "clip-tiny", "model.safetensors")
	// f32 only: the text tower's f16 path is the context encoder's, which
	// TestGolden runs with f16 weights.
	textGolden(t, cfg, g, ids, path, loader.PrecisionF32, visionRel)
}

func textGolden(t *testing.T, cfg TextConfig, g *golden.File, ids [][]int32, path string, p loader.Precision, rel float64) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, bc modeltest.Backend) {
		w, err := loader.ReadSafetensorsWeights(b, "clip", path, p)
		require.NoError(t, err)
		m, err := LoadText(b, cfg, w)
		require.NoError(t, err)
		defer m.Free(b)
		out, err := m.Forward(b, ids)
		require.NoError(t, err)
		defer out.Free(b)
		check := func(name string, x *tensor.Tensor) {
			t.Helper()
			want, shape := g.MustF32(t, name)
			require.Equal(t, shape, x.Shape, name)
			golden.Close(t, name, readT(t, b, x), want, rel, 0)
		}
		check("text.last_hidden_state", out.Last)
		check("text.pooler_output", out.Pooled)
		require.True(t, m.HasProjection())
		emb, err := m.Project(b, out.Pooled)
		require.NoError(t, err)
		defer b.Free(emb)
		check("text.text_embeds", emb)
	})
}

func TestTextTensors(t *testing.T) {
	data, err := os.ReadFile(golden.Path(t, "clip-tiny", "config.json"))
	require.NoError(t, err)
	cfg, err := ParseTextConfig(data)
	require.NoError(t, err)
	f := golden.Open(t, "clip-tiny", "model.safetensors")
	want := map[string][]int{}
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "text_model.") || n == "text_projection.weight" {
			want[n] = f.Find(n).Shape
		}
	}
	modeltest.CompareTensorLists(t, TextTensors(cfg), want)
}

func TestParseTextConfig(t *testing.T) {
	cfg, err := ParseTextConfig([]byte(`{"architectures": ["CLIPTextModel"]}`))
	require.NoError(t, err)
	require.Equal(t, 0, cfg.ProjectionDim)
	require.Equal(t, 49407, cfg.EOSTokenID)
	require.Equal(t, 512, cfg.Hidden)
	cfg, err = ParseTextConfig([]byte(`{"architectures": ["CLIPTextModelWithProjection"], "projection_dim": 768, "hidden_size": 768, "num_attention_heads": 12}`))
	require.NoError(t, err)
	require.Equal(t, 768, cfg.ProjectionDim)
	cfg, err = ParseTextConfig([]byte(`{"projection_dim": 768, "text_config": {"eos_token_id": 2, "hidden_size": 768, "num_attention_heads": 12}}`))
	require.NoError(t, err)
	require.Equal(t, 768, cfg.ProjectionDim)
	require.Equal(t, 2, cfg.EOSTokenID)
	_, err = ParseTextConfig([]byte(`{"text_config": {"hidden_size": 10, "num_attention_heads": 3}}`))
	require.ErrorContains(t, err, "hidden_size")
}

func TestPoolIndex(t *testing.T) {
	legacy := TextConfig{EOSTokenID: LegacyEOSTokenID}
	require.Equal(t, 3, legacy.PoolIndex([]int32{49406, 5, 7, 49407, 49407}))
	fixed := TextConfig{EOSTokenID: 49407}
	require.Equal(t, 3, fixed.PoolIndex([]int32{49406, 5, 7, 49407, 49407}))
	// An added token above EOS moves the legacy choice, not the fixed one.
	require.Equal(t, 1, legacy.PoolIndex([]int32{49406, 49500, 49407}))
	require.Equal(t, 2, fixed.PoolIndex([]int32{49406, 49500, 49407}))
	require.Equal(t, 0, fixed.PoolIndex([]int32{49406, 5}))
}

// A whole checkpoint loads once and splits into both towers.
func TestSplitWhole(t *testing.T) {
	data, err := os.ReadFile(golden.Path(t, "clip-tiny", "config.json"))
	require.NoError(t, err)
	tc, err := ParseTextConfig(data)
	require.NoError(t, err)
	vc, err := ParseVisionConfig(data)
	require.NoError(t, err)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "clip", golden.Path(t, "clip-tiny", "model.safetensors"), loader.PrecisionF32)
	require.NoError(t, err)
	all := len(w.Names())
	vw, tw := SplitWhole(b, w)
	require.Empty(t, w.Names())
	require.Equal(t, all-1, len(vw.Names())+len(tw.Names())) // logit_scale freed
	vm, err := LoadVision(b, vc, vw)
	require.NoError(t, err)
	defer vm.Free(b)
	tm, err := LoadText(b, tc, tw)
	require.NoError(t, err)
	defer tm.Free(b)
	g := golden.Open(t, "eval", "clip.safetensors")
	out, err := tm.Forward(b, idRows(t, g, "text.input_ids"))
	require.NoError(t, err)
	defer out.Free(b)
	want, _ := g.MustF32(t, "text.pooler_output")
	golden.Close(t, "text.pooler_output", readT(t, b, out.Pooled), want, visionRel, 0)
}

// Legacy *_config_dict entries (the openai checkpoints carry them) win over
// *_config, completed with the defaults, as CLIPConfig does (checked with
// transformers 4.36.2: text 768 wide, eos 49407; vision 1024 wide, patch 14,
// 24 layers; projection 768).
func TestLegacyConfigDicts(t *testing.T) {
	data := []byte(`{"projection_dim": 768,
	 "text_config": {"hidden_size": 512, "eos_token_id": 2, "num_attention_heads": 8},
	 "text_config_dict": {"hidden_size": 768, "num_attention_heads": 12, "projection_dim": 768},
	 "vision_config": {"hidden_size": 768, "patch_size": 32},
	 "vision_config_dict": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24, "patch_size": 14}}`)
	tc, err := ParseTextConfig(data)
	require.NoError(t, err)
	require.Equal(t, 768, tc.Hidden)
	require.Equal(t, 12, tc.Heads)
	require.Equal(t, 49407, tc.EOSTokenID)
	require.Equal(t, 768, tc.ProjectionDim)
	vc, err := ParseVisionConfig(data)
	require.NoError(t, err)
	require.Equal(t, VisionConfig{Hidden: 1024, Intermediate: 4096, Layers: 24, Heads: 16, ImageSize: 224, PatchSize: 14,
		Act: tensor.ActQuickGELU, LayerNormEps: 1e-5, ProjectionDim: 768}, vc)
	require.Equal(t, []int{768, 1024}, VisionTensors(vc)["visual_projection.weight"])
	require.Equal(t, []int{1024, 3, 14, 14}, VisionTensors(vc)["vision_model.embeddings.patch_embedding.weight"])
	require.Equal(t, []int{257, 1024}, VisionTensors(vc)["vision_model.embeddings.position_embedding.weight"])
	_, err = ParseVisionConfig([]byte(`{"projection_dim": "x", "vision_config": {}}`))
	require.ErrorContains(t, err, "clip:")
}
