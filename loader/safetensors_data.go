// safetensors_data.go: a small safetensors file read whole into memory
// (latents for --latents, dumps, golden tensors), with typed accessors.
package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"harmony/engine/tensor"
)

// SafetensorsData is a safetensors file held in memory.
type SafetensorsData struct {
	*SafetensorsFile
	data []byte
}

// ReadSafetensorsFile reads and parses a whole (small) safetensors file.
func ReadSafetensorsFile(path string) (*SafetensorsData, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %v", err)
	}
	return ParseSafetensorsData(data, filepath.Base(path))
}

// ParseSafetensorsData parses a safetensors file's bytes.
func ParseSafetensorsData(data []byte, name string) (*SafetensorsData, error) {
	if len(data) < 8 {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("truncated: %d bytes, a safetensors file has at least 8", len(data))}
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxSafetensorsHeader || n > uint64(len(data)-8) {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf("header length %d does not fit the %d-byte file", n, len(data))}
	}
	h, err := ParseSafetensorsHeader(data[8:8+n], int64(len(data)), name)
	if err != nil {
		return nil, err
	}
	return &SafetensorsData{SafetensorsFile: h, data: data}, nil
}

// Raw returns a tensor's bytes and record.
func (f *SafetensorsData) Raw(name string) ([]byte, *TensorInfo, error) {
	ti := f.Find(name)
	if ti == nil {
		return nil, nil, &FormatError{File: f.Name, Tensor: name, Msg: "no such tensor"}
	}
	return f.data[ti.Offset : ti.Offset+ti.Size], ti, nil
}

// Float32 returns a floating-point tensor (F32, F16, BF16 or F64) as float32.
func (f *SafetensorsData) Float32(name string) ([]float32, error) {
	b, ti, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	if !ti.DType.IsFloat() {
		return nil, &FormatError{File: f.Name, Tensor: name, Msg: fmt.Sprintf("is %s, not a float tensor", ti.DType)}
	}
	out := make([]float32, ti.Numel())
	if ti.DType == F64 {
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	raw := make([]byte, 4*len(out))
	if err := ConvertTo(raw, tensor.F32, b, ti.DType); err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// Int64s returns an integer or bool tensor (I64, I32, U8, I8, BOOL) as int64.
func (f *SafetensorsData) Int64s(name string) ([]int64, error) {
	b, ti, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	out := make([]int64, ti.Numel())
	switch ti.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(b[i])
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	default:
		return nil, &FormatError{File: f.Name, Tensor: name, Msg: fmt.Sprintf("is %s, not an integer tensor", ti.DType)}
	}
	return out, nil
}
