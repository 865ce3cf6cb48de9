// blip2_test.go checks the subject encoder (vision encoder, Q-Former,
// ProjLayer) against the reference's golden tensors (testdata/golden) on
// every backend, with fp32 and fp16 weights, and checks its tensor list,
// config parsing and input checks.
package blip2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "qformer", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// releasedConfig is the compact Blip2Config of Salesforce/blipdiffusion
// (the converter's non-default values, vision eps 1e-5 as expected in the
// full file).
const releasedConfig = `{"num_query_tokens": 16,
	"vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
		"hidden_act": "quick_gelu", "layer_norm_eps": 1e-05},
	"qformer_config": {"cross_attention_frequency": 1, "encoder_hidden_size": 1024, "vocab_size": 30523},
	"text_config": {"model_type": "opt"}}`

// intRows reads an integer golden tensor [B, T] as rows.
func intRows(t *testing.T, f *golden.File, name string) [][]int32 {
	t.Helper()
	v, s := f.MustInts(t, name)
	rows := make([][]int32, s[0])
	for r := range rows {
		for _, x := range v[r*s[1] : (r+1)*s[1]] {
			rows[r] = append(rows[r], int32(x))
		}
	}
	return rows
}

// nhwc reads golden pixel_values [B, C, H, W] and permutes them to
// [B, H, W, C], the layout the engine's image preprocessing produces.
func nhwc(t *testing.T, f *golden.File, name string) ([]float32, []int) {
	t.Helper()
	v, s := f.MustF32(t, name)
	nb, c, h, w := s[0], s[1], s[2], s[3]
	out := make([]float32, len(v))
	for b := range nb {
		for ch := range c {
			for y := range h {
				for x := range w {
					out[((b*h+y)*w+x)*c+ch] = v[((b*c+ch)*h+y)*w+x]
				}
			}
		}
	}
	return out, []int{nb, h, w, c}
}

// precisions are the weight files and how close each must come to the
// fp32 golden. fp16 weights: the reference itself moves by up to 7.5e-4
// on these tensors (tolerances.json, fp16weights_upcast_vs_fp32weights).
var precisions = []struct {
	name      string
	file      string
	p         loader.Precision
	goldenRel float64
}{
	{"f32", "model.safetensors", loader.PrecisionF32, 1e-5},
	{"f16", "model.fp16.safetensors", loader.PrecisionF16, 3e-3},
}

// encodeCases are the golden Q-Former calls and the tensors each checks,
// by the trace field that holds them.
var encodeCases = []struct {
	name      string
	pixels    string
	ids, mask string
	checks    []string // golden names; the suffix after the case prefix picks the tensor
	prefix    string
}{
	{"dog", "qformer.dog.pixel_values_in", "tok.bert.dog.ids", "tok.bert.dog.attention_mask",
		[]string{"vision_embeddings", "vision_layer0_out", "vision_last_hidden_state", "text_embeddings_out",
			"layer0_out", "last_hidden_state", "query_output", "projected_query_embeds"}, "qformer.dog."},
	{"batch3", "qformer.batch3.pixel_values_in", "tok.bert.subjects3.ids", "tok.bert.subjects3.attention_mask",
		[]string{"last_hidden_state", "projected_query_embeds"}, "qformer.batch3."},
}

// traceName is the traced module a golden name refers to ("out": the
// output).
func traceName(cfg Config, what string) string {
	switch what {
	case "vision_embeddings":
		return "visual_encoder.embeddings"
	case "vision_layer0_out":
		return "visual_encoder.encoder.layers.0"
	case "vision_last_hidden_state":
		return "visual_encoder.post_layernorm"
	case "text_embeddings_out":
		return "embeddings"
	case "layer0_out":
		return "encoder.layer.0"
	case "last_hidden_state":
		return fmt.Sprintf("encoder.layer.%d", cfg.QFormer.Layers-1)
	case "query_output":
		return "query_output"
	case "projected_query_embeds":
		return "out"
	}
	panic("unknown golden tensor " + what)
}

func TestGolden(t *testing.T) {
	cfg := tinyConfig(t)
	gd := golden.Open(t, "golden", "d_qformer.safetensors")
	ga := golden.Open(t, "golden", "a_tokenizers.safetensors")
	for _, pc := range precisions {
		t.Run(pc.name, func(t *testing.T) {
			path := golden.Path(t, "blipdiffusion-tiny", "qformer", pc.file)
			cpuOut := map[string][]float32{} // the CPU reference's outputs on these weights
			modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, bc modeltest.Backend) {
				w, err := loader.ReadSafetensorsWeights(b, "qformer", path, pc.p)
				require.NoError(t, err)
				defer w.Free(b)
				m, err := Load(b, cfg, w)
				if err != nil {
					t.Fatal(err)
				}
				sameRel := bc.SameWeightsRel(b)
				for _, ec := range encodeCases {
					t.Run(ec.name, func(t *testing.T) {
						pv, ps := nhwc(t, gd, ec.pixels)
						pixels := b.FromF32("pixels", pv, ps...)
						defer b.Free(pixels)
						var traced map[string]modeltest.Captured
						m.Trace, traced = modeltest.Capture(t, b)
						start := time.Now()
						out, err := m.Encode(b, pixels, intRows(t, ga, ec.ids), intRows(t, ga, ec.mask))
						m.Trace = nil
						require.NoError(t, err)
						elapsed := time.Since(start)
						ov, err := b.Read(context.Background(), out)
						require.NoError(t, err)
						traced["out"] = modeltest.Captured{Values: ov, Shape: out.Shape}
						b.Free(out)
						for _, what := range ec.checks {
							name := ec.prefix + what
							got := traced[traceName(cfg, what)]
							want, shape := gd.MustF32(t, name)
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
						t.Logf("%s %s: %v", b.Name(), ec.name, elapsed)
					})
				}
			})
		})
	}
}

// TestNoText: with every text token masked, the query rows cannot see the
// text (exp(−10000) underflows to 0) and only the query FFN touches them,
// so the subject embeddings must equal a query-only run's.
func TestNoText(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "qformer", golden.Path(t, "blipdiffusion-tiny", "qformer", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	gd := golden.Open(t, "golden", "d_qformer.safetensors")
	pv, ps := nhwc(t, gd, "qformer.dog.pixel_values_in")
	pixels := b.FromF32("pixels", pv, ps...)
	run := func(ids, mask [][]int32) []float32 {
		out, err := m.Encode(b, pixels, ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, cfg.NumQueryTokens, cfg.QFormer.Hidden}; !slices.Equal(out.Shape, want) {
			t.Fatalf("output %v, want %v", out.Shape, want)
		}
		v, _ := b.Read(context.Background(), out)
		b.Free(out)
		return v
	}
	none := run(nil, nil)
	masked := run([][]int32{{101, 3899, 102}}, [][]int32{{0, 0, 0}})
	golden.Close(t, "masked text vs no text", masked, none, 0, 1e-6)
	seen := run([][]int32{{101, 3899, 102}}, nil)
	if d := golden.Compare(seen, none); d.MaxAbs < 1e-3 {
		t.Fatalf("unmasked text does not change the queries (%v): the mask test proves nothing", d)
	}
}

// TestCrossAttentionFrequency runs the tiny weights with cross-attention
// every second layer (layer 1 then has none and must not need its tensors).
func TestCrossAttentionFrequency(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.QFormer.CrossAttentionFrequency = 2
	names := Tensors(cfg)
	if _, ok := names["encoder.layer.1.crossattention.attention.query.weight"]; ok {
		t.Fatal("layer 1 lists cross-attention tensors with frequency 2")
	}
	if _, ok := names["encoder.layer.0.crossattention.attention.query.weight"]; !ok {
		t.Fatal("layer 0 lacks cross-attention tensors with frequency 2")
	}
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "qformer", golden.Path(t, "blipdiffusion-tiny", "qformer", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	pixels := b.FromF32("pixels", make([]float32, 224*224*3), 1, 224, 224, 3)
	out, err := m.Encode(b, pixels, [][]int32{{101, 3899, 102}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := b.Read(context.Background(), out)
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatal("non-finite output")
		}
	}
}

func TestInputErrors(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "qformer", golden.Path(t, "blipdiffusion-tiny", "qformer", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	px := func(nb, h int) *tensor.Tensor { return b.New("pixels", tensor.F32, nb, h, h, 3) }
	ok := [][]int32{{101, 3899, 102}}
	for _, tc := range []struct {
		name      string
		pixels    *tensor.Tensor
		ids, mask [][]int32
		msg       string
	}{
		{"nil pixels", nil, ok, nil, "pixels <nil>"},
		{"image size", px(1, 112), ok, nil, "must be f32 [B, 224, 224, 3]"},
		{"rows", px(2, 224), ok, nil, "1 text rows for 2 images"},
		{"ragged", px(2, 224), [][]int32{{1, 2}, {1}}, nil, "text row 1 has 1 tokens"},
		{"bad id", px(1, 224), [][]int32{{int32(cfg.QFormer.VocabSize)}}, nil, "outside the vocabulary"},
		{"mask rows", px(1, 224), ok, [][]int32{{1, 1, 1}, {1, 1, 1}}, "2 attention mask rows"},
		{"mask len", px(1, 224), ok, [][]int32{{1, 1}}, "mask row 0 has 2 entries"},
		{"mask value", px(1, 224), ok, [][]int32{{1, 2, 1}}, "not 0 or 1"},
		{"too long", px(1, 224), [][]int32{make([]int32, cfg.QFormer.MaxPositions+1)}, nil, "exceed max_position_embeddings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Encode(b, tc.pixels, tc.ids, tc.mask)
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
		f, err := golden.Load(golden.Path(t, "blipdiffusion-tiny", "qformer", "model.safetensors"))
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
		cfg, err := ParseConfig([]byte(releasedConfig))
		if err != nil {
			t.Fatal(err)
		}
		modeltest.CompareTensorLists(t, Tensors(cfg), modeltest.SpecTensors(t, "qformer"))
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
		{"missing", func(s map[string][]int) { delete(s, "encoder.layer.1.crossattention.attention.key.bias") },
			"encoder.layer.1.crossattention.attention.key.bias", false},
		{"shape", func(s map[string][]int) {
			s["visual_encoder.embeddings.position_embedding"] = []int{1, 197, cfg.Vision.Hidden}
		},
			"visual_encoder.embeddings.position_embedding", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shapes := Tensors(cfg)
			tc.edit(shapes)
			w := tensor.NewWeights("qformer")
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

// TestParseConfigDefaults: the tiny model's compact config.json, with the
// defaults filled in, must agree with the configuration the reference
// actually ran (golden/resolved_configs.json).
func TestParseConfigDefaults(t *testing.T) {
	cfg := tinyConfig(t)
	data, err := os.ReadFile(golden.Path(t, "golden", "resolved_configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		QFormer struct {
			NumQueryTokens int             `json:"num_query_tokens"`
			Vision         json.RawMessage `json:"vision_config"`
			QFormer        json.RawMessage `json:"qformer_config"`
		} `json:"qformer"`
	}
	if err := json.Unmarshal(data, &rc); err != nil {
		t.Fatal(err)
	}
	var v visionFile
	var q qformerFile
	if err := json.Unmarshal(rc.QFormer.Vision, &v); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rc.QFormer.QFormer, &q); err != nil {
		t.Fatal(err)
	}
	vact, _ := tensor.ParseAct(v.HiddenAct)
	qact, _ := tensor.ParseAct(q.HiddenAct)
	want := Config{
		NumQueryTokens: rc.QFormer.NumQueryTokens,
		Vision: VisionConfig{Hidden: v.Hidden, Intermediate: v.Intermediate, Layers: v.Layers, Heads: v.Heads,
			ImageSize: v.ImageSize, PatchSize: v.PatchSize, Act: vact, LayerNormEps: float32(v.LayerNormEps), QKVBias: v.QKVBias},
		QFormer: QFormerConfig{VocabSize: q.VocabSize, Hidden: q.Hidden, Layers: q.Layers, Heads: q.Heads,
			Intermediate: q.Intermediate, MaxPositions: q.MaxPositions, Act: qact, LayerNormEps: float32(q.LayerNormEps),
			CrossAttentionFrequency: q.CrossAttentionFrequency, EncoderHidden: q.EncoderHidden},
	}
	if cfg != want {
		t.Fatalf("parsed %+v\nresolved %+v", cfg, want)
	}
	if cfg.Vision.LayerNormEps != 1e-6 {
		t.Fatalf("vision layer_norm_eps %g, the tiny model runs with 1e-6", cfg.Vision.LayerNormEps)
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json, err string
		check           func(c Config) bool
	}{
		{"released", releasedConfig, "", func(c Config) bool {
			return c.NumQueryTokens == 16 && c.Vision.Hidden == 1024 && c.Vision.Heads == 16 && c.Vision.Layers == 23 &&
				c.Vision.Positions() == 257 && c.Vision.LayerNormEps == 1e-5 && c.Vision.Act == tensor.ActQuickGELU &&
				c.QFormer.Hidden == 768 && c.QFormer.Heads == 12 && c.QFormer.Layers == 12 && c.QFormer.Intermediate == 3072 &&
				c.QFormer.MaxPositions == 512 && c.QFormer.LayerNormEps == 1e-12 && c.QFormer.Act == tensor.ActGELU &&
				c.QFormer.CrossAttentionFrequency == 1 && c.QFormer.EncoderHidden == 1024 && c.QFormer.VocabSize == 30523
		}},
		{"position type", `{"qformer_config": {"position_embedding_type": "relative_key"}}`, "position_embedding_type", nil},
		{"act", `{"vision_config": {"hidden_act": "relu"}}`, "vision_config.hidden_act is not supported: unsupported activation", nil},
		{"heads", `{"qformer_config": {"num_attention_heads": 5}}`, "qformer_config.hidden_size must be a multiple of qformer_config.num_attention_heads 5", nil},
		{"patch", `{"vision_config": {"patch_size": 15}}`, "vision_config.image_size must be a multiple of vision_config.patch_size 15", nil},
		{"encoder width", `{"vision_config": {"hidden_size": 1024}}`, "qformer_config.encoder_hidden_size must equal vision_config.hidden_size 1024", nil},
		{"zero", `{"num_query_tokens": 0}`, "num_query_tokens must be ≥ 1, got 0", nil},
		{"syntax", `[`, "blip2: qformer/config.json", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
}

// TestFreesIntermediates: Encode leaves only its output allocated, traced
// or not.
func TestFreesIntermediates(t *testing.T) {
	cfg := tinyConfig(t)
	b := cpu.New()
	w, err := loader.ReadSafetensorsWeights(b, "qformer", golden.Path(t, "blipdiffusion-tiny", "qformer", "model.safetensors"), loader.PrecisionF32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		nb        int
		ids, mask [][]int32
	}{
		{"text", 2, [][]int32{{101, 3899, 102}, {101, 102, 0}}, [][]int32{{1, 1, 1}, {1, 1, 0}}},
		{"no text, one image", 1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pixels := b.New("pixels", tensor.F32, tc.nb, 224, 224, 3)
			defer b.Free(pixels)
			base := b.Allocated()
			out, err := m.Encode(b, pixels, tc.ids, tc.mask)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b.Allocated()-base, int64(4*out.Numel()); got != want {
				t.Errorf("after Encode %d bytes are live beyond the inputs, want only the output's %d", got, want)
			}
			b.Free(out)
			m.Trace, _ = modeltest.Capture(t, b)
			out, err = m.Encode(b, pixels, tc.ids, tc.mask)
			m.Trace = nil
			if err != nil {
				t.Fatal(err)
			}
			b.Free(out)
			if got := b.Allocated() - base; got != 0 {
				t.Errorf("after a traced run %d bytes are still live", got)
			}
		})
	}
}
