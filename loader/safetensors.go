// safetensors.go reads the safetensors format (huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON mapping each
// tensor name to {dtype, shape, data_offsets: [begin, end]} relative to the
// data section that follows, plus an optional "__metadata__" string map.
//
// The reader is strict, because files come from the network: the header
// length is bounded, the JSON must have exactly that shape, offsets must lie
// inside the file, tensors may not overlap, and dtype × shape must equal the
// byte count.
package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// MaxSafetensorsHeader bounds the JSON header (the reference implementation
// refuses more than 100 MB).
const MaxSafetensorsHeader = 100 << 20

// SafetensorsFile is a parsed header.
type SafetensorsFile struct {
	Name     string            // file name used in errors and TensorInfo.File
	Tensors  []TensorInfo      // in data order
	Metadata map[string]string // the "__metadata__" map, if any
	DataBase int64             // absolute offset of the data section
}

// ReadSafetensorsHeader parses the header of a safetensors file of the
// given total size. Only the header bytes are read.
func ReadSafetensorsHeader(r io.ReaderAt, size int64, name string) (*SafetensorsFile, error) {
	ferr := func(tensor, f string, a ...any) error {
		return &FormatError{File: name, Tensor: tensor, Msg: fmt.Sprintf(f, a...)}
	}
	if size < 8 {
		return nil, ferr("", "truncated: %d bytes, a safetensors file has at least 8", size)
	}
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil {
		return nil, ferr("", "reading the header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n > MaxSafetensorsHeader {
		return nil, ferr("", "header length %d exceeds the %d-byte limit", n, MaxSafetensorsHeader)
	}
	if int64(n) > size-8 {
		return nil, ferr("", "truncated: header says %d bytes, the file has %d after the length", n, size-8)
	}
	hb := make([]byte, n)
	if _, err := r.ReadAt(hb, 8); err != nil {
		return nil, ferr("", "reading the header: %v", err)
	}
	return ParseSafetensorsHeader(hb, size, name)
}

// ParseSafetensorsHeader parses header JSON hb of a file of total size
// bytes (the data section starts at 8+len(hb)).
func ParseSafetensorsHeader(hb []byte, size int64, name string) (*SafetensorsFile, error) {
	ferr := func(tensor, f string, a ...any) error {
		return &FormatError{File: name, Tensor: tensor, Msg: fmt.Sprintf(f, a...)}
	}
	// Walk the object by tokens rather than into a map, so that a key given
	// twice is refused instead of silently keeping the last.
	type kv struct {
		key string
		val json.RawMessage
	}
	var raw []kv
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(hb))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, ferr("", "header is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, ferr("", "header is not valid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, ferr("", "header is not valid JSON: key %v", tok)
		}
		if seen[key] {
			return nil, ferr(key, "named twice in the header")
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, ferr(key, "header is not valid JSON: %v", err)
		}
		raw = append(raw, kv{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, ferr("", "header is not valid JSON: %v", err)
	}
	// The spec allows trailing spaces as padding; anything else is an error.
	if len(bytes.Trim(hb[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, ferr("", "trailing data after the header JSON")
	}
	base := 8 + int64(len(hb))
	dataLen := size - base
	f := &SafetensorsFile{Name: name, DataBase: base}
	type entry struct {
		DType   *string  `json:"dtype"`
		Shape   *[]int64 `json:"shape"`
		Offsets *[]int64 `json:"data_offsets"`
	}
	type span struct {
		b, e int64
		name string
	}
	var spans []span
	for _, kv := range raw {
		key, v := kv.key, kv.val
		if key == "__metadata__" {
			md := map[string]string{}
			if err := json.Unmarshal(v, &md); err != nil {
				return nil, ferr("", "__metadata__ must map strings to strings: %v", err)
			}
			f.Metadata = md
			continue
		}
		var e entry
		d := json.NewDecoder(bytes.NewReader(v))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, ferr(key, "bad entry: %v", err)
		}
		if e.DType == nil || e.Shape == nil || e.Offsets == nil {
			return nil, ferr(key, "entry needs dtype, shape and data_offsets")
		}
		dt := DType(*e.DType)
		if dt.Size() == 0 {
			return nil, ferr(key, "unsupported dtype %q", *e.DType)
		}
		if len(*e.Offsets) != 2 {
			return nil, ferr(key, "data_offsets must have 2 entries, has %d", len(*e.Offsets))
		}
		b, en := (*e.Offsets)[0], (*e.Offsets)[1]
		if b < 0 || en < b || en > dataLen {
			return nil, ferr(key, "data_offsets [%d, %d] outside the %d-byte data section (file truncated?)", b, en, dataLen)
		}
		shape := make([]int, len(*e.Shape))
		numel := int64(1)
		for i, s := range *e.Shape {
			if s < 0 || s > math.MaxInt32 {
				return nil, ferr(key, "bad dimension %d", s)
			}
			shape[i] = int(s)
			if s != 0 && numel > math.MaxInt64/s/8 {
				return nil, ferr(key, "shape %v overflows", *e.Shape)
			}
			numel *= s
		}
		if numel*int64(dt.Size()) != en-b {
			return nil, ferr(key, "%s%v needs %d bytes, data_offsets give %d", dt, shape, numel*int64(dt.Size()), en-b)
		}
		f.Tensors = append(f.Tensors, TensorInfo{Name: key, DType: dt, Shape: shape, File: name, Offset: base + b, Size: en - b})
		spans = append(spans, span{b, en, key})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].b != spans[j].b {
			return spans[i].b < spans[j].b
		}
		return spans[i].name < spans[j].name
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].b < spans[i-1].e {
			return nil, ferr(spans[i].name, "data overlaps tensor %q", spans[i-1].name)
		}
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		if f.Tensors[i].Offset != f.Tensors[j].Offset {
			return f.Tensors[i].Offset < f.Tensors[j].Offset
		}
		return f.Tensors[i].Name < f.Tensors[j].Name
	})
	return f, nil
}

// Find returns the tensor named name, or nil.
func (f *SafetensorsFile) Find(name string) *TensorInfo {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// SafetensorsTensor is one tensor to write with WriteSafetensors.
type SafetensorsTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // little-endian, numel × dtype size bytes
}

// WriteSafetensors writes tensors (in the given order) and metadata.
func WriteSafetensors(w io.Writer, tensors []SafetensorsTensor, metadata map[string]string) error {
	entries := make([]SafetensorsEntry, len(tensors))
	for i, t := range tensors {
		entries[i] = SafetensorsEntry{Name: t.Name, DType: t.DType, Shape: t.Shape}
		if n := entries[i].Bytes(); n != int64(len(t.Data)) {
			return fmt.Errorf("loader: safetensors tensor %q: %s%v needs %d bytes, has %d", t.Name, t.DType, t.Shape, n, len(t.Data))
		}
	}
	if err := WriteSafetensorsHeader(w, entries, metadata); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// SafetensorsEntry is one tensor's record in a safetensors header.
type SafetensorsEntry struct {
	Name  string
	DType DType
	Shape []int
}

// Bytes is the size of the tensor's data.
func (e SafetensorsEntry) Bytes() int64 {
	n := int64(e.DType.Size())
	for _, d := range e.Shape {
		n *= int64(d)
	}
	return n
}

// WriteSafetensorsHeader writes the header length and the JSON header
// (padded to 8 bytes) of a file whose tensors follow back to back in the
// order given; the caller writes their data next (streaming writers do it
// chunk by chunk).
func WriteSafetensorsHeader(w io.Writer, entries []SafetensorsEntry, metadata map[string]string) error {
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for _, e := range entries {
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		n := e.Bytes()
		hdr[e.Name] = map[string]any{"dtype": e.DType, "shape": shape, "data_offsets": []int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(hb)))
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	_, err = w.Write(hb)
	return err
}
