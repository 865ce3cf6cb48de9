package unet

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/models/modeltest"
	"harmony/engine/models/nn"
	"harmony/engine/models/released"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// withKeys returns the JSON object base with the keys of edits set.
func withKeys(t *testing.T, base, edits string) []byte {
	t.Helper()
	var m, e map[string]json.RawMessage
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(edits), &e); err != nil {
		t.Fatal(err)
	}
	maps.Copy(m, e)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTensorsSD15(t *testing.T) {
	cfg, err := ParseConfig([]byte(released.UNet))
	if err != nil {
		t.Fatal(err)
	}
	want := modeltest.SpecTensors(t, "unet")
	if len(want) != 686 {
		t.Fatalf("tsv lists %d unet tensors, want 686 (the released checkpoint)", len(want))
	}
	got := Tensors(cfg)
	modeltest.CompareTensorLists(t, got, want)
	var params int
	for _, s := range got {
		params += tensor.Numel(s)
	}
	if params != 859520964 { // SD 1.x UNet: 859,520,964 parameters
		t.Errorf("%d parameters, want 859,520,964", params)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	cases := []struct{ edit, key string }{
		{`"down_block_types": ["SimpleCrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]`, "down_block_types"},
		{`"up_block_types": ["UpBlock2D", "AttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]`, "up_block_types"},
		{`"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"`, "mid_block_type"},
		{`"resnet_time_scale_shift": "scale_shift"`, "resnet_time_scale_shift"},
		{`"class_embed_type": "timestep"`, "class_embed_type"},
		{`"addition_embed_type": "text_time"`, "addition_embed_type"},
		{`"dual_cross_attention": true`, "dual_cross_attention"},
		{`"act_fn": "gelu"`, "act_fn"},
		{`"downsample_padding": 0`, "downsample_padding"},
		{`"time_embedding_type": "fourier"`, "time_embedding_type"},
		{`"layers_per_block": [2, 2]`, "layers_per_block"},
		{`"attention_head_dim": [8, 8, 8]`, "attention_head_dim"},
		{`"norm_num_groups": 48`, "block_out_channels"},
		{`"norm_num_groups": null`, "norm_num_groups"},
		{`"encoder_hid_dim": 1024`, "encoder_hid_dim"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			_, err := ParseConfig(withKeys(t, released.UNet, "{"+c.edit+"}"))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, c.key) {
				t.Fatalf("err = %v, want a ConfigError on %s", err, c.key)
			}
		})
	}
}

func TestParseConfigLists(t *testing.T) {
	c, err := ParseConfig(withKeys(t, released.UNet, `{"layers_per_block": [1, 2, 2, 3], "attention_head_dim": [5, 10, 20, 20],
	 "transformer_layers_per_block": [1, 2, 3, 1], "only_cross_attention": [false, true, false, false],
	 "cross_attention_dim": [768, 768, 768, 768], "mid_block_type": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MidType != "" || !slices.Equal(c.LayersPerBlock, []int{1, 2, 2, 3}) || !slices.Equal(c.Heads, []int{5, 10, 20, 20}) {
		t.Fatalf("parsed %+v", c)
	}
	if !slices.Equal(c.DownTLayer[2], []int{3, 3}) || !slices.Equal(c.UpTLayer[1], []int{3, 3, 3}) || !slices.Equal(c.UpTLayer[3], []int{1, 1}) {
		t.Fatalf("transformer layers down %v up %v", c.DownTLayer, c.UpTLayer)
	}
	tn := Tensors(c)
	// up_blocks.1 mirrors down block 2 (3 transformer blocks, 20 heads).
	if _, ok := tn["up_blocks.1.attentions.2.transformer_blocks.2.attn1.to_q.weight"]; !ok {
		t.Error("up_blocks.1 lacks its third transformer block")
	}
	if s := tn["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight"]; !slices.Equal(s, []int{640, 768}) {
		t.Errorf("only_cross attn1.to_k %v, want [640 768]", s)
	}
	if _, ok := tn["mid_block.resnets.0.conv1.weight"]; ok {
		t.Error("mid_block_type null still builds a mid block")
	}
	if _, ok := tn["up_blocks.3.resnets.1.conv1.weight"]; !ok || tn["up_blocks.3.resnets.2.conv1.weight"] != nil {
		t.Error("up_blocks.3 must have layers_per_block[0]+1 = 2 resnets")
	}
}

// tiny loads the golden tiny UNet on b.
func tiny(t testing.TB, b tensor.Backend, file string, p loader.Precision) *UNet {
	t.Helper()
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	w, err := loader.ReadSafetensorsWeights(b, "unet", golden.Path(t, "blipdiffusion-tiny", "unet", file), p)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Load(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return u
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

// goldenInputs uploads e_unet's inputs: sample NHWC, timesteps, context.
func goldenInputs(t testing.TB, b tensor.Backend, g *golden.File) (*tensor.Tensor, []float32, *tensor.Tensor) {
	sv, ss := g.MustF32(t, "unet.in.sample")
	sample := b.FromF32("sample", nchwToNHWC(sv, ss), ss[0], ss[2], ss[3], ss[1])
	ids, _ := g.MustInts(t, "unet.in.timestep")
	cv, cs := g.MustF32(t, "unet.in.encoder_hidden_states")
	return sample, []float32{float32(ids[0])}, b.FromF32("context", cv, cs...)
}

// recorder is a Hook that asks for probabilities at chosen sites and keeps
// every site it sees.
type recorder struct {
	b     tensor.Backend
	want  map[string][2]int // site name → probability columns
	probs map[string][]float32
	seen  []nn.Site
}

func (r *recorder) Attention(s nn.Site) ([2]int, *tensor.Swap) {
	r.seen = append(r.seen, s)
	return r.want[s.Name], nil
}

func (r *recorder) Probs(s nn.Site, p *tensor.Tensor) {
	v, err := r.b.Read(context.Background(), p)
	if err == nil {
		r.probs[s.Name] = v
	}
	r.b.Free(p)
}

func TestGoldenUNet(t *testing.T) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) { testGoldenUNet(t, b) })
}

func testGoldenUNet(t *testing.T, b tensor.Backend) {
	g := golden.Open(t, "golden", "e_unet.safetensors")
	u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	sample, ts, ctx := goldenInputs(t, b, g)
	defer b.Free(sample, ctx)

	const first = "down_blocks.0.attentions.0.transformer_blocks.0"
	h, w := sample.Shape[1], sample.Shape[2]
	rec := &recorder{b: b, probs: map[string][]float32{}, want: map[string][2]int{
		first + ".attn1": {0, h * w},
		first + ".attn2": {0, ctx.Shape[1]},
	}}
	traced := map[string][]float32{}
	shapes := map[string][]int{}
	u.Trace = func(name string, x *tensor.Tensor) {
		v, err := b.Read(context.Background(), x)
		if err != nil {
			return
		}
		traced[name], shapes[name] = v, slices.Clone(x.Shape)
	}
	start := time.Now()
	out, err := u.Forward(b, sample, ts, ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: traced forward %v", b.Name(), time.Since(start))
	b.Free(out)
	traced["out"], shapes["out"] = got, out.Shape

	checks := []struct{ golden, ours string }{
		{"unet.time_proj_out", "time_proj"},
		{"unet.time_embedding_out", "time_embedding"},
		{"unet.conv_in_out", "conv_in"},
		{"unet.down0.resnet0_out", "down_blocks.0.resnets.0"},
		{"unet.down0.attn0_out", "down_blocks.0.attentions.0"},
		{"unet.down0.attn0.tblock0_out", first},
		{"unet.down0.attn0.tblock0.attn1_out", first + ".attn1"},
		{"unet.down0.attn0.tblock0.attn2_out", first + ".attn2"},
		{"unet.down0.attn0.tblock0.ff_out", first + ".ff"},
		{"unet.down0.attn0.tblock0.attn1_probs_headmean", "probs:" + first + ".attn1"},
		{"unet.down0.attn0.tblock0.attn2_probs_headmean", "probs:" + first + ".attn2"},
		{"unet.down_block0_out", "down_blocks.0"},
		{"unet.down_block1_out", "down_blocks.1"},
		{"unet.mid_block_out", "mid_block"},
		{"unet.up_block0_out", "up_blocks.0"},
		{"unet.up_block1_out", "up_blocks.1"},
		{"unet.conv_norm_out_out", "conv_norm_out"},
		{"unet.out.sample", "out"},
	}
	for _, c := range checks {
		want, ws := g.MustF32(t, c.golden)
		var have []float32
		if name, ok := strings.CutPrefix(c.ours, "probs:"); ok {
			have = rec.probs[name]
		} else {
			have = traced[c.ours]
			if len(ws) == 4 && len(shapes[c.ours]) == 4 {
				want = nchwToNHWC(want, ws)
			}
		}
		if have == nil {
			t.Errorf("%s: %s was not captured", c.golden, c.ours)
			continue
		}
		golden.Close(t, c.golden, have, want, 1e-5, 1e-6)
	}
}

// TestGoldenUNetF16 runs the fp16 weight file (F16 storage): the reference
// measured 1.1e-3 relative between fp16-rounded and fp32 weights.
func TestGoldenUNetF16(t *testing.T) {
	b := cpu.New()
	g := golden.Open(t, "golden", "e_unet.safetensors")
	u := tiny(t, b, "diffusion_pytorch_model.fp16.safetensors", loader.PrecisionF16)
	defer u.Free(b)
	sample, ts, ctx := goldenInputs(t, b, g)
	out, err := u.Forward(b, sample, ts, ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	want, ws := g.MustF32(t, "unet.out.sample")
	golden.Close(t, "out.sample (f16 weights)", got, nchwToNHWC(want, ws), 3e-3, 0)
}

// TestSitesAndMemory checks that Sites lists the layers Forward visits, that
// the feed-forward chunking changes nothing, and that a call leaves no
// tensor behind.
func TestSitesAndMemory(t *testing.T) {
	b := cpu.New()
	g := golden.Open(t, "golden", "e_unet.safetensors")
	u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	sample, ts, ctx := goldenInputs(t, b, g)
	h, w := sample.Shape[1], sample.Shape[2]
	base := b.Allocated()

	rec := &recorder{b: b, probs: map[string][]float32{}}
	start := time.Now()
	out, err := u.Forward(b, sample, ts, ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny UNet call (batch 2, %d×%d latent) on the CPU: %v", h, w, time.Since(start))
	ref, err := b.Read(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	b.Free(out)
	if leak := b.Allocated() - base; leak != 0 {
		t.Errorf("Forward left %d bytes allocated", leak)
	}

	sites := u.Sites(h, w)
	if !slices.Equal(sites, rec.seen) {
		t.Errorf("Sites(%d, %d) =\n%v\nForward visited\n%v", h, w, sites, rec.seen)
	}
	// Tiny config: CrossAttnDown at level 0 (2 layers), mid at level 1,
	// CrossAttnUp (up_blocks.1) at level 0 (3 layers); attn1 + attn2 each.
	if len(sites) != 2*(2+1+3) {
		t.Errorf("%d sites", len(sites))
	}
	for _, s := range sites {
		wantLevel := map[string]int{"down": 0, "mid": 1, "up": 0}[s.Block]
		if s.Level != wantLevel || s.H != h>>s.Level || s.W != w>>s.Level || s.Cross != strings.HasSuffix(s.Name, "attn2") {
			t.Errorf("site %+v", s)
		}
	}

	// One timestep for the whole batch equals the same one per entry.
	out, err = u.Forward(b, sample, []float32{ts[0], ts[0]}, ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := b.Read(context.Background(), out)
	b.Free(out)
	if d := golden.Compare(v, ref); d.MaxAbs != 0 {
		t.Errorf("per-entry timesteps differ: %v", d)
	}

	// Chunked feed-forward (a few rows at a time) is the same computation.
	u.FFChunkElems = 1000
	out, err = u.Forward(b, sample, ts, ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ = b.Read(context.Background(), out)
	b.Free(out)
	u.FFChunkElems = 0
	if d := golden.Compare(v, ref); d.MaxAbs != 0 {
		t.Errorf("chunked feed-forward differs: %v", d)
	}
	if leak := b.Allocated() - base; leak != 0 {
		t.Errorf("chunked Forward left %d bytes allocated", leak)
	}
}

func TestLoadNamesMissingTensor(t *testing.T) {
	b := cpu.New()
	data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	// Build a weight set from Tensors(cfg), then break it two ways.
	const gone = "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight"
	const bent = "mid_block.resnets.1.conv_shortcut.weight" // must not exist: Cin = Cout
	w := tensor.NewWeights("unet")
	for name, s := range Tensors(cfg) {
		if name != gone {
			w.Put(name, b.NewWeight(name, tensor.F32, s...))
		}
	}
	_, err = Load(b, cfg, w)
	var me *tensor.MissingError
	if !errors.As(err, &me) || me.Name != gone {
		t.Fatalf("err = %v, want a MissingError naming %s", err, gone)
	}
	w.Put(gone, b.NewWeight(gone, tensor.F32, 32, 31))
	_, err = Load(b, cfg, w)
	if !errors.As(err, &me) || me.Name != gone || me.Have == nil {
		t.Fatalf("err = %v, want a shape error on %s", err, gone)
	}
	w.Put(gone, b.NewWeight(gone, tensor.F32, 32, 32))
	w.Put(bent, b.NewWeight(bent, tensor.F32, 1))
	if _, err := Load(b, cfg, w); err != nil {
		t.Fatalf("extra tensors must be ignored: %v", err)
	}
}

func TestForwardRejectsBadInputs(t *testing.T) {
	b := cpu.New()
	u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	ctx := b.New("ctx", tensor.F32, 2, 77, 32)
	cases := []struct {
		name   string
		sample []int
		ts     []float32
		ctx    *tensor.Tensor
	}{
		{"odd size", []int{2, 15, 24, 4}, []float32{1}, ctx},
		{"channels", []int{2, 16, 24, 3}, []float32{1}, ctx},
		{"timesteps", []int{2, 16, 24, 4}, []float32{1, 2, 3}, ctx},
		{"context batch", []int{1, 16, 24, 4}, []float32{1}, ctx},
		{"context width", []int{2, 16, 24, 4}, []float32{1}, b.New("ctx", tensor.F32, 2, 77, 16)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bb := cpu.New()
			out, err := u.Forward(bb, b.New("s", tensor.F32, c.sample...), c.ts, c.ctx, nil)
			if err == nil || out != nil {
				t.Fatalf("no error (out %v)", out)
			}
		})
	}
}

// swapper swaps every up-block self-attention of batch entry 0 onto entry
// 1's keys and values, with masks of a constant value.
type swapper struct {
	b     tensor.Backend
	on    float32
	masks []*tensor.Tensor
}

func (s *swapper) Attention(site nn.Site) ([2]int, *tensor.Swap) {
	if site.Cross || site.Block != "up" {
		return [2]int{}, nil
	}
	n := site.H * site.W
	ones := make([]float32, 2*n)
	for i := range ones {
		ones[i] = s.on
	}
	rows := s.b.FromF32("rows", ones, 2, n)
	keys := s.b.FromF32("keys", slices.Repeat([]float32{1}, 2*n), 2, n)
	s.masks = append(s.masks, rows, keys)
	return [2]int{}, &tensor.Swap{Mode: tensor.SwapKV, Partner: []int{1, -1}, RowMask: rows, KeyMask: keys}
}

func (s *swapper) Probs(nn.Site, *tensor.Tensor) {}

// TestHookSwap checks the swap reaches the attention op: empty masks change
// nothing, full masks change entry 0 and leave its partner bit for bit.
func TestHookSwap(t *testing.T) {
	b := cpu.New()
	g := golden.Open(t, "golden", "e_unet.safetensors")
	u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
	defer u.Free(b)
	sample, ts, ctx := goldenInputs(t, b, g)
	run := func(h nn.Hook) []float32 {
		out, err := u.Forward(b, sample, ts, ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		v, err := b.Read(context.Background(), out)
		if err != nil {
			t.Fatal(err)
		}
		b.Free(out)
		return v
	}
	ref := run(nil)
	half := len(ref) / 2
	empty, full := &swapper{b: b, on: 0}, &swapper{b: b, on: 1}
	defer func() { b.Free(empty.masks...); b.Free(full.masks...) }()
	if d := golden.Compare(run(empty), ref); d.MaxAbs != 0 {
		t.Errorf("an empty swap mask changes the output: %v", d)
	}
	got := run(full)
	if d := golden.Compare(got[half:], ref[half:]); d.MaxAbs != 0 {
		t.Errorf("the partner entry changed: %v", d)
	}
	if d := golden.Compare(got[:half], ref[:half]); d.MaxAbs < 1e-3 {
		t.Errorf("the swapped entry did not change: %v", d)
	}
}

// TestLoadTwiceSharesJoinedWeights: a second build over the same weights
// (the full-size benchmark builds once per backend and call) finds the
// q/k/v and k/v views the first one left and shares their buffers instead
// of joining copies it would not own; both compute the same output.
func TestLoadTwiceSharesJoinedWeights(t *testing.T) {
	modeltest.ForEach(t, func(t *testing.T, b tensor.Backend, _ modeltest.Backend) {
		g := golden.Open(t, "golden", "e_unet.safetensors")
		u := tiny(t, b, "diffusion_pytorch_model.safetensors", loader.PrecisionF32)
		defer u.Free(b)
		if len(u.fused) == 0 {
			t.Fatal("the first build joined nothing")
		}
		data, err := os.ReadFile(golden.Path(t, "blipdiffusion-tiny", "unet", "config.json"))
		require.NoError(t, err)
		cfg, err := ParseConfig(data)
		require.NoError(t, err)
		u2, err := Load(b, cfg, u.weights)
		require.NoError(t, err)
		require.Empty(t, u2.fused, "the second build joined copies")
		sample, ts, ctx := goldenInputs(t, b, g)
		defer b.Free(sample, ctx)
		var outs [2][]float32
		for i, m := range []*UNet{u, u2} {
			y := mustForward(t, m, b, sample, ts, ctx, nil)
			outs[i], err = b.Read(context.Background(), y)
			require.NoError(t, err)
			b.Free(y)
		}
		require.Equal(t, outs[0], outs[1])
	})
}

// mustForward is Forward that fails tb on an error.
func mustForward(tb testing.TB, u *UNet, b tensor.Backend, sample *tensor.Tensor, ts []float32, ctx *tensor.Tensor, h nn.Hook) *tensor.Tensor {
	tb.Helper()
	out, err := u.Forward(b, sample, ts, ctx, h)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
