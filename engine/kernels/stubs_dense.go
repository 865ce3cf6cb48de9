// stubs_dense.go: placeholder for the attention kernel until it lands
// (attention.go). Delete with the real one.
package kernels

import (
	"errors"

	"harmony/engine/tensor"
)

var errTodo = errors.New("kernels: op not implemented on the GPU yet")

// Attention implements tensor.Backend.
func (b *Backend) Attention(q, k, v *tensor.Tensor, o tensor.AttnOpts) (*tensor.Tensor, *tensor.Tensor) {
	b.SetErr(errTodo)
	return b.placeholder([]int{1}), nil
}
