// weights.go places a component's tensors on a backend, choosing each
// tensor's storage type by the engine's precision policy.
package loader

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/x448/float16"

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

// ConvertTo converts raw little-endian elements of type from into to.
func ConvertTo(dst []byte, to tensor.DType, src []byte, from DType) error {
	n := len(src) / from.Size()
	if len(dst) != n*to.Size() {
		return fmt.Errorf("loader: convert %d %s elements into %d bytes of %s", n, from, len(dst), to)
	}
	get := func(i int) float32 {
		switch from {
		case F32:
			return math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		case F16:
			return float16.Frombits(binary.LittleEndian.Uint16(src[2*i:])).Float32()
		case BF16:
			return math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		case F64:
			return float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
		return 0
	}
	switch {
	case from == F32 && to == tensor.F32, from == F16 && to == tensor.F16:
		copy(dst, src)
		return nil
	case !from.IsFloat():
		return fmt.Errorf("loader: cannot convert %s to %s", from, to)
	}
	for i := 0; i < n; i++ {
		v := get(i)
		if to == tensor.F16 {
			binary.LittleEndian.PutUint16(dst[2*i:], float16.Fromfloat32(v).Bits())
		} else {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	}
	return nil
}

// ReadSafetensorsWeights loads every float tensor of one local safetensors
// file onto b (a simple whole-file path used by tests and small models; the
// streaming loader handles the rest).
func ReadSafetensorsWeights(b tensor.Backend, component, path string, p Precision) (*tensor.Weights, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loader: %v", err)
	}
	hdr, err := ReadSafetensorsHeader(f, st.Size(), filepath.Base(path))
	if err != nil {
		return nil, err
	}
	w := tensor.NewWeights(component)
	for _, ti := range hdr.Tensors {
		if Skip(ti.Name, ti.DType) {
			continue
		}
		if !ti.DType.IsFloat() {
			return nil, &FormatError{File: path, Tensor: ti.Name, Msg: fmt.Sprintf("unexpected dtype %s", ti.DType)}
		}
		raw := make([]byte, ti.Size)
		if _, err := f.ReadAt(raw, ti.Offset); err != nil && err != io.EOF {
			return nil, &FormatError{File: path, Tensor: ti.Name, Msg: err.Error()}
		}
		dt := StorageType(p, ti.Name, ti.Shape)
		out := make([]byte, ti.Numel()*dt.Size())
		if err := ConvertTo(out, dt, raw, ti.DType); err != nil {
			return nil, err
		}
		t := b.NewWeight(component+"."+ti.Name, dt, ti.Shape...)
		b.Upload(t, 0, out)
		w.Put(ti.Name, t)
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	return w, nil
}
