// stubs_misc.go: placeholders for the norm, elementwise and data-movement
// kernels until they land. Delete with the real ones.
package kernels

import (
	"harmony/engine/tensor"
)

// GroupNorm implements tensor.Backend.
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32, silu bool) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// LayerNorm implements tensor.Backend.
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Activate implements tensor.Backend.
func (b *Backend) Activate(x *tensor.Tensor, a tensor.Act) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// GEGLU implements tensor.Backend.
func (b *Backend) GEGLU(x *tensor.Tensor) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Add implements tensor.Backend.
func (b *Backend) Add(a, c *tensor.Tensor) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Mul implements tensor.Backend.
func (b *Backend) Mul(a, c *tensor.Tensor) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Scale implements tensor.Backend.
func (b *Backend) Scale(x *tensor.Tensor, s, c float32) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Upsample2x implements tensor.Backend.
func (b *Backend) Upsample2x(x *tensor.Tensor) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Concat implements tensor.Backend.
func (b *Backend) Concat(axis int, parts ...*tensor.Tensor) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Slice implements tensor.Backend.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Embedding implements tensor.Backend.
func (b *Backend) Embedding(table *tensor.Tensor, ids []int32) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// TimestepEmbedding implements tensor.Backend.
func (b *Backend) TimestepEmbedding(t []float32, dim int, flip bool, shift float32) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Convert implements tensor.Backend.
func (b *Backend) Convert(x *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}
