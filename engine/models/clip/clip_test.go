// clip_test.go checks the context CLIP text encoder against the reference's
// golden tensors (testdata/golden) on every backend, with fp32 and fp16
// weights, and checks its tensor list, config parsing and input checks.
package clip

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
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"

	"github.com/stretchr/testify/require"
)

func tinyConfig(t *testing.T) Config {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "text_encoder", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// idRows reads an integer golden tensor [B, T] as token rows.
func idRows(t *testing.T, f *golden.File, name string) [][]int32 {
	t.Helper()
	v, s := f.MustInts(t, name)
	rows := make([][]int32, s[0])
	for r := range rows {
		for _, id := range v[r*s[1] : (r+1)*s[1]] {
			rows[r] = append(rows[r], int32(id))
		}
	}
	return rows
}

// precisions are the weight files and how close each must come to the
// fp32 golden. fp16 weights: the reference itself moves by up to 1.1e-3
// (tolerances.json, fp16weights_upcast_vs_fp32weights).
var precisions = []struct {
	name      string
	file      string
	p         loader.Precision
	goldenRel float64
}{
	{"f32", "model.safetensors", loader.PrecisionF32, 1e-5},
	{"f16", "model.fp16.safetensors", loader.PrecisionF16, 3e-3},
}

// encodeCases are the golden text-encoder calls: ids (file and tensor),
// context embeddings and positions, and the tensors to compare.
var encodeCases = []struct {
	name               string
	idsFile, ids       string
	ctx                string
	pos                []int
	embeddings, layer0 string // "" when the golden has none
	last               string
}{
	{"ctx", "b_text_encoder", "te.ctx.input_ids", "te.ctx.ctx_embeddings", []int{2},
		"te.ctx.embeddings_out", "te.ctx.layer0_out", "te.ctx.last_hidden_state"},
	{"noctx", "b_text_encoder", "te.noctx.input_ids", "", nil,
		"te.noctx.embeddings_out", "te.noctx.layer0_out", "te.noctx.last_hidden_state"},
	{"prompts3_noctx", "a_tokenizers", "tok.clip.prompts3.ids77", "", nil,
		"", "", "te.prompts3_noctx.last_hidden_state"},
	{"prompts3_ctx", "a_tokenizers", "tok.clip.prompts3.ids61", "te.prompts3_ctx.ctx_embeddings", []int{2, 5, 1},
		"", "", "te.prompts3_ctx.last_hidden_state"},
}

func TestGolden(t *testing.T) {
	cfg := tinyConfig(t)
	files := map[string]*golden.File{
		"a_tokenizers":   golden.Open(t, "golden", "a_tokenizers.safetensors"),
		"b_text_encoder": golden.Open(t, "golden", "b_text_encoder.safetensors"),
	}
	gb := files["b_text_encoder"]
	for _, pc := range precisions {
		t.Run(pc.name, func(t *testing.T) {
			path := golden.Path(t, "blipdiffusion-tiny", "text_encoder", pc.file)
			cpuOut := map[string][]float32{} // the CPU reference's outputs on these weights
			modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, bc modeltest.Backend) {
				w, err := loader.ReadSafetensorsWeights(b, "text_encoder", path, pc.p)
				require.NoError(t, err)
				defer w.Free(b)
				m, err := Load(b, cfg, w)
				if err != nil {
					t.Fatal(err)
				}
				sameRel := bc.SameWeightsRel(b)
				for _, ec := range encodeCases {
					t.Run(ec.name, func(t *testing.T) {
						ids := idRows(t, files[ec.idsFile], ec.ids)
						var ctxT *tensor.Tensor
						if ec.ctx != "" {
							v, s := gb.MustF32(t, ec.ctx)
							ctxT = b.FromF32("ctx", v, s...)
							defer b.Free(ctxT)
						}
						var traced map[string]modeltest.Captured
						m.Trace, traced = modeltest.Capture(t, b)
						start := time.Now()
						out, err := m.Encode(b, ids, ctxT, ec.pos)
						m.Trace = nil
						require.NoError(t, err)
						v, err := b.Read(context.Background(), out)
						require.NoError(t, err)
						traced["out"] = modeltest.Captured{Values: v, Shape: out.Shape}
						b.Free(out)
						check := func(name string, got modeltest.Captured) {
							t.Helper()
							if name == "" {
								return
							}
							want, shape := gb.MustF32(t, name)
							if !slices.Equal(got.Shape, shape) {
								t.Fatalf("%s: shape %v, golden %v", name, got.Shape, shape)
							}
							v := got.Values
							golden.Close(t, name, v, want, pc.goldenRel, 1e-6)
							if sameRel == 0 {
								cpuOut[name] = v
							} else if ref, ok := cpuOut[name]; ok && pc.p == loader.PrecisionF16 {
								golden.Close(t, name+" vs cpu on the same f16 weights", v, ref, sameRel, 1e-6)
							}
						}
						check(ec.embeddings, traced["embeddings"])
						check(ec.layer0, traced["encoder.layers.0"])
						check(ec.last, traced["out"])
						t.Logf("%s %s: %v", b.Name(), ec.name, time.Since(start))
					})
				}
			})
		})
	}
}

// TestContextEdges inserts context before the first and after the last
// token (positions the goldens do not cover) and checks the embeddings
// against rows gathered on the host.
func TestContextEdges(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "text_encoder", golden.Path(t, "blipdiffusion-tiny", "text_encoder", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	d, nt, nc := cfg.Hidden, 5, 3
	ids := [][]int32{{49406, 320, 1125, 539, 49407}, {49406, 2368, 49407, 49407, 49407}}
	ctxV := make([]float32, 2*nc*d)
	for i := range ctxV {
		ctxV[i] = float32(i%17) / 7
	}
	ctxT := b.FromF32("ctx", ctxV, 2, nc, d)
	tokTab, _ := b.Read(context.Background(), m.tokenEmb.Table)
	posTab, _ := b.Read(context.Background(), m.posEmb.Table)
	pos := []int{0, nt}
	var traced map[string]modeltest.Captured
	m.Trace, traced = modeltest.Capture(t, b)
	out, err := m.Encode(b, ids, ctxT, pos)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, nt + nc, d}; !slices.Equal(out.Shape, want) {
		t.Fatalf("output %v, want %v", out.Shape, want)
	}
	got := traced["embeddings"].Values
	var want []float32
	for r := range ids {
		var rows [][]float32
		for _, id := range ids[r] {
			rows = append(rows, tokTab[int(id)*d:][:d])
		}
		var ctxRows [][]float32
		for j := range nc {
			ctxRows = append(ctxRows, ctxV[(r*nc+j)*d:][:d])
		}
		rows = slices.Insert(rows, pos[r], ctxRows...)
		for s, row := range rows {
			for c, v := range row {
				want = append(want, v+posTab[s*d+c])
			}
		}
	}
	golden.Close(t, "embeddings", got, want, 0, 1e-6)
}

func TestInputErrors(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "text_encoder", golden.Path(t, "blipdiffusion-tiny", "text_encoder", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx2 := b.FromF32("ctx", make([]float32, 2*16*cfg.Hidden), 2, 16, cfg.Hidden)
	row := func(n int) []int32 { return make([]int32, n) }
	for _, tc := range []struct {
		name string
		ids  [][]int32
		ctx  *tensor.Tensor
		pos  []int
		msg  string
	}{
		{"no ids", nil, nil, nil, "no token ids"},
		{"ragged", [][]int32{row(3), row(4)}, nil, nil, "row 1 has 4 tokens"},
		{"bad id", [][]int32{{0, int32(cfg.VocabSize)}}, nil, nil, "outside the vocabulary"},
		{"too long", [][]int32{row(cfg.MaxPositions + 1)}, nil, nil, "exceeds max_position_embeddings"},
		{"too long with ctx", [][]int32{row(cfg.MaxPositions - 15), row(cfg.MaxPositions - 15)}, ctx2, []int{1, 1}, "exceeds max_position_embeddings"},
		{"ctx batch", [][]int32{row(4)}, ctx2, []int{1}, "must be f32 [1, Lc"},
		{"positions", [][]int32{row(4), row(4)}, ctx2, []int{1}, "1 context positions for 2 rows"},
		{"position range", [][]int32{row(4), row(4)}, ctx2, []int{1, 5}, "outside [0, 4]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Encode(b, tc.ids, tc.ctx, tc.pos)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one containing %q", err, tc.msg)
			}
			if b.Err() != nil {
				t.Fatalf("input error left a sticky backend error: %v", b.Err())
			}
		})
	}
}

// TestTensorsMatchCheckpoint: the tensor list the config implies is
// exactly the checkpoint's (less the position_ids buffer), for the tiny
// model's file and, for the released model's config, the released
// checkpoint's table (testdata/blipdiffusion_tensors.tsv).
func TestTensorsMatchCheckpoint(t *testing.T) {
	t.Run("tiny", func(t *testing.T) {
		f, err := golden.Load(golden.Path(t, "blipdiffusion-tiny", "text_encoder", "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		file := map[string][]int{}
		for _, n := range f.Names() {
			ti, _ := f.Info(n)
			if !loader.Skip(n, ti.DType) {
				file[n] = ti.Shape
			}
		}
		modeltest.CompareTensorLists(t, Tensors(tinyConfig(t)), file)
	})
	t.Run("released", func(t *testing.T) {
		cfg, err := ParseConfig([]byte(`{"architectures": ["ContextCLIPTextModel"], "hidden_act": "quick_gelu",
			"hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
			"num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768, "vocab_size": 49408}`))
		if err != nil {
			t.Fatal(err)
		}
		modeltest.CompareTensorLists(t, Tensors(cfg), modeltest.SpecTensors(t, "text_encoder"))
	})
}

func TestLoadMissing(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	for _, tc := range []struct {
		name  string
		edit  func(shapes map[string][]int)
		want  string
		shape bool
	}{
		{"missing", func(s map[string][]int) { delete(s, "text_model.encoder.layers.1.mlp.fc2.bias") },
			"text_model.encoder.layers.1.mlp.fc2.bias", false},
		{"shape", func(s map[string][]int) { s["text_model.final_layer_norm.weight"] = []int{cfg.Hidden + 1} },
			"text_model.final_layer_norm.weight", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shapes := Tensors(cfg)
			tc.edit(shapes)
			w := tensor.NewWeights("text_encoder")
			for n, s := range shapes {
				w.Put(n, b.New(n, tensor.F32, s...))
			}
			_, err := Load(b, cfg, w)
			var me *tensor.MissingError
			if !errors.As(err, &me) || me.Name != tc.want || (me.Have != nil) != tc.shape {
				t.Fatalf("error %v, want a MissingError for %s", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want Config
		err  string
	}{
		{"defaults", `{}`, Config{VocabSize: 49408, Hidden: 512, Intermediate: 2048, Layers: 12, Heads: 8,
			MaxPositions: 77, Act: tensor.ActQuickGELU, LayerNormEps: 1e-5}, ""},
		{"overrides", `{"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128, "hidden_act": "gelu", "layer_norm_eps": 1e-6}`,
			Config{VocabSize: 49408, Hidden: 32, Intermediate: 128, Layers: 2, Heads: 4,
				MaxPositions: 77, Act: tensor.ActGELU, LayerNormEps: 1e-6}, ""},
		{"heads", `{"hidden_size": 30, "num_attention_heads": 4}`, Config{}, "hidden_size must be a multiple of num_attention_heads 4, got 30"},
		{"act", `{"hidden_act": "relu"}`, Config{}, "hidden_act is not supported: unsupported activation"},
		{"zero", `{"num_hidden_layers": 0}`, Config{}, "text_encoder/config.json: num_hidden_layers must be ≥ 1, got 0"},
		{"syntax", `{`, Config{}, "clip: text_encoder/config.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestFreesIntermediates: Encode leaves only its output allocated, traced
// or not.
func TestFreesIntermediates(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "text_encoder", golden.Path(t, "blipdiffusion-tiny", "text_encoder", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	ctxT := b.FromF32("ctx", make([]float32, 2*16*cfg.Hidden), 2, 16, cfg.Hidden)
	ids := [][]int32{make([]int32, 61), make([]int32, 61)}
	base := b.Allocated()
	out, err := m.Encode(b, ids, ctxT, []int{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Allocated()-base, int64(4*out.Numel()); got != want {
		t.Errorf("after Encode %d bytes are live beyond the inputs, want only the output's %d", got, want)
	}
	b.Free(out)
	m.Trace, _ = modeltest.Capture(t, b)
	out, err = m.Encode(b, ids, ctxT, []int{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	b.Free(out)
	if got := b.Allocated() - base; got != 0 {
		t.Errorf("after a traced run %d bytes are still live", got)
	}
}

// TestEncodeInjected checks ELITE's injection at the embedding level: the
// words overwrite the placeholder's rows, later tokens shift right by L−1
// and are cut, a row with index −1 stays plain, and bad indices are refused.
func TestEncodeInjected(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "text_encoder", golden.Path(t, "blipdiffusion-tiny", "text_encoder", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free(b)
	d := cfg.Hidden
	ids := [][]int32{{49406, 320, 338, 539, 49407, 49407}, {49406, 2368, 49407, 49407, 49407, 49407}}
	tokTab, _ := b.Read(context.Background(), m.tokenEmb.Table)
	posTab, _ := b.Read(context.Background(), m.posEmb.Table)
	for _, nw := range []int{1, 2} {
		wv := make([]float32, 2*nw*d)
		for i := range wv {
			wv[i] = float32(i%13)/5 - 1
		}
		words := b.FromF32("words", wv, 2, nw, d)
		index := []int{2, -1}
		var traced map[string]modeltest.Captured
		m.Trace, traced = modeltest.Capture(t, b)
		out, err := m.EncodeInjected(b, ids, words, index)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{2, len(ids[0]), d}; !slices.Equal(out.Shape, want) {
			t.Fatalf("output %v, want %v", out.Shape, want)
		}
		b.Free(out)
		var want []float32
		for r := range ids {
			var rows [][]float32
			for _, id := range ids[r] {
				rows = append(rows, tokTab[int(id)*d:][:d])
			}
			if p := index[r]; p >= 0 {
				var wr [][]float32
				for j := range nw {
					wr = append(wr, wv[(r*nw+j)*d:][:d])
				}
				rows = slices.Replace(rows, p, p+1, wr...)[:len(ids[r])]
			}
			for s, row := range rows {
				for c, v := range row {
					want = append(want, v+posTab[s*d+c])
				}
			}
		}
		golden.Close(t, "injected embeddings", traced["embeddings"].Values, want, 0, 1e-6)
		m.Trace = nil
		for _, bad := range [][]int{{6, -1}, {len(ids[0]) - nw + 1, 0}} {
			if nw == 1 && bad[0] == len(ids[0]) {
				continue
			}
			if _, err := m.EncodeInjected(b, ids, words, bad); err == nil || !strings.Contains(err.Error(), "do not fit") {
				t.Errorf("%d words at %v: err = %v", nw, bad, err)
			}
		}
		b.Free(words)
	}
}
