// stubs_dense.go: placeholders for the dense and attention kernels until
// they land (dense.go, attention.go). Delete with the real ones.
package kernels

import (
	"errors"

	"harmony/engine/tensor"
)

var errTodo = errors.New("kernels: op not implemented on the GPU yet")

// Linear implements tensor.Backend.
func (b *Backend) Linear(x, w, bias *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Conv2D implements tensor.Backend.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, o tensor.ConvOpts) *tensor.Tensor {
	b.SetErr(errTodo)
	return b.placeholder([]int{1})
}

// Attention implements tensor.Backend.
func (b *Backend) Attention(q, k, v *tensor.Tensor, o tensor.AttnOpts) (*tensor.Tensor, *tensor.Tensor) {
	b.SetErr(errTodo)
	return b.placeholder([]int{1}), nil
}
