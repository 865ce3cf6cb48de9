// Package loader reads model weights: safetensors files, PyTorch zip
// checkpoints written by torch.save, the diffusers folder layout and the
// engine's own chunked fp16 pack (PACK.md), from local files, HTTP ranges or
// the browser's fetch, and streams them to the device.
//
// Entry points: Load (a pack or a diffusers folder, from any Source) returns
// a Model with the configs, tokenizer files and per-component
// tensor.Weights; WritePack makes a pack; ReadSafetensorsHeader,
// ReadTorchZip and ParseManifest give the tensor records of one file.
//
// tensor.go holds the one record every reader produces.
package loader

import (
	"fmt"
	"strings"
)

// DType is a tensor element type, spelled as safetensors spells it.
type DType string

// Element types the readers accept.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	U8   DType = "U8"
	I8   DType = "I8"
	F64  DType = "F64"
	BOOL DType = "BOOL"
)

// Size is the element size in bytes (0 for an unknown type).
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case U8, I8, BOOL:
		return 1
	}
	return 0
}

// IsFloat reports whether the type holds floating-point numbers.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// TensorInfo describes one stored tensor: where its bytes are and how to
// read them. Every reader (safetensors, PyTorch zip, pack) returns these.
type TensorInfo struct {
	Name  string // state-dict key without the component, e.g. "conv_in.weight"
	DType DType  // element type on disk
	Shape []int  // PyTorch shape
	File  string // file (path or URL relative to the source) holding the bytes
	// Entry is the zip entry holding the bytes when File is a PyTorch zip
	// checkpoint ("archive/data/3"), "" for plain files. Offset is then
	// relative to the entry's data, which starts after its local header.
	Entry  string
	Offset int64 // byte offset of the tensor's first element in File (or Entry)
	Size   int64 // bytes from Offset that hold the tensor (contiguous: numel × elem size)
	// Strides in elements, nil when the tensor is contiguous row-major.
	// Offset then points at the tensor's first element and Size covers the
	// whole span its strides reach.
	Strides []int
}

// Numel is the number of elements.
func (t *TensorInfo) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes is numel × element size: the size of a contiguous copy.
func (t *TensorInfo) Bytes() int64 { return int64(t.Numel()) * int64(t.DType.Size()) }

// Contiguous reports whether the bytes are plain row-major.
func (t *TensorInfo) Contiguous() bool { return t.Strides == nil }

func (t *TensorInfo) String() string {
	return fmt.Sprintf("%s %s%v @%s+%d", t.Name, t.DType, t.Shape, t.File, t.Offset)
}

// ShapeString prints a shape as [a, b, c].
func ShapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
