package harmony

import (
	"encoding/json"
	"os"
	"testing"

	"harmony/loader/golden"
)

// summary is the part of golden/harmony/summary.json the tests read.
type summary struct {
	Args struct {
		NumInferenceSteps int `json:"num_inference_steps"`
		Height            int `json:"height"`
		Width             int `json:"width"`
	} `json:"args"`
	ClassIDs  []int32  `json:"class_ids"`
	Rows      rowsJSON `json:"rows"`
	RowsReps1 rowsJSON `json:"rows_reps1"`
	Ortho     struct {
		Synthetic struct {
			PivotOrderRows []int `json:"pivot_order_rows"`
		} `json:"synthetic"`
	} `json:"ortho"`
	Runs map[string]runJSON `json:"runs"`
}

type rowsJSON struct {
	Visual  []int `json:"visual"`
	Special []int `json:"special"`
	Klass   []int `json:"klass"`
	Text    []int `json:"text"`
}

type runJSON struct {
	Options struct {
		Swap          bool    `json:"swap"`
		SwapStart     float64 `json:"swap_start"`
		MaskThreshold float64 `json:"mask_threshold"`
		MaskLevel     *int    `json:"mask_level"`
		SwapLayers    string  `json:"swap_layers"`
		OrthoMode     any     `json:"ortho_mode"`
		Ortho         bool    `json:"ortho"`
		ForceMask     any     `json:"force_mask"`
		MaskTokens    string  `json:"mask_tokens"`
		ExcludeClass  bool    `json:"ortho_exclude_class"`
		RankRTol      float64 `json:"rank_rtol"`
	} `json:"options"`
	MaskLayers     []string          `json:"mask_layers"`
	SwapLayers     []string          `json:"swap_layers"`
	MaskLevel      int               `json:"mask_level"`
	LayerHW        map[string][2]int `json:"layer_hw"`
	SwapStartIndex int               `json:"swap_start_index"`
	SwapActive     []int             `json:"swap_active"`
	MaskGrid       [2]int            `json:"mask_grid"`
	MaskPixelsMain []int             `json:"mask_pixels_main"`
	MaskPixelsVis  []int             `json:"mask_pixels_vis"`
	IDs61Vis       []int32           `json:"ids61_vis"`
	RowsVis        rowsJSON          `json:"rows_vis"`
	OrthoRank      int               `json:"ortho_rank"`
	OrthoLambda    float64           `json:"ortho_lambda"`
	NTextRows      int               `json:"n_text_rows"`
}

func loadSummary(t *testing.T) *summary {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "harmony", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func ints32(t *testing.T, f *golden.File, name string) []int32 {
	t.Helper()
	v, _ := f.MustInts(t, name)
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

func ints(t *testing.T, f *golden.File, name string) []int {
	t.Helper()
	v, _ := f.MustInts(t, name)
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
