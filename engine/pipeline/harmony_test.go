package pipeline

import (
	"context"
	"encoding/json"

	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
	"harmony/loader/golden"
)

// runSpec is one run of harmony/summary.json.
type runSpec struct {
	Options struct {
		Ortho         bool            `json:"ortho"`
		OrthoMode     json.RawMessage `json:"ortho_mode"`
		ExcludeClass  bool            `json:"ortho_exclude_class"`
		Swap          bool            `json:"swap"`
		SwapMode      string          `json:"swap_mode"`
		SwapStart     json.RawMessage `json:"swap_start"`
		SwapLayers    string          `json:"swap_layers"`
		MaskTokens    string          `json:"mask_tokens"`
		MaskLevel     *int            `json:"mask_level"`
		MaskThreshold float64         `json:"mask_threshold"`
		VisualPrompt  string          `json:"visual_prompt"`
	} `json:"options"`
	PromptReps int `json:"prompt_reps"`
}

func harmonyRuns(t testing.TB) map[string]runSpec {
	data, err := os.ReadFile(golden.Path(t, "harmony", "summary.json"))
	require.NoError(t, err)
	var s struct {
		Runs map[string]runSpec `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(data, &s))
	return s.Runs
}

// optionsFor turns a golden run's options into engine options (through the
// same parsers the CLI uses).
func optionsFor(t testing.TB, spec runSpec) Options {
	o := goldenOptions(t)
	o.Method = MethodHarmony
	o.PromptReps = spec.PromptReps
	h := &o.Harmony
	so := spec.Options
	h.Ortho, h.ExcludeClass, h.Swap = so.Ortho, so.ExcludeClass, so.Swap
	mode := string(so.OrthoMode)
	var ms string
	if json.Unmarshal(so.OrthoMode, &ms) == nil {
		mode = ms
	}
	var err error
	h.OrthoMode, err = harmony.ParseMode(mode)
	require.NoError(t, err)
	h.SwapMode = tensor.SwapKV
	if so.SwapMode == "map" {
		h.SwapMode = tensor.SwapMap
	}
	start := string(so.SwapStart)
	h.SwapStart, err = harmony.ParseSwapStart(start)
	require.NoError(t, err)
	if so.SwapLayers != "" && so.SwapLayers != "decoder" {
		h.SwapLayers = []string{so.SwapLayers}
	}
	h.MaskTokens = MaskTokens(so.MaskTokens)
	h.MaskLevel = so.MaskLevel
	h.MaskThreshold = so.MaskThreshold
	h.VisualPrompt = so.VisualPrompt
	return o
}

func maskValues(ms []harmony.Mask) []int64 {
	var out []int64
	for _, m := range ms {
		for _, v := range m.V {
			out = append(out, int64(v))
		}
	}
	return out
}

func checkU8(t *testing.T, what string, got []uint8, want []int64) {
	diff, maxd := 0, 0
	for i, v := range want {
		d := int(got[i]) - int(v)
		if d < 0 {
			d = -d
		}
		if d != 0 {
			diff++
		}
		maxd = max(maxd, d)
	}
	t.Logf("%s: %d of %d values differ, max %d", what, diff, len(want), maxd)
	require.LessOrEqual(t, maxd, 1, what)
	require.LessOrEqual(t, diff, len(want)/100, what)
}

// checkRun compares one generation with a run of harmony/runs.
func checkRun(t *testing.T, name string, spec runSpec, res *Result) {
	g := golden.Open(t, "harmony", "runs", name+".safetensors")
	calls := len(res.Timesteps)
	if spec.Options.Swap {
		for _, k := range []struct {
			tensor string
			got    []harmony.Mask
		}{{"mask_main", res.MasksMain}, {"mask_vis", res.MasksVisual}, {"mask_used_main", res.MasksUsedMain}} {
			want, _ := g.MustInts(t, k.tensor)
			got := maskValues(k.got)
			require.Equal(t, len(want), len(got), k.tensor)
			per := len(want) / calls
			for c := 0; c < calls; c++ {
				require.Equal(t, want[c*per:(c+1)*per], got[c*per:(c+1)*per], "%s differs at call %d", k.tensor, c)
			}
		}
		lv, _ := g.MustF32(t, "latents_vis_out")
		golden.Close(t, name+" visual latents", res.Visual.Latents, lv[len(lv)-len(res.Visual.Latents):], 1e-4, 0)
		iv, _ := g.MustF32(t, "image_vis_float")
		golden.Close(t, name+" visual image", res.Visual.Image.Float, iv, 1e-4, 0)
		uv, _ := g.MustInts(t, "image_vis_uint8")
		checkU8(t, name+" visual uint8", res.Visual.Image.Pix, uv)
	}
	lm, _ := g.MustF32(t, "latents_main_out")
	golden.Close(t, name+" main latents", res.Main.Latents, lm[len(lm)-len(res.Main.Latents):], 1e-4, 0)
	im, _ := g.MustF32(t, "image_main_float")
	golden.Close(t, name+" main image", res.Main.Image.Float, im, 1e-4, 0)
	um, _ := g.MustInts(t, "image_main_uint8")
	checkU8(t, name+" main uint8", res.Main.Image.Pix, um)
	te, _ := g.MustF32(t, "text_embeddings")
	// Batch order [uncond-main, uncond-visual, cond-main, cond-visual]: the
	// main conditional embedding is the first of the second half.
	D := len(res.EmbeddingOrtho)
	half := len(te) / 2
	golden.Close(t, name+" cond-main embedding", res.EmbeddingOrtho, te[half:half+D], 1e-6, 1e-7)
}

// testHarmonyRuns reproduces every run of harmony/runs on model m.
func testHarmonyRuns(t *testing.T, m *Model, only map[string]bool) {
	for name, spec := range harmonyRuns(t) {
		if only != nil && !only[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			o := optionsFor(t, spec)
			res, err := Generate(context.Background(), m, o)
			require.NoError(t, err)
			checkRun(t, name, spec, res)
			t.Logf("%s: %d calls of batch %d, denoise %v", name, res.Timings.Calls, res.Timings.Batch, res.Timings.Denoise)
		})
	}
}
