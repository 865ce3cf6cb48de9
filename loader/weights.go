// weights.go holds the engine's precision policy: which storage type each
// tensor gets on the device.
package loader

import (
	"context"
	"path/filepath"
	"strings"

	"harmony/engine/tensor"
)

// Precision is how weights are stored on the device.
type Precision string

const (
	PrecisionF32 Precision = "f32" // every weight as f32 (fp16 files are upcast)
	PrecisionF16 Precision = "f16" // matmul, conv and embedding weights as f16; the rest f32
)

// StorageType is the policy: with PrecisionF16, tensors named "*.weight"
// of rank ≥ 2 (Linear, Conv2d and Embedding tables, which the kernels read
// as f16) are stored as F16; biases, norms, position tables addressed
// without ".weight", class embeddings and query tokens stay F32, because
// elementwise ops take f32 operands and they are a rounding error in size.
func StorageType(p Precision, name string, shape []int) tensor.DType {
	if p == PrecisionF16 && len(shape) >= 2 && strings.HasSuffix(name, ".weight") {
		return tensor.F16
	}
	return tensor.F32
}

// Skip reports tensors the engine never reads (recomputed buffers).
func Skip(name string, dt DType) bool {
	return dt == I64 && strings.HasSuffix(name, "position_ids")
}

// ConvertTo converts raw little-endian elements of type from into to
// (round to nearest even).
func ConvertTo(dst []byte, to tensor.DType, src []byte, from DType) error {
	return convert(dst, to, src, from)
}

// ReadSafetensorsWeights loads every float tensor of one local safetensors
// (or torch .bin) file onto b as a component's weights.
func ReadSafetensorsWeights(b tensor.Backend, component, path string, p Precision) (*tensor.Weights, error) {
	return LoadFile(context.Background(), NewDirSource(filepath.Dir(path)), filepath.Base(path), component, b, &Options{Precision: p})
}
