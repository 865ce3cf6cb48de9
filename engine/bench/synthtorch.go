// synthtorch.go writes a synthetic checkpoint file in torch.save's zip
// format (ELITE's mapper files: global_mapper.pt, local_mapper.pt): a
// protocol-2 pickle of an OrderedDict of _rebuild_tensor_v2 calls, one
// HalfStorage per tensor, each stored uncompressed and streamed a chunk at
// a time like the safetensors files.
package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"harmony/loader"
)

// pickler writes the few pickle opcodes a state dict needs.
type pickler struct{ bytes.Buffer }

func (w *pickler) op(b ...byte) { w.Write(b) }

func (w *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 256:
		w.op('K', byte(v))
	case v >= -1<<31 && v < 1<<31:
		w.op('J')
		binary.Write(w, binary.LittleEndian, int32(v))
	default:
		w.op(0x8a, 8)
		binary.Write(w, binary.LittleEndian, v)
	}
}

func (w *pickler) str(s string) {
	w.op('X')
	binary.Write(w, binary.LittleEndian, uint32(len(s)))
	w.WriteString(s)
}

func (w *pickler) global(mod, name string) { w.WriteString("c" + mod + "\n" + name + "\n") }

func (w *pickler) ints(v []int) {
	w.op('(')
	for _, x := range v {
		w.int(int64(x))
	}
	w.op('t')
}

// statePickle is data.pkl for contiguous fp16 tensors, tensor i in storage
// "i".
func statePickle(ts []Tensor) []byte {
	w := &pickler{}
	w.op(0x80, 2)
	w.global("collections", "OrderedDict")
	w.op(')', 'R')
	w.op('(')
	for i, t := range ts {
		stride := make([]int, len(t.Shape))
		s := 1
		for d := len(t.Shape) - 1; d >= 0; d-- {
			stride[d] = s
			s *= t.Shape[d]
		}
		w.str(t.Name)
		w.global("torch._utils", "_rebuild_tensor_v2")
		w.op('(')
		w.op('(')
		w.str("storage")
		w.global("torch", "HalfStorage")
		w.str(strconv.Itoa(i))
		w.str("cpu")
		w.int(t.Numel())
		w.op('t', 'Q')
		w.int(0)
		w.ints(t.Shape)
		w.ints(stride)
		w.op(0x89)
		w.global("collections", "OrderedDict")
		w.op(')', 'R')
		w.op('t', 'R')
	}
	w.op('u', '.')
	return w.Bytes()
}

// writeTorchZip streams a torch.save checkpoint of ts (all F16) with the
// archive root root.
func writeTorchZip(ctx context.Context, out io.Writer, root string, ts []Tensor, progress func(n int64)) error {
	zw := zip.NewWriter(out)
	entry := func(name string) (io.Writer, error) {
		return zw.CreateHeader(&zip.FileHeader{Name: root + "/" + name, Method: zip.Store})
	}
	w, err := entry("data.pkl")
	if err != nil {
		return err
	}
	if _, err := w.Write(statePickle(ts)); err != nil {
		return err
	}
	if w, err = entry("byteorder"); err != nil {
		return err
	}
	if _, err := w.Write([]byte("little")); err != nil {
		return err
	}
	vals := make([]float32, chunkElems)
	raw := make([]byte, 2*chunkElems)
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.DType != loader.F16 {
			return fmt.Errorf("bench: synth: %s: dtype %s in a torch checkpoint", t.Name, t.DType)
		}
		if w, err = entry("data/" + strconv.Itoa(i)); err != nil {
			return err
		}
		v := NewValues(t.Component, t.Name, t.Shape)
		for left := t.Numel(); left > 0; {
			n := int(min(left, chunkElems))
			v.Fill(vals[:n])
			for j, f := range vals[:n] {
				binary.LittleEndian.PutUint16(raw[2*j:], f16Bits(f))
			}
			if _, err := w.Write(raw[:2*n]); err != nil {
				return err
			}
			progress(int64(2 * n))
			left -= int64(n)
		}
	}
	if w, err = entry("version"); err != nil {
		return err
	}
	if _, err := w.Write([]byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}
