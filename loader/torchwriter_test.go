package loader

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// A minimal torch.save writer for tests: a protocol-2 pickle of an
// (Ordered)dict of _rebuild_tensor_v2 calls, and a zip of stored entries.

type tStorage struct {
	key  string
	typ  string // "FloatStorage", "HalfStorage", …
	data []byte
	size int // elements
}

type tTensor struct {
	name          string
	key           string
	offset        int
	shape, stride []int
	param         bool // wrapped in _rebuild_parameter, as nn.Parameter pickles
}

type pw struct{ bytes.Buffer }

func (w *pw) op(b ...byte) { w.Write(b) }

func (w *pw) int(v int64) {
	if v >= 0 && v < 256 {
		w.op('K', byte(v))
		return
	}
	if v >= -1<<31 && v < 1<<31 {
		w.op('J')
		binary.Write(w, binary.LittleEndian, int32(v))
		return
	}
	w.op(0x8a, 8)
	binary.Write(w, binary.LittleEndian, v)
}

func (w *pw) str(s string) {
	w.op('X')
	binary.Write(w, binary.LittleEndian, uint32(len(s)))
	w.WriteString(s)
}

func (w *pw) global(mod, name string) { w.WriteString("c" + mod + "\n" + name + "\n") }

func (w *pw) ints(v []int) {
	w.op('(')
	for _, x := range v {
		w.int(int64(x))
	}
	w.op('t')
}

// torchPickle writes data.pkl for the tensors; ordered uses an OrderedDict
// with a _metadata BUILD, as transformers' state dicts have.
func torchPickle(tensors []tTensor, storages map[string]tStorage, ordered bool) []byte {
	w := &pw{}
	w.op(0x80, 2)
	if ordered {
		w.global("collections", "OrderedDict")
		w.op(')', 'R')
	} else {
		w.op('}')
	}
	w.op('q', 0) // BINPUT 0
	w.op('(')
	for _, t := range tensors {
		w.str(t.name)
		if t.param {
			w.global("torch._utils", "_rebuild_parameter")
			w.op('(')
		}
		w.global("torch._utils", "_rebuild_tensor_v2")
		w.op('(')
		st := storages[t.key]
		w.op('(')
		w.str("storage")
		w.global("torch", st.typ)
		w.str(st.key)
		w.str("cpu")
		w.int(int64(st.size))
		w.op('t', 'Q')
		w.int(int64(t.offset))
		w.ints(t.shape)
		w.ints(t.stride)
		w.op(0x89)
		w.global("collections", "OrderedDict")
		w.op(')', 'R')
		w.op('t', 'R')
		if t.param {
			w.op(0x89) // requires_grad
			w.global("collections", "OrderedDict")
			w.op(')', 'R')
			w.op('t', 'R')
		}
	}
	w.op('u')
	if ordered {
		w.op('}')
		w.str("_metadata")
		w.op('}', 's')
		w.op('b')
	}
	w.op('.')
	return w.Bytes()
}

// torchZip writes a checkpoint: <root>/data.pkl, <root>/data/<key> and
// <root>/version. method is used for the storage entries.
func torchZip(t testing.TB, root string, pkl []byte, storages []tStorage, method uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte, m uint16) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add(root+"/data.pkl", pkl, zip.Store)
	for _, s := range storages {
		add(root+"/data/"+s.key, s.data, method)
	}
	add(root+"/version", []byte("3\n"), zip.Store)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
