package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"

	"harmony/engine/cpu"
	"harmony/engine/models/catalog"
	"harmony/engine/models/modeltest"
	"harmony/engine/pipeline"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/www"
)

// readTSV returns blipdiffusion_tensors.tsv as component/name → shape and
// the dtype the synthetic files store.
func readTSV(t *testing.T) map[string]Tensor {
	t.Helper()
	out := map[string]Tensor{}
	for _, r := range modeltest.ReleasedTensors(t) {
		dt := loader.F16 // the synthetic files are fp16 where the released ones are f32
		if strings.HasPrefix(r.DType, "i64") {
			dt = loader.I64
		}
		out[r.Component+"/"+r.Name] = Tensor{Component: r.Component, Name: r.Name, Shape: r.Shape, DType: dt}
	}
	return out
}

// TestPlanMatchesTSV: the synthetic checkpoint holds exactly the released
// tensors (names, shapes, and int64 for the buffers), 1,810 of them.
func TestPlanMatchesTSV(t *testing.T) {
	s, err := Plan()
	if err != nil {
		t.Fatal(err)
	}
	want := readTSV(t)
	if len(want) != 1810 {
		t.Fatalf("the tsv lists %d tensors, want 1,810 (the released checkpoint)", len(want))
	}
	got := map[string]Tensor{}
	for _, g := range s.Tensors {
		key := g.Component + "/" + g.Name
		if _, dup := got[key]; dup {
			t.Errorf("%s planned twice", key)
		}
		got[key] = g
		w, ok := want[key]
		switch {
		case !ok:
			t.Errorf("%s %v is not in the released checkpoint", key, g.Shape)
		case !slices.Equal(w.Shape, g.Shape) || w.DType != g.DType:
			t.Errorf("%s: planned %s%v, released %s%v", key, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
	for key, w := range want {
		if _, ok := got[key]; !ok {
			t.Errorf("%s %v missing from the plan", key, w.Shape)
		}
	}
	// The released fp32 files: 492 MB + 1.98 GB + 3.44 GB + 335 MB of fp32 is about 3.1 GB in fp16.
	var params int64
	for _, g := range s.Tensors {
		if g.DType == loader.F16 {
			params += g.Numel()
		}
	}
	t.Logf("%d tensors, %d parameters, %.2f GB in fp16", len(s.Tensors), params, float64(s.Bytes())/1e9)
	if params < 1.55e9 || params > 1.57e9 {
		t.Errorf("%d parameters, want about 1.56 G", params)
	}
	// Every component's tensors are what the loader's shape check wants.
	for _, c := range catalog.BLIPDiffusion.Models() {
		comp := c.Name
		exp, err := pipeline.ExpectedShapes(comp, s.Configs[comp])
		if err != nil {
			t.Fatal(err)
		}
		for name, shape := range exp {
			if g, ok := got[comp+"/"+name]; !ok && !(comp == "vae" && strings.Contains(name, "mid_block.attentions.0.to_")) {
				t.Errorf("%s/%s: expected by the model, not planned", comp, name)
			} else if ok && !slices.Equal(g.Shape, shape) {
				t.Errorf("%s/%s: planned %v, the model expects %v", comp, name, g.Shape, shape)
			}
		}
	}
}

// TestConfigsParse: the configs carry the released sizes.
func TestConfigsParse(t *testing.T) {
	s, err := Plan()
	if err != nil {
		t.Fatal(err)
	}
	var mi map[string]any
	if err := json.Unmarshal(s.ModelIndex, &mi); err != nil {
		t.Fatal(err)
	}
	comps, err := loader.ParseModelIndex(s.ModelIndex, "model_index.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != 7 {
		t.Errorf("%d components in model_index.json, want 7", len(comps))
	}
	for name, b := range s.Configs {
		if !json.Valid(b) {
			t.Errorf("%s: invalid JSON", name)
		}
	}
	var q struct {
		Vision struct {
			Eps float64 `json:"layer_norm_eps"`
		} `json:"vision_config"`
	}
	if err := json.Unmarshal(s.Configs["qformer"], &q); err != nil || q.Vision.Eps != 1e-5 {
		t.Errorf("qformer vision layer_norm_eps %v (%v), want 1e-5", q.Vision.Eps, err)
	}
}

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		name  string
		shape []int
		want  initKind
	}{
		{"text_model.embeddings.token_embedding.weight", []int{49408, 768}, initEmbedding},
		{"embeddings.position_embeddings.weight", []int{512, 768}, initEmbedding},
		{"visual_encoder.embeddings.patch_embedding.weight", []int{1024, 3, 14, 14}, initMatrix},
		{"visual_encoder.embeddings.class_embedding", []int{1, 1, 1024}, initEmbedding},
		{"query_tokens", []int{1, 16, 768}, initEmbedding},
		{"time_embedding.linear_1.weight", []int{1280, 320}, initMatrix},
		{"time_embedding.linear_1.bias", []int{1280}, initBias},
		{"down_blocks.0.resnets.0.norm1.weight", []int{320}, initNorm},
		{"encoder.layer.0.attention.output.LayerNorm.weight", []int{768}, initNorm},
		{"conv_in.weight", []int{320, 4, 3, 3}, initMatrix},
		{"embeddings.position_ids", []int{1, 512}, initPositionIDs},
	} {
		if got := kindOf(c.name, c.shape); got != c.want {
			t.Errorf("%s: kind %d, want %d", c.name, got, c.want)
		}
	}
}

// TestValues: deterministic, independent of chunking, and scaled.
func TestValues(t *testing.T) {
	shape := []int{640, 320, 3, 3}
	all := make([]float32, 5000)
	NewValues("unet", "down_blocks.1.resnets.0.conv1.weight", shape).Fill(all)
	v := NewValues("unet", "down_blocks.1.resnets.0.conv1.weight", shape)
	for i := 0; i < len(all); {
		n := min(1+i%37, len(all)-i)
		part := make([]float32, n)
		v.Fill(part)
		if !slices.Equal(part, all[i:i+n]) {
			t.Fatalf("chunked values differ at %d", i)
		}
		i += n
	}
	other := make([]float32, 5000)
	NewValues("unet", "down_blocks.1.resnets.0.conv2.weight", shape).Fill(other)
	if slices.Equal(other, all) {
		t.Error("two names gave the same values")
	}
	var sum, sq float64
	for _, x := range all {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	std := math.Sqrt(sq/float64(len(all)) - (sum/float64(len(all)))*(sum/float64(len(all))))
	if want := 1 / math.Sqrt(320*9); math.Abs(std/want-1) > 0.05 {
		t.Errorf("std %.4g, want 1/√fan_in = %.4g", std, want)
	}
	ids := make([]float32, 4)
	NewValues("qformer", "embeddings.position_ids", []int{1, 512}).Fill(ids)
	if !slices.Equal(ids, []float32{0, 1, 2, 3}) {
		t.Errorf("position_ids %v", ids)
	}
}

func TestF16Bits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(f float32) {
		want := float16.Fromfloat32(f).Bits()
		if got := f16Bits(f); got != want && !(math.IsNaN(float64(f)) && got&0x7c00 == 0x7c00 && got&0x3ff != 0) {
			t.Fatalf("f16Bits(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.99, 65520, 1e9, -1e9,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10} {
		check(f)
	}
	for range 2_000_000 {
		check(math.Float32frombits(r.Uint32()))
		check(float32(r.NormFloat64() * 0.05))
	}
}

// TestStreamedSafetensors: the streamed file parses with the loader's
// strict reader and holds the generated values.
func TestStreamedSafetensors(t *testing.T) {
	ts := []Tensor{
		{Component: "qformer", Name: "a.weight", Shape: []int{3, 700, 300}, DType: loader.F16},
		{Component: "qformer", Name: "b.bias", Shape: []int{5}, DType: loader.F16},
		{Component: "qformer", Name: "embeddings.position_ids", Shape: []int{1, 512}, DType: loader.I64},
	}
	var buf bytes.Buffer
	var n int64
	if err := writeSafetensors(context.Background(), &buf, ts, func(k int64) { n += k }); err != nil {
		t.Fatal(err)
	}
	f, err := loader.ReadSafetensorsHeader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "mem")
	if err != nil {
		t.Fatal(err)
	}
	if want := ts[0].Bytes() + ts[1].Bytes() + ts[2].Bytes(); n != want || int64(buf.Len())-f.DataBase != want {
		t.Errorf("%d bytes reported, %d written, want %d", n, int64(buf.Len())-f.DataBase, want)
	}
	for _, tt := range ts {
		ti := f.Find(tt.Name)
		if ti == nil || ti.DType != tt.DType || !slices.Equal(ti.Shape, tt.Shape) {
			t.Fatalf("%s: header has %v", tt.Name, ti)
		}
		want := make([]float32, tt.Numel())
		NewValues(tt.Component, tt.Name, tt.Shape).Fill(want)
		raw := buf.Bytes()[ti.Offset : ti.Offset+ti.Size]
		for i, w := range want {
			var g float32
			if tt.DType == loader.I64 {
				g = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
			} else {
				g = float16.Frombits(binary.LittleEndian.Uint16(raw[2*i:])).Float32()
			}
			if math.Abs(float64(g-w)) > 1e-3*math.Abs(float64(w))+1e-7 {
				t.Fatalf("%s[%d] = %g, want %g", tt.Name, i, g, w)
			}
		}
	}
}

// TestWriteTiny writes a synthetic checkpoint with the tiny demo model's
// configs, packs it and loads both forms through the pipeline: the same
// code as the full-size run, at test size.
func TestWriteTiny(t *testing.T) {
	demo := www.DemoModel()
	mb, err := fs.ReadFile(demo, loader.ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	man, err := loader.ParseManifest(mb, "demo")
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string][]byte{}
	for c, v := range man.Configs {
		configs[c] = v
	}
	s, err := PlanFrom(man.ModelIndex, configs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var last int64
	if err := s.Write(context.Background(), dir, WriteOptions{Tokenizer: demo, Progress: func(d, _ int64) { last = d }}); err != nil {
		t.Fatal(err)
	}
	if last != s.Bytes() {
		t.Errorf("progress ended at %d of %d bytes", last, s.Bytes())
	}
	ctx := context.Background()
	packDir := dir + "/pack"
	if _, err := loader.WritePack(ctx, loader.NewDirSource(dir), packDir, &loader.PackOptions{Shapes: pipeline.ExpectedShapes}); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{dir, packDir} {
		b := cpu.New()
		lm, err := loader.Load(ctx, loader.NewDirSource(src), b, &loader.Options{Shapes: pipeline.ExpectedShapes})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		m, err := pipeline.Assemble(b, pipeline.ComponentsFromLoader(lm))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		// Matrices arrive as f16 (the policy), biases widened to f32.
		for name, dt := range map[string]tensor.DType{"conv_in.weight": tensor.F16, "conv_in.bias": tensor.F32} {
			if w, err := lm.Weights["unet"].Get(name); err != nil || w.DType != dt {
				t.Errorf("%s: unet %s: %v (%v), want %v", src, name, w, err, dt)
			}
		}
		m.Close()
	}
}
