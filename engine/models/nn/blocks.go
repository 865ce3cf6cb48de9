// blocks.go holds the building blocks the models are assembled from, each
// a loader over Vars (named after its PyTorch module) and a forward pass.
// Inputs are never freed by a block; what it returns is the caller's.
package nn

import (
	"fmt"
	"math"
	"slices"

	"harmony/engine/tensor"
)

// Linear is nn.Linear: W [out, in], B [out] or nil.
type Linear struct{ W, B *tensor.Tensor }

// LoadLinear reads name.weight [out, in] and, with bias, name.bias [out].
func LoadLinear(v *Vars, name string, out, in int, bias bool) Linear {
	l := Linear{W: v.Get(name+".weight", out, in)}
	if bias {
		l.B = v.Get(name+".bias", out)
	}
	return l
}

// LoadPointwise reads a 1×1 Conv2d [out, in, 1, 1] (with bias) as a Linear
// over channels: on NHWC feature maps the two are the same map.
func LoadPointwise(v *Vars, name string, out, in int) Linear {
	return Linear{W: v.Matrix(name+".weight", out, in, 1, 1), B: v.Get(name+".bias", out)}
}

// Forward is x·Wᵀ + B then the epilogue.
func (l Linear) Forward(b tensor.Backend, x *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	return b.Linear(x, l.W, l.B, ep)
}

// Conv2d is a square Conv2d on NHWC input.
type Conv2d struct {
	W, B        *tensor.Tensor // [out, in, k, k], [out] or nil
	Stride, Pad int
}

// LoadConv2d reads a k×k conv with "same" padding (k−1)/2, stride 1.
func LoadConv2d(v *Vars, name string, out, in, k int, bias bool) Conv2d {
	c := Conv2d{W: v.Get(name+".weight", out, in, k, k), Pad: (k - 1) / 2, Stride: 1}
	if bias {
		c.B = v.Get(name+".bias", out)
	}
	return c
}

// Forward convolves x [B, H, W, C]; o adds what varies per call (channel
// bias, upsampling, epilogue) to the conv's own stride and padding.
func (c Conv2d) Forward(b tensor.Backend, x *tensor.Tensor, o tensor.ConvOpts) *tensor.Tensor {
	o.Stride, o.Pad = c.Stride, c.Pad
	return b.Conv2D(x, c.W, c.B, o)
}

// LayerNorm is nn.LayerNorm over the last dimension, affine.
type LayerNorm struct {
	W, B *tensor.Tensor
	Eps  float32
}

// LoadLayerNorm reads name.weight and name.bias [c].
func LoadLayerNorm(v *Vars, name string, c int, eps float32) LayerNorm {
	return LayerNorm{W: v.Get(name+".weight", c), B: v.Get(name+".bias", c), Eps: eps}
}

// Forward normalizes x.
func (n LayerNorm) Forward(b tensor.Backend, x *tensor.Tensor) *tensor.Tensor {
	return b.LayerNorm(x, n.W, n.B, n.Eps)
}

// GroupNorm is nn.GroupNorm on NHWC (or [B, N, C]) input, affine.
type GroupNorm struct {
	W, B   *tensor.Tensor
	Groups int
	Eps    float32
}

// LoadGroupNorm reads name.weight and name.bias [c].
func LoadGroupNorm(v *Vars, name string, c, groups int, eps float32) GroupNorm {
	return GroupNorm{W: v.Get(name+".weight", c), B: v.Get(name+".bias", c), Groups: groups, Eps: eps}
}

// Forward normalizes x, then applies SiLU when silu (fused).
func (n GroupNorm) Forward(b tensor.Backend, x *tensor.Tensor, silu bool) *tensor.Tensor {
	return b.GroupNorm(x, n.W, n.B, n.Groups, n.Eps, silu)
}

// Embedding is nn.Embedding: a table [V, D].
type Embedding struct {
	Table *tensor.Tensor
	Size  int // V
}

// LoadEmbedding reads a [n, d] table stored under name (its full tensor
// name, ".weight" included).
func LoadEmbedding(v *Vars, name string, n, d int) Embedding {
	return Embedding{Table: v.Get(name, n, d), Size: n}
}

// Forward gathers the rows ids: [len(ids), D].
func (e Embedding) Forward(b tensor.Backend, ids []int32) *tensor.Tensor {
	return b.Embedding(e.Table, ids)
}

// Positions is the rows 0..n−1 of a position table: [n, D].
func (e Embedding) Positions(b tensor.Backend, n int) *tensor.Tensor {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return b.Embedding(e.Table, ids)
}

// LoadFusedQKV reads a fused projection name [3·d, d] (rows q, k, v; the
// ViT layouts of BLIP-2 and DINO) as three Linears over row windows of it,
// so that q, k and v come out contiguous for Attention without a copy.
func LoadFusedQKV(v *Vars, name string, d int, bias bool) (q, k, val Linear) {
	w := v.Get(name+".weight", 3*d, d)
	var bt *tensor.Tensor
	if bias {
		bt = v.Get(name+".bias", 3*d)
	}
	if w == nil {
		return // recording, or missing (reported by Vars)
	}
	b := v.Backend()
	var ls [3]Linear
	for i := range ls {
		ls[i].W = b.View(w, i*d*d, d, d)
		if bt != nil {
			ls[i].B = b.View(bt, i*d, d)
		}
	}
	return ls[0], ls[1], ls[2]
}

// AttnNames spells an attention module's projections: query, key, value
// and output, relative to the module.
type AttnNames struct{ Q, K, V, Out string }

// The spellings in the checkpoints this engine reads.
var (
	CLIPAttnNames      = AttnNames{"q_proj", "k_proj", "v_proj", "out_proj"}                              // CLIPAttention
	DiffusersAttnNames = AttnNames{"to_q", "to_k", "to_v", "to_out.0"}                                    // diffusers Attention
	LegacyAttnNames    = AttnNames{"query", "key", "value", "proj_attn"}                                  // diffusers ≤ 0.16 AttentionBlock
	BERTAttnNames      = AttnNames{"attention.query", "attention.key", "attention.value", "output.dense"} // BertAttention
)

// AttnSpec sizes an Attention.
type AttnSpec struct {
	Names   AttnNames
	Dim     int  // query input width (and the output width)
	KVDim   int  // key/value input width; 0 means Dim
	Heads   int  // heads; head dim = Inner/Heads
	Inner   int  // heads × head dim; 0 means Dim
	QKVBias bool // q, k, v projections have biases
	OutBias bool // the output projection has a bias
}

// Attention is multi-head scaled dot-product attention with its input and
// output projections.
type Attention struct {
	Q, K, V, Out Linear
	Heads        int
	Inner        int     // heads × head dim
	Scale        float32 // head_dim^−½
}

// LoadAttention reads the four projections below v.
func LoadAttention(v *Vars, s AttnSpec) Attention {
	kv, inner := s.KVDim, s.Inner
	if kv == 0 {
		kv = s.Dim
	}
	if inner == 0 {
		inner = s.Dim
	}
	return Attention{
		Q:     LoadLinear(v, s.Names.Q, inner, s.Dim, s.QKVBias),
		K:     LoadLinear(v, s.Names.K, inner, kv, s.QKVBias),
		V:     LoadLinear(v, s.Names.V, inner, kv, s.QKVBias),
		Out:   LoadLinear(v, s.Names.Out, s.Dim, inner, s.OutBias),
		Heads: s.Heads,
		Inner: inner,
		Scale: HeadScale(inner, s.Heads),
	}
}

// HeadScale is the softmax scale 1/√(head dim).
func HeadScale(inner, heads int) float32 {
	return float32(1 / math.Sqrt(float64(inner/heads)))
}

// Project computes q from x and k, v from kv (x for self-attention).
func (a *Attention) Project(b tensor.Backend, x, kv *tensor.Tensor) (q, k, v *tensor.Tensor) {
	return a.Q.Forward(b, x, tensor.Epilogue{}), a.K.Forward(b, kv, tensor.Epilogue{}), a.V.Forward(b, kv, tensor.Epilogue{})
}

// Attend runs attention over projected q, k, v; o carries the call's
// masks and options, Heads and Scale come from a.
func (a *Attention) Attend(b tensor.Backend, q, k, v *tensor.Tensor, o tensor.AttnOpts) (out, probs *tensor.Tensor) {
	o.Heads, o.Scale = a.Heads, a.Scale
	return b.Attention(q, k, v, o)
}

// Forward is Out(attention(Q(x), K(kv), V(kv))) + residual (nil for none).
func (a *Attention) Forward(b tensor.Backend, x, kv, residual *tensor.Tensor, o tensor.AttnOpts) *tensor.Tensor {
	q, k, v := a.Project(b, x, kv)
	h, _ := a.Attend(b, q, k, v, o)
	b.Free(q, k, v)
	out := a.Out.Forward(b, h, tensor.Epilogue{Residual: residual})
	b.Free(h)
	return out
}

// MLP is FC2(act(FC1(x))) + residual; with GEGLU, FC1 is diffusers'
// GEGLU projection [2F, C] (value rows then gate rows).
type MLP struct {
	FC1, FC2 Linear
	Act      tensor.Act
	GEGLU    bool
}

// LoadMLP reads two biased Linears: fc1 [inner, dim] (2·inner with geglu)
// and fc2 [dim, inner].
func LoadMLP(v *Vars, fc1, fc2 string, dim, inner int, act tensor.Act, geglu bool) MLP {
	w1 := inner
	if geglu {
		w1 = 2 * inner
	}
	return MLP{FC1: LoadLinear(v, fc1, w1, dim, true), FC2: LoadLinear(v, fc2, dim, inner, true), Act: act, GEGLU: geglu}
}

// Forward maps x [..., C] to [..., C], adding residual (or nil).
func (m *MLP) Forward(b tensor.Backend, x, residual *tensor.Tensor) *tensor.Tensor {
	f := m.FC1.Forward(b, x, tensor.Epilogue{Act: m.Act, GEGLU: m.GEGLU})
	y := m.FC2.Forward(b, f, tensor.Epilogue{Residual: residual})
	b.Free(f)
	return y
}

// EncoderLayer is the pre-LN transformer layer of CLIP and the BLIP-2
// vision tower:
//
//	h = x + Attn(LN1(x));  y = h + MLP(LN2(h))
type EncoderLayer struct {
	LN1, LN2 LayerNorm
	Attn     Attention
	MLP      MLP
}

// Forward maps x [B, S, D] to a new [B, S, D]; o carries the attention's
// mask (causal, key bias).
func (l *EncoderLayer) Forward(b tensor.Backend, x *tensor.Tensor, o tensor.AttnOpts) *tensor.Tensor {
	h := l.LN1.Forward(b, x)
	r := l.Attn.Forward(b, h, h, x, o)
	b.Free(h)
	h = l.LN2.Forward(b, r)
	y := l.MLP.Forward(b, h, r)
	b.Free(h, r)
	return y
}

// RepeatBatch is t [1, ...] repeated n times along axis 0 (t itself when n
// is 1: the caller frees the result only when it differs from t).
func RepeatBatch(b tensor.Backend, t *tensor.Tensor, n int) *tensor.Tensor {
	if n == 1 {
		return t
	}
	parts := make([]*tensor.Tensor, n)
	for i := range parts {
		parts[i] = t
	}
	return b.Concat(0, parts...)
}

// Relabel gives a tensor the caller owns (not a view) a shape of the same
// size. A Reshape view would not do: freeing a view is a no-op, so handing
// one out would leak its base.
func Relabel(b tensor.Backend, t *tensor.Tensor, shape ...int) *tensor.Tensor {
	if t.View || tensor.Numel(shape) != t.Numel() {
		b.SetErr(fmt.Errorf("nn: cannot relabel %v as %v", t, shape))
		return t
	}
	t.Shape = slices.Clone(shape)
	return t
}
