// Package tensor defines the op set the models are written against and the
// Tensor handle they pass around. Two backends implement it: engine/cpu, the
// pure-Go reference that is every kernel's test oracle, and engine/kernels,
// the WGSL kernels on the GPU. Models know nothing about devices.
//
// Conventions:
//   - Tensors are dense and row-major. Images and feature maps are NHWC
//     ([B, H, W, C], channels last); token sequences are [B, T, C].
//   - Weights keep PyTorch's layouts: Linear [out, in], Conv2d
//     [out, in, kh, kw]. They are F32 or F16; activations are always F32 and
//     every kernel accumulates and keeps statistics in F32.
//   - Ops never fail loudly: a bad shape or a device error is recorded as the
//     backend's sticky error (Err), the op returns a placeholder, and callers
//     check Err at stage boundaries. Read also returns it.
package tensor

import (
	"context"
	"fmt"
)

// DType is an element type.
type DType uint8

const (
	F32 DType = iota // float32
	F16              // IEEE binary16, stored as raw 16-bit words; weights only
)

func (d DType) String() string {
	if d == F16 {
		return "f16"
	}
	return "f32"
}

// Size is the element size in bytes.
func (d DType) Size() int {
	if d == F16 {
		return 2
	}
	return 4
}

// Tensor is a handle to backend-owned storage. A view (View, Reshape)
// shares its base's storage at an element offset and must not outlive it;
// only the base is freed.
type Tensor struct {
	Name   string  // label for errors and GPU debugging
	Shape  []int   // dimensions
	DType  DType   // element type
	Offset int     // element offset into the storage (views)
	Data   Storage // backend-owned
	View   bool    // shares another tensor's storage
}

// Storage is whatever a backend keeps behind a tensor.
type Storage interface {
	// Elems is the number of elements the storage holds.
	Elems() int
}

// Numel is the product of the dimensions.
func (t *Tensor) Numel() int { return Numel(t.Shape) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

func (t *Tensor) String() string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s %s%v", t.Name, t.DType, t.Shape)
}

// Numel is the product of dims.
func Numel(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Act is an elementwise activation.
type Act uint8

const (
	ActNone      Act = iota
	ActSiLU          // x·σ(x)
	ActGELU          // exact: 0.5·x·(1 + erf(x/√2))
	ActQuickGELU     // x·σ(1.702·x)
	ActLeakyReLU     // x for x ≥ 0, else 0.01·x (torch's default slope)
)

func (a Act) String() string {
	return [...]string{"none", "silu", "gelu", "quick_gelu", "leaky_relu"}[a]
}

// Epilogue is fused into Linear and Conv2D: out = Act(acc + bias) + Residual.
type Epilogue struct {
	Act      Act     // activation after the bias
	Residual *Tensor // same shape as the output, added last; nil for none

	// Split > 0 (Linear only, no Residual) lays the [rows, N] result out as
	// [N/Split, rows…, Split]: columns [j·Split, (j+1)·Split) form slab j.
	// One projection with concatenated weights then yields each part as a
	// contiguous View (fused q/k/v).
	Split int
	// GEGLU (Linear only, Act none): w is [2F, K], the value rows then the
	// gate rows; the result is value·GELU(gate) [..., F] with the bias of
	// each half added first (diffusers' GEGLU, no [rows, 2F] intermediate).
	GEGLU bool
}

// ConvOpts configures Conv2D.
type ConvOpts struct {
	Stride int // 1 or 2 (14 for the patch embedding); 0 means 1
	Pad    int // zero padding on every side
	// Upsample reads the input through a nearest 2× upsampling first
	// (diffusers' Upsample2D: interpolate then conv), without storing it.
	Upsample bool
	// ChanBias [B, Cout] is added per batch and channel before the
	// epilogue: a ResnetBlock's projected time embedding.
	ChanBias *Tensor
	// ChanBiasCol > 0, or a ChanBias wider than Cout, reads the channel bias
	// from columns [ChanBiasCol, ChanBiasCol+Cout) of a [B, W] ChanBias: the
	// projections of every ResnetBlock computed by one Linear.
	ChanBiasCol int
	Epilogue
}

// SwapMode selects how the Harmony self-attention swap replaces rows.
type SwapMode uint8

const (
	SwapKV  SwapMode = iota + 1 // main queries over the partner's masked keys and values
	SwapMap                     // the partner's attention probabilities applied to own values
)

// Swap describes a masked self-attention swap between batch entries.
// For batch entry b with Partner[b] = p ≥ 0 and RowMask[b, i] = 1:
//
//	SwapKV:  out[b,i] = softmax_j∈{KeyMask[p,j]=1}(q[b,i]·k[p,j]·scale) · v[p,j]
//	SwapMap: out[b,i] = softmax_j(q[p,i]·k[p,j]·scale) · v[b,j]
//
// Every other row is ordinary attention. With SwapKV the caller must not
// swap rows whose partner key mask is empty.
type Swap struct {
	Mode    SwapMode
	Partner []int   // per batch entry: partner entry, or -1
	RowMask *Tensor // [B, Nq] F32, 1 where the row is swapped
	KeyMask *Tensor // [B, Nk] F32, 1 for usable keys (SwapKV; indexed by the partner)
}

// AttnOpts configures Attention.
type AttnOpts struct {
	Heads  int     // number of heads; q/k/v widths are Heads × head dim
	Scale  float32 // multiplies q·k (1/√d usually)
	Causal bool    // key j > query i masked out (−inf)
	// KeyBias [B, Nk] is added to every score of key j (padding masks:
	// 0 or −10000).
	KeyBias *Tensor
	// ProbCols [c0, c1): when c1 > c0, Attention also returns the attention
	// probabilities of those key columns averaged over heads, [B, Nq, c1−c0].
	ProbCols [2]int
	Swap     *Swap // nil: plain attention
}

// Backend is the op set. Every op returns a new F32 tensor (except views)
// that the caller frees.
type Backend interface {
	// Name identifies the backend ("cpu", "webgpu").
	Name() string
	// Err is the first error recorded by any op; ops after it are no-ops.
	Err() error
	// SetErr records err as the sticky error when there is none yet.
	SetErr(err error)

	// New allocates a tensor (contents zero on the CPU, undefined on the GPU).
	New(name string, dt DType, shape ...int) *Tensor
	// NewWeight allocates a tensor that lives as long as the model: exactly
	// sized, outside any activation pool.
	NewWeight(name string, dt DType, shape ...int) *Tensor
	// Upload writes raw little-endian bytes of t's dtype at a byte offset.
	Upload(t *Tensor, byteOffset int64, data []byte)
	// FromF32 allocates an F32 tensor holding data.
	FromF32(name string, data []float32, shape ...int) *Tensor
	// Read returns t's values as float32 (a sync point on the GPU).
	Read(ctx context.Context, t *Tensor) ([]float32, error)
	// Free releases tensors (views are ignored); nil entries are skipped.
	Free(ts ...*Tensor)
	// Sync waits until all recorded work is done.
	Sync(ctx context.Context) error

	// View is a contiguous window of numel(shape) elements starting offset
	// elements into t. No copy.
	View(t *Tensor, offset int, shape ...int) *Tensor
	// Reshape is View at offset 0.
	Reshape(t *Tensor, shape ...int) *Tensor

	// Linear: x [..., K] · wᵀ with w [N, K] (+ b [N]) → [..., N], then the epilogue.
	Linear(x, w, b *Tensor, ep Epilogue) *Tensor
	// Conv2D: x [B, H, W, C] NHWC, w [O, C, kh, kw], b [O] or nil → [B, Ho, Wo, O].
	Conv2D(x, w, b *Tensor, o ConvOpts) *Tensor
	// GroupNorm over x [B, ..., C] with groups of C/groups channels per batch
	// entry, affine, then SiLU when silu.
	GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor
	// LayerNorm over the last dimension, affine.
	LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor
	// Attention: q [B, Nq, H·dk], k [B, Nk, H·dk], v [B, Nk, H·dv] →
	// out [B, Nq, H·dv] and, when o.ProbCols is set, head-averaged
	// probabilities [B, Nq, c1−c0] (else nil). Never materializes Nq×Nk.
	Attention(q, k, v *Tensor, o AttnOpts) (out, probs *Tensor)
	// Activate applies an activation elementwise.
	Activate(x *Tensor, a Act) *Tensor
	// GEGLU: x [..., 2F] → x[..., :F] · GELU(x[..., F:]).
	GEGLU(x *Tensor) *Tensor
	// Add and Mul broadcast b to a's shape (numpy rules: b's dims align to
	// a's trailing dims and are 1 or equal).
	Add(a, b *Tensor) *Tensor
	Mul(a, b *Tensor) *Tensor
	// Scale: x·s + c.
	Scale(x *Tensor, s, c float32) *Tensor
	// Upsample2x: nearest-neighbour 2× of x [B, H, W, C].
	Upsample2x(x *Tensor) *Tensor
	// Concat joins tensors along axis; other dims must match. F16 parts
	// (weights) join along axis 0 only, into an F16 result.
	Concat(axis int, parts ...*Tensor) *Tensor
	// Slice copies [start, end) of axis.
	Slice(x *Tensor, axis, start, end int) *Tensor
	// Embedding gathers rows of table [V, D] (F32 or F16): out [len(ids), D].
	Embedding(table *Tensor, ids []int32) *Tensor
	// TimestepEmbedding: sinusoids [len(t), dim] with
	// f_i = exp(−ln(10000)·i/(dim/2 − shift)), [sin, cos] or with flip
	// [cos, sin] (diffusers' Timesteps).
	TimestepEmbedding(t []float32, dim int, flip bool, shift float32) *Tensor
	// Convert casts to dt (F32 ↔ F16, round to nearest even).
	Convert(x *Tensor, dt DType) *Tensor
	// LocalMix adds a gated term per head (ELITE's local cross-attention):
	// o, x [B, N, H·d], gate [B, N, H], w one weight per batch entry:
	//
	//	out[b,n,h·d+c] = o[b,n,h·d+c] + w[b]·gate[b,n,h]/G_b · x[b,n,h·d+c]
	//
	// with G_b = max over n, h of gate[b]. An entry with w[b] = 0 or
	// G_b ≤ 0 is o's row unchanged.
	LocalMix(o, x, gate *Tensor, w []float32) *Tensor
}
