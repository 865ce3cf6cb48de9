// stream.go moves tensor bytes from files to their destination without
// ever holding more than one piece of a file.
//
// Each file to read is a sorted list of spans: byte ranges with a sink that
// takes their bytes in order (a tensor, or a zip entry that parses its
// local header and hands its data to the tensors that use the storage).
// The spans are covered by pieces: ranges of at most a piece size (a pack
// shard, or about 32 MiB of a diffusers file, small gaps included) that are
// read whole (from the cache or by one streamed range request), checked,
// and dispatched. Tensor sinks convert chunk by chunk into one reused buffer
// and upload at byte offsets that stay multiples of 4.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"strconv"

	"github.com/x448/float16"

	"harmony/engine/tensor"
)

// Defaults for Options.
const (
	DefaultPieceSize = 32 << 20 // bytes per range request / cache entry
	DefaultChunkSize = 4 << 20  // bytes of converted data per upload
	maxGap           = 1 << 20  // gaps up to this are read rather than split
	progressStep     = 1 << 20  // report progress at least every this many bytes
)

// Progress reports bytes moved so far.
type Progress struct {
	BytesDone  int64  // bytes of weight data read (from the network, disk or cache)
	BytesTotal int64  // bytes to read in all
	FromCache  bool   // the current piece came from the cache
	CacheBytes int64  // of BytesDone, bytes served by the cache
	File       string // file being read
}

// tensorPlan is one tensor on its way from a file to a target.
type tensorPlan struct {
	comp  string       // component
	name  string       // canonical state-dict name
	info  TensorInfo   // as stored
	shape []int        // canonical shape
	out   tensor.DType // type at the destination
	dst   any          // the target's handle
}

// target is where tensors go: a backend (loading) or pack shards (packing).
type target interface {
	alloc(tp *tensorPlan) error
	write(tp *tensorPlan, off int64, data []byte) error
	// check reports an error recorded by writes (a backend's sticky error).
	check() error
}

// sink takes the bytes of one span in order.
type sink interface {
	write(p []byte) error
	close() error
}

type fileSpan struct {
	off, end int64
	sink     sink
}

type piece struct {
	off, end int64
	sha      string // expected hex SHA-256 (pack shards), "" when unknown
	key      string // cache key, "" for none
}

// filePlan is everything to read from one file.
type filePlan struct {
	file   File
	spans  []fileSpan // sorted, disjoint
	pieces []piece
}

// makePieces covers the spans with pieces of at most size bytes, joining
// spans whose gap is at most maxGap. key derives a piece's cache key.
func makePieces(spans []fileSpan, size int64, key func(off, end int64) string) []piece {
	var out []piece
	open := false
	var cur piece
	flush := func() {
		if open {
			cur.key = key(cur.off, cur.end)
			out = append(out, cur)
			open = false
		}
	}
	for _, s := range spans {
		if s.off == s.end {
			continue
		}
		a := s.off
		for a < s.end {
			if open && (a-cur.end > maxGap || a >= cur.off+size) {
				flush()
			}
			if !open {
				cur, open = piece{off: a, end: a}, true
			}
			e := min(s.end, cur.off+size)
			cur.end, a = e, e
			if a < s.end {
				flush()
			}
		}
	}
	flush()
	return out
}

// sortedSpans checks that spans are sorted and disjoint.
func sortedSpans(spans []fileSpan, file string) error {
	for i := 1; i < len(spans); i++ {
		if spans[i].off < spans[i-1].end {
			return formatErr(file, "", "data ranges [%d, %d) and [%d, %d) overlap", spans[i-1].off, spans[i-1].end, spans[i].off, spans[i].end)
		}
	}
	return nil
}

// runner reads pieces and dispatches them.
type runner struct {
	ctx      context.Context
	cache    Cache
	progress func(Progress)
	tgt      target
	done     int64
	total    int64
	cached   int64
	lastRep  int64
	buf      []byte
}

func (r *runner) report(file string, fromCache, force bool) {
	if r.progress != nil && (force || r.done-r.lastRep >= progressStep) {
		r.lastRep = r.done
		r.progress(Progress{BytesDone: r.done, BytesTotal: r.total, FromCache: fromCache, CacheBytes: r.cached, File: file})
	}
}

// run reads one file's pieces and feeds its spans.
func (r *runner) run(fp *filePlan) error {
	si := 0
	var stored []string // cache keys of this file's pieces put by this run
	for _, pc := range fp.pieces {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		data, fromCache, err := r.fetch(fp.file, pc)
		var he *HashError
		if errors.As(err, &he) && r.cache != nil {
			// A file checked as a whole (a Hub file against its listed
			// SHA-256) failed after its earlier pieces were kept: drop
			// them, or the next load would take them from the cache.
			for _, k := range stored {
				r.cache.Delete(r.ctx, k)
			}
		}
		if err != nil {
			return err
		}
		if !fromCache && r.cache != nil && pc.key != "" {
			stored = append(stored, pc.key)
		}
		for si < len(fp.spans) && fp.spans[si].off < pc.end {
			s := fp.spans[si]
			a, e := max(s.off, pc.off), min(s.end, pc.end)
			if a < e {
				if err := s.sink.write(data[a-pc.off : e-pc.off]); err != nil {
					return err
				}
			}
			if s.end > pc.end {
				break
			}
			if err := s.sink.close(); err != nil {
				return err
			}
			si++
		}
		if err := r.tgt.check(); err != nil {
			return err
		}
		r.report(fp.file.Name(), fromCache, true)
	}
	for ; si < len(fp.spans); si++ { // empty spans past the last piece
		if fp.spans[si].off != fp.spans[si].end {
			return fmt.Errorf("loader: %s: internal error: span [%d, %d) not covered", fp.file.Name(), fp.spans[si].off, fp.spans[si].end)
		}
		if err := fp.spans[si].sink.close(); err != nil {
			return err
		}
	}
	return nil
}

// fetch returns a piece's bytes: from the cache when it holds a verified
// copy, else from the file (then stored in the cache).
func (r *runner) fetch(f File, pc piece) ([]byte, bool, error) {
	n := pc.end - pc.off
	if r.cache != nil && pc.key != "" {
		got, ok, err := r.cache.Get(r.ctx, pc.key, r.buf[:0])
		if err != nil {
			if r.ctx.Err() != nil {
				return nil, false, r.ctx.Err()
			}
			ok = false // an unreadable entry is fetched again
		}
		if ok {
			r.buf = got[:cap(got)]
			if data, good := verifyEntry(got, n, pc.sha); good {
				r.done += n
				r.cached += n
				return data, true, nil
			}
			// Corrupt, truncated or from another file version.
			if err := r.cache.Delete(r.ctx, pc.key); err != nil && r.ctx.Err() != nil {
				return nil, false, r.ctx.Err()
			}
		}
	}
	if int64(cap(r.buf)) < n+sha256.Size {
		r.buf = make([]byte, n+sha256.Size)
	}
	data := r.buf[:n]
	s, err := f.Stream(pc.off, n)
	if err != nil {
		return nil, false, err
	}
	defer s.Close()
	for got := int64(0); got < n; {
		k, err := s.Read(data[got:min(n, got+progressStep)])
		got += int64(k)
		r.done += int64(k)
		if err != nil && got < n {
			if err == io.EOF {
				err = &SourceError{URL: f.Name(), Op: "read", Err: fmt.Errorf("file ended at byte %d, expected %d (truncated?)", pc.off+got, pc.end)}
			}
			return nil, false, err
		}
		r.report(f.Name(), false, false)
	}
	if pc.sha == "" && (r.cache == nil || pc.key == "") {
		return data, false, nil
	}
	sum := sha256.Sum256(data)
	if pc.sha != "" && hex.EncodeToString(sum[:]) != pc.sha {
		return nil, false, &HashError{File: f.Name(), Want: pc.sha, Got: hex.EncodeToString(sum[:])}
	}
	if r.cache != nil && pc.key != "" {
		entry := append(r.buf[:n], sum[:]...)
		if err := r.cache.Put(r.ctx, pc.key, entry); err != nil {
			return nil, false, err
		}
	}
	return data, false, nil
}

// verifyEntry checks a cache entry: n data bytes followed by their
// SHA-256, which must also equal want when given.
func verifyEntry(b []byte, n int64, want string) ([]byte, bool) {
	if int64(len(b)) != n+sha256.Size {
		return nil, false
	}
	data, trailer := b[:n], b[n:]
	sum := sha256.Sum256(data)
	if string(sum[:]) != string(trailer) {
		return nil, false
	}
	if want != "" && hex.EncodeToString(sum[:]) != want {
		return nil, false
	}
	return data, true
}

// rangeKey is the cache key of a piece of a file read without a manifest.
func rangeKey(f File) func(off, end int64) string {
	return func(off, end int64) string {
		return "range/" + f.Name() + "?size=" + strconv.FormatInt(f.Size(), 10) + "&tag=" + f.Tag() +
			"&bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end, 10)
	}
}

// conv is the scratch buffer shared by all tensor sinks (one file is
// dispatched at a time), allocated on first use.
type conv struct {
	buf   []byte
	chunk int // bytes of output per upload
	// allowOverflow keeps finite values that round to ±Inf in binary16
	// instead of refusing the tensor; allowInf keeps stored infinities.
	allowOverflow, allowInf bool
}

// tensorSink converts a tensor's stored bytes and writes them to the
// target in chunks.
type tensorSink struct {
	tp      *tensorPlan
	tgt     target
	cv      *conv
	unit    int   // input bytes per indivisible step (keeps output offsets 4-aligned)
	got     int64 // input bytes received
	outOff  int64 // output bytes written
	carry   []byte
	strided []byte // the whole span, for tensors with strides
}

func newTensorSink(tp *tensorPlan, tgt target, cv *conv) *tensorSink {
	u := tp.info.DType.Size()
	if tp.out.Size() == 2 {
		u *= 2 // two binary16 values per 4-byte word
	}
	return &tensorSink{tp: tp, tgt: tgt, cv: cv, unit: u}
}

func (s *tensorSink) write(p []byte) error {
	if s.got+int64(len(p)) > s.tp.info.Size {
		return fmt.Errorf("loader: %s: internal error: tensor %q given more than its %d bytes", s.tp.info.File, s.tp.info.Name, s.tp.info.Size)
	}
	s.got += int64(len(p))
	if s.tp.info.Strides != nil {
		if s.strided == nil {
			s.strided = make([]byte, 0, s.tp.info.Size)
		}
		s.strided = append(s.strided, p...)
		return nil
	}
	if len(s.carry) > 0 {
		k := min(s.unit-len(s.carry), len(p))
		s.carry = append(s.carry, p[:k]...)
		p = p[k:]
		if len(s.carry) < s.unit {
			return nil
		}
		if err := s.emit(s.carry); err != nil {
			return err
		}
		s.carry = s.carry[:0]
	}
	whole := len(p) / s.unit * s.unit
	if err := s.emit(p[:whole]); err != nil {
		return err
	}
	s.carry = append(s.carry, p[whole:]...)
	return nil
}

func (s *tensorSink) close() error {
	ti := &s.tp.info
	if s.got != ti.Size {
		return formatErr(ti.File, ti.Name, "got %d of its %d bytes (truncated file?)", s.got, ti.Size)
	}
	if ti.Strides != nil {
		b := gather(s.strided, ti)
		s.strided = nil
		return s.emit(b)
	}
	if len(s.carry) > 0 {
		if err := s.emit(s.carry); err != nil {
			return err
		}
		s.carry = s.carry[:0]
	}
	return nil
}

// emit converts whole elements and writes them at the next offset.
func (s *tensorSink) emit(b []byte) error {
	from, to := s.tp.info.DType, s.tp.out
	if (from == F32 && to == tensor.F32) || (from == F16 && to == tensor.F16) {
		// No conversion, but still in chunks: the browser stages each
		// writeBuffer in a buffer of its size.
		for len(b) > 0 {
			k := min(len(b), s.cv.chunk&^3)
			if err := s.check(b[:k], b[:k]); err != nil {
				return err
			}
			if err := s.tgt.write(s.tp, s.outOff, b[:k]); err != nil {
				return err
			}
			s.outOff += int64(k)
			b = b[k:]
		}
		return nil
	}
	inSize, outSize := from.Size(), to.Size()
	per := s.cv.chunk / outSize &^ 1 // elements per chunk, even
	if len(s.cv.buf) < per*outSize {
		s.cv.buf = make([]byte, per*outSize) // first conversion: most packs need none
	}
	for len(b) > 0 {
		n := min(len(b)/inSize, per)
		out := s.cv.buf[:n*outSize]
		if err := convert(out, to, b[:n*inSize], from); err != nil {
			return formatErr(s.tp.info.File, s.tp.info.Name, "%v", err)
		}
		// The chunk just converted is still in cache: checking it here
		// costs a fraction of the conversion.
		if err := s.check(out, b[:n*inSize]); err != nil {
			return err
		}
		if err := s.tgt.write(s.tp, s.outOff, out); err != nil {
			return err
		}
		s.outOff += int64(len(out))
		b = b[n*inSize:]
	}
	return nil
}

// check refuses a chunk whose output out holds a NaN, or ±Inf unless the
// conversion allows it (overflow from a finite value, or an infinity
// stored as such); in is the chunk's stored bytes.
func (s *tensorSink) check(out, in []byte) error {
	to, from := s.tp.out, s.tp.info.DType
	for i := firstNonFinite(out, to); i >= 0; {
		v := value(in[i*from.Size():], from)
		overflow := !math.IsNaN(v) && !math.IsInf(v, 0)
		if math.IsNaN(v) || (overflow && !s.cv.allowOverflow) || (!overflow && !s.cv.allowInf) {
			return s.nonFinite(in, i, overflow)
		}
		j := firstNonFinite(out[(i+1)*to.Size():], to)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil
}

// nonFinite is the error for element i of the chunk b (stored bytes) that
// is NaN or ±Inf, or (overflow) finite but beyond binary16's range.
func (s *tensorSink) nonFinite(b []byte, i int, overflow bool) error {
	ti := &s.tp.info
	idx := s.outOff/int64(s.tp.out.Size()) + int64(i)
	v := value(b[i*ti.DType.Size():], ti.DType)
	if overflow {
		return formatErr(ti.File, ti.Name, "element %d is %g, beyond float16's ±65504: it would become %s (load with f32 precision, or pack with --allow-overflow to keep the infinity)", idx, v, infName(v))
	}
	return formatErr(ti.File, ti.Name, "element %d is %s: the weights are damaged", idx, nonFiniteName(v))
}

func infName(v float64) string {
	if v < 0 {
		return "-Inf"
	}
	return "+Inf"
}

func nonFiniteName(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return infName(v)
}

// firstNonFinite returns the index of the first NaN or ±Inf among the
// little-endian elements of type dt in b, or -1.
func firstNonFinite(b []byte, dt tensor.DType) int {
	le := binary.LittleEndian
	switch dt {
	case tensor.F32:
		for i := 0; i+4 <= len(b); i += 4 {
			if le.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	case tensor.F16:
		for i := 0; i+2 <= len(b); i += 2 {
			if le.Uint16(b[i:])&0x7c00 == 0x7c00 {
				return i / 2
			}
		}
	}
	return -1
}

// value reads the element at the start of b as a float64.
func value(b []byte, dt DType) float64 {
	le := binary.LittleEndian
	switch dt {
	case F32:
		return float64(math.Float32frombits(le.Uint32(b)))
	case F16:
		return float64(float16.Frombits(le.Uint16(b)).Float32())
	case BF16:
		return float64(math.Float32frombits(uint32(le.Uint16(b)) << 16))
	case F64:
		return math.Float64frombits(le.Uint64(b))
	}
	return 0
}

// gather copies a strided tensor's elements into row-major order. span
// starts at the first element.
func gather(span []byte, ti *TensorInfo) []byte {
	es := ti.DType.Size()
	n := ti.Numel()
	out := make([]byte, n*es)
	idx := make([]int, len(ti.Shape))
	for i := 0; i < n; i++ {
		off := 0
		for d, k := range idx {
			off += k * ti.Strides[d]
		}
		copy(out[i*es:(i+1)*es], span[off*es:])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < ti.Shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// convert converts little-endian elements of type from into to: one
// rounding (to nearest even) for every pair, binary16 via float32 (exact
// for bf16 and f16 inputs).
func convert(dst []byte, to tensor.DType, src []byte, from DType) error {
	le := binary.LittleEndian
	n := len(src) / max(from.Size(), 1)
	if len(dst) != n*to.Size() || len(src) != n*from.Size() {
		return fmt.Errorf("loader: convert %d bytes of %s into %d bytes of %s", len(src), from, len(dst), to)
	}
	switch {
	case from == F32 && to == tensor.F32, from == F16 && to == tensor.F16:
		copy(dst, src)
	case from == F32 && to == tensor.F16:
		for i := range n {
			le.PutUint16(dst[2*i:], f32ToF16(le.Uint32(src[4*i:])))
		}
	case from == F16 && to == tensor.F32:
		for i := range n {
			le.PutUint32(dst[4*i:], math.Float32bits(float16.Frombits(le.Uint16(src[2*i:])).Float32()))
		}
	case from == BF16 && to == tensor.F32:
		for i := range n {
			le.PutUint32(dst[4*i:], uint32(le.Uint16(src[2*i:]))<<16)
		}
	case from == BF16 && to == tensor.F16:
		for i := range n {
			le.PutUint16(dst[2*i:], f32ToF16(uint32(le.Uint16(src[2*i:]))<<16))
		}
	case from == F64 && to == tensor.F32:
		for i := range n {
			le.PutUint32(dst[4*i:], math.Float32bits(float32(math.Float64frombits(le.Uint64(src[8*i:])))))
		}
	case from == F64 && to == tensor.F16:
		for i := range n {
			le.PutUint16(dst[2*i:], f32ToF16(math.Float32bits(float32(math.Float64frombits(le.Uint64(src[8*i:]))))))
		}
	default:
		return fmt.Errorf("loader: cannot convert %s to %s", from, to)
	}
	return nil
}

// f32ToF16 rounds a binary32 to the nearest binary16, ties to even (what
// torch's .half() and float16.Fromfloat32 compute; the loop it replaces
// was most of the time spent converting a checkpoint). NaNs stay quiet
// NaNs with their sign and top payload bits.
func f32ToF16(f uint32) uint16 {
	sign := uint16(f>>16) & 0x8000
	a := f & 0x7fffffff
	switch {
	case a > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(a>>13)&0x3ff
	case a >= 0x477ff000: // ≥ 65520 (halfway above 65504) and Inf
		return sign | 0x7c00
	case a >= 0x38800000: // ≥ 2^-14: normal; rebias the exponent by 127−15
		r := a - 112<<23
		r += 0xfff + (r>>13)&1
		return sign | uint16(r>>13)
	case a >= 0x33000000: // ≥ 2^-25: subnormal, k·2^-24
		e := a >> 23
		m := a&0x7fffff | 0x800000
		shift := 126 - e
		k := m >> shift
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || (rem == half && k&1 == 1) {
			k++
		}
		return sign | uint16(k)
	}
	return sign // below 2^-25 (or exactly half of the smallest subnormal): ±0
}

// entrySink takes a zip entry's bytes from its local header on: it skips
// the header, checks the CRC-32 of the data, and hands each tensor that
// uses the storage its byte range.
type entrySink struct {
	e      *zipEntry
	file   string
	hdr    []byte
	hdrLen int   // full local header length, 0 until known
	pos    int64 // data bytes seen
	crc    hash.Hash32
	subs   []entrySub
}

type entrySub struct {
	begin, end int64 // within the entry's data
	sink       sink
	name       string
	closed     bool
}

func newEntrySink(e *zipEntry, file string) *entrySink {
	return &entrySink{e: e, file: file, crc: crc32.NewIEEE()}
}

func (s *entrySink) tensorName() string {
	if len(s.subs) > 0 {
		return s.subs[0].name
	}
	return ""
}

func (s *entrySink) write(p []byte) error {
	for len(p) > 0 {
		if s.hdrLen == 0 || len(s.hdr) < s.hdrLen {
			need := zipLocalLen
			if s.hdrLen > 0 {
				need = s.hdrLen
			}
			k := min(need-len(s.hdr), len(p))
			s.hdr = append(s.hdr, p[:k]...)
			p = p[k:]
			if s.hdrLen == 0 && len(s.hdr) == zipLocalLen {
				n, err := s.e.localHeaderLen(s.hdr, s.file)
				if err != nil {
					var fe *FormatError
					if errors.As(err, &fe) {
						fe.Tensor = s.tensorName()
					}
					return err
				}
				s.hdrLen = n
			}
			continue
		}
		if s.pos >= s.e.csize {
			return nil // a data descriptor or padding before the next entry
		}
		k := min(int64(len(p)), s.e.csize-s.pos)
		d := p[:k]
		s.crc.Write(d)
		for i := range s.subs {
			sub := &s.subs[i]
			if sub.closed {
				continue
			}
			a, b := max(sub.begin, s.pos), min(sub.end, s.pos+k)
			if a < b {
				if err := sub.sink.write(d[a-s.pos : b-s.pos]); err != nil {
					return err
				}
			}
			if sub.end <= s.pos+k {
				sub.closed = true
				if err := sub.sink.close(); err != nil {
					return err
				}
			}
		}
		s.pos += k
		p = p[k:]
	}
	return nil
}

func (s *entrySink) close() error {
	if s.hdrLen == 0 || len(s.hdr) < s.hdrLen || s.pos < s.e.csize {
		return formatErr(s.file, s.tensorName(), "zip entry %q ends after %d of its %d bytes (truncated file?)", s.e.name, s.pos, s.e.csize)
	}
	if c := s.crc.Sum32(); c != s.e.crc32 {
		return formatErr(s.file, s.tensorName(), "zip entry %q: CRC-32 %08x, the directory says %08x (corrupt file)", s.e.name, c, s.e.crc32)
	}
	for i := range s.subs {
		if !s.subs[i].closed {
			s.subs[i].closed = true
			if err := s.subs[i].sink.close(); err != nil {
				return err
			}
		}
	}
	return nil
}
