// pickle.go interprets the subset of Python's pickle format (protocols 2 to
// 5, as written by torch.save; docs/blipdiffusion.md §12.6) that a state
// dict uses: an (Ordered)dict of names to tensors rebuilt by
// torch._utils._rebuild_tensor_v2 from persistent-id storages.
//
// Nothing is executed: GLOBAL only names a callable, and REDUCE of a callable
// the reader does not know yields an opaque object. The machine is a flat
// loop over the opcodes (no recursion, memo in a map), so a hostile file costs
// memory and time linear in its size at worst.
package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxPickle bounds data.pkl: a state dict of a few thousand tensors takes
// a few hundred kilobytes.
const MaxPickle = 64 << 20

// Python values the machine builds.
type (
	pyTuple  []any
	pyList   struct{ items []any }
	pyDict   struct{ keys, vals []any } // insertion order
	pyGlobal struct{ module, name string }
	// pyObject is the result of calling (or building) something the
	// reader does not model.
	pyObject struct{ callable pyGlobal }
)

// pickleEntry is one name → value pair of the top-level dict.
type pickleEntry struct {
	name string
	val  any
}

// parseTorchPickle runs data.pkl and returns the top-level dict's entries
// in order. file names the checkpoint in errors.
func parseTorchPickle(data []byte, file string) ([]pickleEntry, error) {
	if len(data) > MaxPickle {
		return nil, formatErr(file, "", "data.pkl has %d bytes, more than the %d-byte limit", len(data), MaxPickle)
	}
	m := &unpickler{data: data, file: file, memo: map[uint32]any{}}
	v, err := m.run()
	if err != nil {
		return nil, err
	}
	if m.refused != "" {
		return nil, formatErr(file, "", "data.pkl calls %s, which a state dict never does: refused (nothing was run)", m.refused)
	}
	d, ok := v.(*pyDict)
	if !ok {
		return nil, formatErr(file, "", "data.pkl holds a %s, not a state dict", pyType(v))
	}
	// Some trainers wrap the state dict: {"state_dict": {...}}.
	if len(d.keys) == 1 && d.keys[0] == "state_dict" {
		if inner, ok := d.vals[0].(*pyDict); ok {
			d = inner
		}
	}
	out := make([]pickleEntry, 0, len(d.keys))
	index := map[string]int{}
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, formatErr(file, "", "state dict key %d is a %s, not a string", i, pyType(k))
		}
		// Python keeps the first position and the last value of a key.
		if j, dup := index[name]; dup {
			out[j].val = d.vals[i]
			continue
		}
		index[name] = len(out)
		out = append(out, pickleEntry{name, d.vals[i]})
	}
	return out, nil
}

type unpickler struct {
	data   []byte
	pos    int
	file   string
	stack  []any
	marks  []int
	memo   map[uint32]any
	nextID uint32 // MEMOIZE index
	// refused is the first call of a callable that runs code or touches
	// the system (os.system, builtins.eval): never run, but reported, as
	// a file that calls one is no state dict, whatever else it holds.
	refused string
}

func (m *unpickler) errf(f string, a ...any) error {
	return formatErr(m.file, "", "data.pkl at byte %d: %s", m.pos, fmt.Sprintf(f, a...))
}

func (m *unpickler) take(n int) ([]byte, error) {
	if n < 0 || n > len(m.data)-m.pos {
		return nil, m.errf("truncated")
	}
	b := m.data[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *unpickler) line() (string, error) {
	i := bytes.IndexByte(m.data[m.pos:], '\n')
	if i < 0 {
		return "", m.errf("truncated text argument")
	}
	s := string(m.data[m.pos : m.pos+i])
	m.pos += i + 1
	return s, nil
}

func (m *unpickler) push(v any) { m.stack = append(m.stack, v) }

func (m *unpickler) pop() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) <= m.marks[len(m.marks)-1]) {
		return nil, m.errf("stack underflow")
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *unpickler) top() (any, error) {
	if len(m.stack) == 0 || (len(m.marks) > 0 && len(m.stack) <= m.marks[len(m.marks)-1]) {
		return nil, m.errf("stack underflow")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark removes and returns the items above the last MARK.
func (m *unpickler) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, m.errf("no MARK on the stack")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *unpickler) u8() (int, error) {
	b, err := m.take(1)
	if err != nil {
		return 0, err
	}
	return int(b[0]), nil
}

func (m *unpickler) u32() (uint32, error) {
	b, err := m.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (m *unpickler) u64() (uint64, error) {
	b, err := m.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Opcodes (CPython Lib/pickle.py).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
)

func (m *unpickler) run() (any, error) {
	for {
		if m.pos >= len(m.data) {
			return nil, m.errf("no STOP opcode (truncated)")
		}
		op := m.data[m.pos]
		m.pos++
		switch op {
		case opProto:
			v, err := m.u8()
			if err != nil {
				return nil, err
			}
			if v > 5 {
				return nil, m.errf("pickle protocol %d", v)
			}
		case opFrame:
			if _, err := m.take(8); err != nil {
				return nil, err
			}
		case opStop:
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case opMark:
			m.marks = append(m.marks, len(m.stack))
		case opPop:
			if _, err := m.pop(); err != nil {
				return nil, err
			}
		case opPopMark:
			if _, err := m.popMark(); err != nil {
				return nil, err
			}
		case opDup:
			v, err := m.top()
			if err != nil {
				return nil, err
			}
			m.push(v)
		case opNone:
			m.push(nil)
		case opNewTrue:
			m.push(true)
		case opNewFalse:
			m.push(false)
		case opBinInt:
			v, err := m.u32()
			if err != nil {
				return nil, err
			}
			m.push(int64(int32(v)))
		case opBinInt1:
			v, err := m.u8()
			if err != nil {
				return nil, err
			}
			m.push(int64(v))
		case opBinInt2:
			b, err := m.take(2)
			if err != nil {
				return nil, err
			}
			m.push(int64(binary.LittleEndian.Uint16(b)))
		case opLong1, opLong4:
			var n int
			if op == opLong1 {
				k, err := m.u8()
				if err != nil {
					return nil, err
				}
				n = k
			} else {
				k, err := m.u32()
				if err != nil {
					return nil, err
				}
				if k > 8 {
					return nil, m.errf("integer of %d bytes does not fit 64 bits", k)
				}
				n = int(k)
			}
			if n > 8 {
				return nil, m.errf("integer of %d bytes does not fit 64 bits", n)
			}
			b, err := m.take(n)
			if err != nil {
				return nil, err
			}
			var v int64
			for i := n - 1; i >= 0; i-- {
				v = v<<8 | int64(b[i])
			}
			if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend two's complement
				v -= 1 << (8 * n)
			}
			m.push(v)
		case opInt, opLong:
			s, err := m.line()
			if err != nil {
				return nil, err
			}
			s = strings.TrimSuffix(s, "L")
			switch s {
			case "00":
				m.push(false)
				continue
			case "01":
				m.push(true)
				continue
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, m.errf("bad integer %q", s)
			}
			m.push(v)
		case opBinFloat:
			b, err := m.take(8)
			if err != nil {
				return nil, err
			}
			m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case opFloat:
			s, err := m.line()
			if err != nil {
				return nil, err
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, m.errf("bad float %q", s)
			}
			m.push(v)
		case opBinUnicode, opBinString, opBinBytes, opShortBinUni, opShortBinString, opShortBinBytes, opBinUnicode8, opBinBytes8:
			var n uint64
			switch op {
			case opShortBinUni, opShortBinString, opShortBinBytes:
				k, err := m.u8()
				if err != nil {
					return nil, err
				}
				n = uint64(k)
			case opBinUnicode8, opBinBytes8:
				k, err := m.u64()
				if err != nil {
					return nil, err
				}
				n = k
			default:
				k, err := m.u32()
				if err != nil {
					return nil, err
				}
				n = uint64(k)
			}
			if n > uint64(len(m.data)-m.pos) {
				return nil, m.errf("string of %d bytes runs past the end", n)
			}
			b, _ := m.take(int(n))
			if op == opBinBytes || op == opShortBinBytes || op == opBinBytes8 {
				m.push([]byte(string(b)))
			} else {
				m.push(string(b))
			}
		case opUnicode:
			s, err := m.line()
			if err != nil {
				return nil, err
			}
			m.push(s)
		case opEmptyTuple:
			m.push(pyTuple{})
		case opTuple:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			m.push(pyTuple(items))
		case opTuple1, opTuple2, opTuple3:
			n := int(op-opTuple1) + 1
			t := make(pyTuple, n)
			for i := n - 1; i >= 0; i-- {
				v, err := m.pop()
				if err != nil {
					return nil, err
				}
				t[i] = v
			}
			m.push(t)
		case opEmptyList:
			m.push(&pyList{})
		case opList:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			m.push(&pyList{items: items})
		case opAppend:
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			l, err := m.top()
			if err != nil {
				return nil, err
			}
			pl, ok := l.(*pyList)
			if !ok {
				return nil, m.errf("APPEND to a %s", pyType(l))
			}
			pl.items = append(pl.items, v)
		case opAppends:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			l, err := m.top()
			if err != nil {
				return nil, err
			}
			pl, ok := l.(*pyList)
			if !ok {
				return nil, m.errf("APPENDS to a %s", pyType(l))
			}
			pl.items = append(pl.items, items...)
		case opEmptyDict:
			m.push(&pyDict{})
		case opDict:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			d := &pyDict{}
			if err := m.setItems(d, items); err != nil {
				return nil, err
			}
			m.push(d)
		case opSetItem:
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			k, err := m.pop()
			if err != nil {
				return nil, err
			}
			d, err := m.topDict("SETITEM")
			if err != nil {
				return nil, err
			}
			d.keys, d.vals = append(d.keys, k), append(d.vals, v)
		case opSetItems:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			d, err := m.topDict("SETITEMS")
			if err != nil {
				return nil, err
			}
			if err := m.setItems(d, items); err != nil {
				return nil, err
			}
		case opEmptySet:
			m.push(&pyList{})
		case opAddItems:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			l, err := m.top()
			if err != nil {
				return nil, err
			}
			if pl, ok := l.(*pyList); ok {
				pl.items = append(pl.items, items...)
			} else {
				return nil, m.errf("ADDITEMS to a %s", pyType(l))
			}
		case opFrozenSet:
			items, err := m.popMark()
			if err != nil {
				return nil, err
			}
			m.push(&pyList{items: items})
		case opGlobal:
			mod, err := m.line()
			if err != nil {
				return nil, err
			}
			name, err := m.line()
			if err != nil {
				return nil, err
			}
			m.push(pyGlobal{mod, name})
		case opStackGlobal:
			n, err := m.pop()
			if err != nil {
				return nil, err
			}
			mod, err := m.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := mod.(string)
			ns, ok2 := n.(string)
			if !ok1 || !ok2 {
				return nil, m.errf("STACK_GLOBAL needs two strings")
			}
			m.push(pyGlobal{ms, ns})
		case opReduce, opNewObj:
			args, err := m.pop()
			if err != nil {
				return nil, err
			}
			fn, err := m.pop()
			if err != nil {
				return nil, err
			}
			at, ok := args.(pyTuple)
			if !ok {
				return nil, m.errf("call with %s arguments", pyType(args))
			}
			g, ok := fn.(pyGlobal)
			if !ok {
				return nil, m.errf("call of a %s", pyType(fn))
			}
			v, err := m.call(g, at)
			if err != nil {
				return nil, err
			}
			m.push(v)
		case opBuild:
			// The state of an OrderedDict (its _metadata) or of an opaque
			// object: nothing the loader needs.
			if _, err := m.pop(); err != nil {
				return nil, err
			}
			if _, err := m.top(); err != nil {
				return nil, err
			}
		case opBinPersID:
			pid, err := m.pop()
			if err != nil {
				return nil, err
			}
			st, err := m.storage(pid)
			if err != nil {
				return nil, err
			}
			m.push(st)
		case opBinPut, opLongBinPut, opPut, opMemoize:
			idx := m.nextID
			if op != opMemoize {
				var err error
				if idx, err = m.memoIndex(op); err != nil {
					return nil, err
				}
			}
			v, err := m.top()
			if err != nil {
				return nil, err
			}
			m.memo[idx] = v
			if idx >= m.nextID {
				m.nextID = idx + 1
			}
		case opBinGet, opLongBinGet, opGet:
			idx, err := m.memoIndex(op)
			if err != nil {
				return nil, err
			}
			v, ok := m.memo[idx]
			if !ok {
				return nil, m.errf("memo index %d was never stored", idx)
			}
			m.push(v)
		default:
			m.pos--
			return nil, m.errf("unsupported opcode 0x%02x", op)
		}
	}
}

// memoIndex reads the memo index of a PUT or GET opcode: one byte
// (BINPUT, BINGET), four (LONG_BINPUT, LONG_BINGET), or a decimal line
// (PUT, GET).
func (m *unpickler) memoIndex(op byte) (uint32, error) {
	switch op {
	case opBinPut, opBinGet:
		k, err := m.u8()
		return uint32(k), err
	case opLongBinPut, opLongBinGet:
		return m.u32()
	}
	s, err := m.line()
	if err != nil {
		return 0, err
	}
	k, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, m.errf("bad memo index %q", s)
	}
	return uint32(k), nil
}

func (m *unpickler) topDict(op string) (*pyDict, error) {
	v, err := m.top()
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pyDict)
	if !ok {
		return nil, m.errf("%s on a %s", op, pyType(v))
	}
	return d, nil
}

func (m *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return m.errf("odd number of dict items")
	}
	for i := 0; i < len(items); i += 2 {
		d.keys = append(d.keys, items[i])
		d.vals = append(d.vals, items[i+1])
	}
	return nil
}

// forbiddenModules are the modules whose callables run code or reach the
// system; with forbiddenBuiltins, what a hostile pickle calls.
var forbiddenModules = map[string]bool{
	"os": true, "posix": true, "nt": true, "subprocess": true, "sys": true, "shutil": true,
	"socket": true, "runpy": true, "importlib": true, "pty": true, "commands": true,
	"webbrowser": true, "code": true, "ctypes": true, "pickle": true, "marshal": true,
	"types": true, "io": true, "pathlib": true, "platform": true, "multiprocessing": true,
	"threading": true, "signal": true, "tempfile": true, "urllib": true, "http": true,
}

var forbiddenBuiltins = map[string]bool{
	"eval": true, "exec": true, "compile": true, "getattr": true, "setattr": true,
	"delattr": true, "__import__": true, "open": true, "globals": true, "locals": true,
	"vars": true, "input": true, "breakpoint": true, "apply": true, "execfile": true,
}

// forbidden reports whether g runs code or reaches the system.
func forbidden(g pyGlobal) bool {
	top, _, _ := strings.Cut(g.module, ".")
	if forbiddenModules[top] {
		return true
	}
	return (g.module == "builtins" || g.module == "__builtin__") && forbiddenBuiltins[g.name]
}

// pyType names a value's type for messages (never its contents, which may
// be self-referencing).
func pyType(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return "global " + x.module + "." + x.name
	case *pyObject:
		return x.callable.module + "." + x.callable.name + " object"
	case *torchStorage:
		return "storage"
	case *torchTensor:
		return "tensor"
	}
	return "value"
}
