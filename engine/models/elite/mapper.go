// Package elite implements ELITE's mapping networks (Wei et al., ICCV
// 2023): the global mapper, which turns five CLIP image feature maps into
// five words (w0 is the one ELITE injects at the placeholder), and the
// local mapper, which turns them into one local feature per patch. The
// UNet side (ELITE's cross-attention) is engine/models/unet's LoadELITE and
// ForwardLocal; the text side is engine/models/clip's EncodeInjected.
//
// The mappers have no config.json: they are sized from the checkpoint's
// tensors (MapperConfigFrom), the hidden width included (ELITE fixes it at
// 1024 whatever the input width, so it is read, never derived). Their
// checkpoints also hold the UNet's attention projections, which a loaded
// mapper sets aside in KV for unet.LoadELITE.
//
// mapper.go holds both mappers.
package elite

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// FeatureLayers are the CLIP vision encoder layers whose outputs feed
// words 1..4; word 0 reads the last layer's output (before post_layernorm).
var FeatureLayers = []int{4, 8, 12, 16}

// lnEps is nn.LayerNorm's default eps, which ELITE's mappers use.
const lnEps = 1e-5

// MapperConfig sizes a mapper.
type MapperConfig struct {
	In     int // image feature width (1024 for ViT-L/14)
	Hidden int // the MLPs' hidden width (1024 in ELITE, whatever In is)
	Out    int // word width: the text encoder's (768)
	Words  int // feature maps, each with its mapping_i and mapping_patch_i (5)
}

// mlpNames are the two MLPs of word i.
func mlpNames(i int) [2]string {
	s := strconv.Itoa(i)
	return [2]string{"mapping_" + s, "mapping_patch_" + s}
}

// MapperTensors lists the mapping networks' tensors for cfg (the same for
// both mappers): per word i, mapping_i and mapping_patch_i, each
// Linear·LayerNorm·LeakyReLU·Linear·LayerNorm·LeakyReLU·Linear as an
// nn.Sequential (indices 0, 1, 3, 4, 6).
func MapperTensors(cfg MapperConfig) map[string][]int {
	v := nn.Recorder()
	buildMLPs(v, cfg)
	return v.Shapes()
}

// ShapeError is a mapper checkpoint that does not hold what a mapper needs.
type ShapeError struct {
	File, Tensor string
	Want, Have   []int // Have nil: missing
	Msg          string
}

func (e *ShapeError) Error() string {
	switch {
	case e.Msg != "":
		return fmt.Sprintf("elite: %s: %s", e.File, e.Msg)
	case e.Have == nil:
		return fmt.Sprintf("elite: %s: missing tensor %q (want %v)", e.File, e.Tensor, e.Want)
	}
	return fmt.Sprintf("elite: %s: tensor %q has shape %v, want %v", e.File, e.Tensor, e.Have, e.Want)
}

// MapperConfigFrom sizes a mapper from a checkpoint's tensor shapes
// (names as stored): In and Hidden from mapping_0.0.weight, Out from
// mapping_0.6.weight, Words from how many mapping_i.0.weight there are.
// Every tensor of MapperTensors is then checked; file names the checkpoint
// in errors (*ShapeError).
func MapperConfigFrom(file string, shapes map[string][]int) (MapperConfig, error) {
	var cfg MapperConfig
	first, last := shapes["mapping_0.0.weight"], shapes["mapping_0.6.weight"]
	if len(first) != 2 {
		return cfg, &ShapeError{File: file, Tensor: "mapping_0.0.weight", Want: []int{-1, -1}, Have: first}
	}
	if len(last) != 2 {
		return cfg, &ShapeError{File: file, Tensor: "mapping_0.6.weight", Want: []int{-1, first[0]}, Have: last}
	}
	cfg = MapperConfig{In: first[1], Hidden: first[0], Out: last[0]}
	for shapes["mapping_"+strconv.Itoa(cfg.Words)+".0.weight"] != nil {
		cfg.Words++
	}
	if cfg.In <= 0 || cfg.Hidden <= 0 || cfg.Out <= 0 {
		return cfg, &ShapeError{File: file, Msg: fmt.Sprintf("empty mapping network (in %d, hidden %d, out %d)", cfg.In, cfg.Hidden, cfg.Out)}
	}
	want := MapperTensors(cfg)
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if h := shapes[n]; !slices.Equal(h, want[n]) {
			return cfg, &ShapeError{File: file, Tensor: n, Want: want[n], Have: h}
		}
	}
	return cfg, nil
}

// MapperConfigOf is MapperConfigFrom over loaded weights.
func MapperConfigOf(file string, w *tensor.Weights) (MapperConfig, error) {
	shapes := map[string][]int{}
	for _, n := range w.Names() {
		t, _ := w.Get(n)
		shapes[n] = t.Shape
	}
	return MapperConfigFrom(file, shapes)
}

// mlp is one mapping network.
type mlp struct {
	fc0, fc3, fc6 nn.Linear
	ln1, ln4      nn.LayerNorm
}

func loadMLP(v *nn.Vars, name string, cfg MapperConfig) mlp {
	p := v.Sub(name)
	return mlp{
		fc0: nn.LoadLinear(p, "0", cfg.Hidden, cfg.In, true),
		ln1: nn.LoadLayerNorm(p, "1", cfg.Hidden, lnEps),
		fc3: nn.LoadLinear(p, "3", cfg.Hidden, cfg.Hidden, true),
		ln4: nn.LoadLayerNorm(p, "4", cfg.Hidden, lnEps),
		fc6: nn.LoadLinear(p, "6", cfg.Out, cfg.Hidden, true),
	}
}

func (m *mlp) forward(b tensor.Backend, x *tensor.Tensor) *tensor.Tensor {
	h := m.fc0.Forward(b, x, tensor.Epilogue{})
	for _, s := range []struct {
		ln nn.LayerNorm
		fc nn.Linear
	}{{m.ln1, m.fc3}, {m.ln4, m.fc6}} {
		n := s.ln.Forward(b, h)
		b.Free(h)
		a := b.Activate(n, tensor.ActLeakyReLU)
		b.Free(n)
		h = s.fc.Forward(b, a, tensor.Epilogue{})
		b.Free(a)
	}
	return h
}

func buildMLPs(v *nn.Vars, cfg MapperConfig) [][2]mlp {
	out := make([][2]mlp, cfg.Words)
	for i := range out {
		n := mlpNames(i)
		out[i] = [2]mlp{loadMLP(v, n[0], cfg), loadMLP(v, n[1], cfg)}
	}
	return out
}

// mapper is what both mappers share: the MLPs and the weights.
type mapper struct {
	Config MapperConfig
	// KV holds the checkpoint's other tensors (the UNet's attn2 key and
	// value projections) until unet.LoadELITE takes them: set it to nil
	// then. Free releases what it still holds.
	KV *tensor.Weights

	weights *tensor.Weights
	mlps    [][2]mlp
}

func loadMapper(b tensor.Backend, cfg MapperConfig, w *tensor.Weights) (*mapper, error) {
	if cfg.Words <= 0 || cfg.In <= 0 || cfg.Hidden <= 0 || cfg.Out <= 0 {
		return nil, fmt.Errorf("elite: bad mapper config %+v", cfg)
	}
	v := nn.NewVars(b, w)
	m := &mapper{Config: cfg, mlps: buildMLPs(v, cfg)}
	if err := v.Finish("elite"); err != nil {
		return nil, err
	}
	// Split the file: the mapping networks stay, the rest waits for the UNet.
	m.weights, m.KV = tensor.NewWeights(w.Component), tensor.NewWeights(w.Component)
	for _, n := range w.Names() {
		t, _ := w.Take(n)
		if strings.HasPrefix(n, "mapping_") {
			m.weights.Put(n, t)
		} else {
			m.KV.Put(n, t)
		}
	}
	return m, nil
}

// Free releases the weights (and KV when not taken).
func (m *mapper) Free(b tensor.Backend) {
	for _, w := range []*tensor.Weights{m.weights, m.KV} {
		if w != nil {
			w.Free(b)
		}
	}
	m.weights, m.KV = nil, nil
}

// checkFeatures validates the feature maps: Words × f32 [B, T, In], T ≥ 2.
func (m *mapper) checkFeatures(feats []*tensor.Tensor) (nb, nt int, err error) {
	cfg := m.Config
	if len(feats) != cfg.Words {
		return 0, 0, fmt.Errorf("elite: %d feature maps, the mapper reads %d", len(feats), cfg.Words)
	}
	for i, f := range feats {
		if f == nil || len(f.Shape) != 3 || f.DType != tensor.F32 || f.Shape[2] != cfg.In || f.Shape[1] < 2 {
			return 0, 0, fmt.Errorf("elite: feature map %d is %v, want f32 [B, T ≥ 2, %d]", i, f, cfg.In)
		}
		if i > 0 && (f.Shape[0] != nb || f.Shape[1] != nt) {
			return 0, 0, fmt.Errorf("elite: feature map %d is %v, map 0 is [%d, %d, %d]", i, f, nb, nt, cfg.In)
		}
		nb, nt = f.Shape[0], f.Shape[1]
	}
	return nb, nt, nil
}

// word runs word i's two MLPs: on the CLS token [B, 1, Out] and on the
// patch tokens [B, T−1, Out].
func (m *mapper) word(b tensor.Backend, i int, f *tensor.Tensor) (cls, patches *tensor.Tensor) {
	nt := f.Shape[1]
	c := b.Slice(f, 1, 0, 1)
	p := b.Slice(f, 1, 1, nt)
	cls = m.mlps[i][0].forward(b, c)
	patches = m.mlps[i][1].forward(b, p)
	b.Free(c, p)
	return cls, patches
}

// Mapper is ELITE's global mapping network (train_global.py Mapper).
type Mapper struct{ *mapper }

// LoadMapper builds the global mapper from a global_mapper.pt state dict
// (cfg from MapperConfigOf), checking every tensor first. It owns w's
// tensors from then on: the mapping networks, and in KV the rest.
func LoadMapper(b tensor.Backend, cfg MapperConfig, w *tensor.Weights) (*Mapper, error) {
	m, err := loadMapper(b, cfg, w)
	if err != nil {
		return nil, err
	}
	return &Mapper{m}, nil
}

// Forward maps the feature maps (Features: Words × [B, T, In]) to the
// words [B, Words, Out]:
//
//	word_i = mapping_i(f_i[:, :1]) + mean_t mapping_patch_i(f_i[:, 1:])
//
// Row 0 is w0, the word ELITE injects at the placeholder.
func (m *Mapper) Forward(b tensor.Backend, feats []*tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	nb, nt, err := m.checkFeatures(feats)
	if err != nil {
		return nil, err
	}
	// The mean over patches is attention with equal scores: zero queries
	// and keys give every patch the weight 1/(T−1).
	zq := b.FromF32("elite.zero_q", make([]float32, nb*4), nb, 1, 4)
	zk := b.FromF32("elite.zero_k", make([]float32, nb*(nt-1)*4), nb, nt-1, 4)
	defer b.Free(zq, zk)
	words := make([]*tensor.Tensor, len(feats))
	for i, f := range feats {
		cls, patches := m.word(b, i, f)
		mean, _ := b.Attention(zq, zk, patches, tensor.AttnOpts{Heads: 1, Scale: 1})
		words[i] = b.Add(cls, mean)
		b.Free(cls, patches, mean)
	}
	out := b.Concat(1, words...)
	b.Free(words...)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// MapperLocal is ELITE's local mapping network (train_local.py
// MapperLocal).
type MapperLocal struct{ *mapper }

// LoadMapperLocal builds the local mapper from a local_mapper.pt state dict,
// as LoadMapper.
func LoadMapperLocal(b tensor.Backend, cfg MapperConfig, w *tensor.Weights) (*MapperLocal, error) {
	m, err := loadMapper(b, cfg, w)
	if err != nil {
		return nil, err
	}
	return &MapperLocal{m}, nil
}

// Forward maps the feature maps (Words × [B, T, In]) to one local feature
// per patch [B, T−1, Out]:
//
//	local = mean_i (mapping_i(f_i[:, :1]) + mapping_patch_i(f_i[:, 1:])) · mask
//
// mask [B, T−1] (1 keeps a patch, 0 zeroes it: ELITE's 16×16 object mask)
// may be nil.
func (m *MapperLocal) Forward(b tensor.Backend, feats []*tensor.Tensor, mask *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	nb, nt, err := m.checkFeatures(feats)
	if err != nil {
		return nil, err
	}
	if mask != nil && (mask.DType != tensor.F32 || mask.Numel() != nb*(nt-1) || mask.Shape[0] != nb) {
		return nil, fmt.Errorf("elite: local mask %v must be f32 [%d, %d]", mask, nb, nt-1)
	}
	var sum *tensor.Tensor
	for i, f := range feats {
		cls, patches := m.word(b, i, f)
		l := b.Add(patches, cls)
		b.Free(cls, patches)
		if sum == nil {
			sum = l
			continue
		}
		s := b.Add(sum, l)
		b.Free(sum, l)
		sum = s
	}
	out := b.Scale(sum, 1/float32(len(feats)), 0)
	b.Free(sum)
	if mask != nil {
		masked := b.Mul(out, b.Reshape(mask, nb, nt-1, 1))
		b.Free(out)
		out = masked
	}
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// Features picks ELITE's five feature maps out of a CLIP vision encoder's
// hidden states (hidden[0] the embeddings after pre_layrnorm, hidden[k] the
// output of layer k, the last without post_layernorm): the last state, then
// layers 4, 8, 12 and 16. The maps are hidden's own tensors.
func Features(hidden []*tensor.Tensor) ([]*tensor.Tensor, error) {
	need := FeatureLayers[len(FeatureLayers)-1] + 1
	if len(hidden) < need {
		return nil, fmt.Errorf("elite: %d hidden states, ELITE reads layer %d (a vision encoder of at least %d layers)", len(hidden), need-1, need-1)
	}
	out := []*tensor.Tensor{hidden[len(hidden)-1]}
	for _, l := range FeatureLayers {
		out = append(out, hidden[l])
	}
	return out, nil
}
