// zip.go reads the directory of a ZIP archive (PKWARE APPNOTE.TXT §4.3:
// end of central directory, its ZIP64 variant, central directory headers,
// local file headers), as torch.save writes them: every entry stored
// (method 0), uncompressed.
//
// archive/zip could read the directory too, but it hides the local header
// offsets and reads each local header separately, which costs one HTTP
// request per tensor. Knowing every entry's offset, the loader instead reads
// each entry as one span [local header, next local header) in the same
// streamed range as its neighbours, and parses the local header on the way.
package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// MaxZipDirectory bounds the central directory (a few thousand entries
// of ~100 bytes in a checkpoint).
const MaxZipDirectory = 64 << 20

// ZIP record sizes and signatures (APPNOTE §4.3.7, 4.3.12, 4.3.14-16).
const (
	zipLocalLen     = 30
	zipCentralLen   = 46
	zipEndLen       = 22
	zip64LocatorLen = 20
	zip64EndLen     = 56
	zipLocalSig     = 0x04034b50
	zipCentralSig   = 0x02014b50
	zipEndSig       = 0x06054b50
	zip64LocatorSig = 0x07064b50
	zip64EndSig     = 0x06064b50
	zipMaxComment   = 0xffff
)

// zipEntry is one central directory record.
type zipEntry struct {
	name   string
	method uint16
	flags  uint16
	crc32  uint32
	csize  int64 // compressed size: the stored bytes
	usize  int64
	// The entry's local header starts at offset; everything up to next
	// (the following local header or the central directory) belongs to it.
	offset, next int64
}

// zipDir is a parsed central directory, entries sorted by offset.
type zipDir struct {
	file    string
	entries []zipEntry
	byName  map[string]int
	dirOff  int64 // central directory offset
}

func (z *zipDir) find(name string) *zipEntry {
	if i, ok := z.byName[name]; ok {
		return &z.entries[i]
	}
	return nil
}

// readZipDir reads the central directory of the archive r of the given
// size: one read of the tail (end record, ZIP64 locator), at most one of
// the ZIP64 end record and one of the directory.
func readZipDir(r io.ReaderAt, size int64, file string) (*zipDir, error) {
	ferr := func(f string, a ...any) error { return formatErr(file, "", "zip: "+f, a...) }
	if size < zipEndLen {
		return nil, ferr("%d bytes is too short for a zip archive (truncated?)", size)
	}
	tailLen := min(size, zipEndLen+zipMaxComment+zip64LocatorLen)
	tailOff := size - tailLen
	tail := make([]byte, tailLen)
	if err := readFullAt(r, tail, tailOff); err != nil {
		return nil, err
	}
	// The end record is the last signature whose comment fits the file.
	end := -1
	for i := len(tail) - zipEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(tail[i:]) == zipEndSig &&
			i+zipEndLen+int(binary.LittleEndian.Uint16(tail[i+20:])) <= len(tail) {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, ferr("no end of central directory record (not a zip archive, or truncated)")
	}
	rec := tail[end:]
	endAbs := tailOff + int64(end)
	disk, dirDisk := binary.LittleEndian.Uint16(rec[4:]), binary.LittleEndian.Uint16(rec[6:])
	count := int64(binary.LittleEndian.Uint16(rec[10:]))
	dirSize := int64(binary.LittleEndian.Uint32(rec[12:]))
	dirOff := int64(binary.LittleEndian.Uint32(rec[16:]))
	limit := endAbs // the directory ends before this
	if end >= zip64LocatorLen && binary.LittleEndian.Uint32(tail[end-zip64LocatorLen:]) == zip64LocatorSig {
		loc := tail[end-zip64LocatorLen:]
		off := int64(binary.LittleEndian.Uint64(loc[8:]))
		if off < 0 || off > endAbs-zip64LocatorLen-zip64EndLen {
			return nil, ferr("zip64 end record offset %d out of range", off)
		}
		r64 := make([]byte, zip64EndLen)
		if off >= tailOff {
			copy(r64, tail[off-tailOff:])
		} else if err := readFullAt(r, r64, off); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint32(r64) != zip64EndSig {
			return nil, ferr("bad zip64 end record signature")
		}
		d, dd := binary.LittleEndian.Uint32(r64[16:]), binary.LittleEndian.Uint32(r64[20:])
		if d != 0 || dd != 0 {
			return nil, ferr("multi-disk archives are not supported")
		}
		disk, dirDisk = 0, 0
		c, s, o := binary.LittleEndian.Uint64(r64[32:]), binary.LittleEndian.Uint64(r64[40:]), binary.LittleEndian.Uint64(r64[48:])
		if c > 1<<40 || s > 1<<62 || o > 1<<62 {
			return nil, ferr("zip64 end record out of range")
		}
		count, dirSize, dirOff = int64(c), int64(s), int64(o)
		limit = off
	}
	if disk != 0 || dirDisk != 0 {
		return nil, ferr("multi-disk archives are not supported")
	}
	if dirSize > MaxZipDirectory {
		return nil, ferr("central directory of %d bytes exceeds the %d-byte limit", dirSize, MaxZipDirectory)
	}
	if dirOff < 0 || dirOff > limit || dirSize > limit-dirOff {
		return nil, ferr("central directory [%d, +%d) outside the archive (truncated?)", dirOff, dirSize)
	}
	if count > dirSize/zipCentralLen {
		return nil, ferr("%d entries cannot fit a %d-byte central directory", count, dirSize)
	}
	dir := make([]byte, dirSize)
	if dirOff >= tailOff {
		copy(dir, tail[dirOff-tailOff:])
	} else if err := readFullAt(r, dir, dirOff); err != nil {
		return nil, err
	}
	return parseZipDir(dir, count, dirOff, file)
}

// parseZipDir parses count central directory headers from dir, which
// starts at file offset dirOff.
func parseZipDir(dir []byte, count, dirOff int64, file string) (*zipDir, error) {
	ferr := func(f string, a ...any) error { return formatErr(file, "", "zip: "+f, a...) }
	z := &zipDir{file: file, byName: map[string]int{}, dirOff: dirOff}
	p := dir
	for i := int64(0); i < count; i++ {
		if len(p) < zipCentralLen || binary.LittleEndian.Uint32(p) != zipCentralSig {
			return nil, ferr("central directory entry %d is corrupt", i)
		}
		e := zipEntry{
			flags:  binary.LittleEndian.Uint16(p[8:]),
			method: binary.LittleEndian.Uint16(p[10:]),
			crc32:  binary.LittleEndian.Uint32(p[16:]),
			csize:  int64(binary.LittleEndian.Uint32(p[20:])),
			usize:  int64(binary.LittleEndian.Uint32(p[24:])),
			offset: int64(binary.LittleEndian.Uint32(p[42:])),
		}
		nl, xl, cl := int(binary.LittleEndian.Uint16(p[28:])), int(binary.LittleEndian.Uint16(p[30:])), int(binary.LittleEndian.Uint16(p[32:]))
		if len(p) < zipCentralLen+nl+xl+cl {
			return nil, ferr("central directory entry %d runs past the directory", i)
		}
		e.name = string(p[zipCentralLen : zipCentralLen+nl])
		if err := zip64Extra(&e, p[zipCentralLen+nl:zipCentralLen+nl+xl]); err != nil {
			return nil, ferr("entry %q: %v", e.name, err)
		}
		p = p[zipCentralLen+nl+xl+cl:]
		if e.name == "" {
			return nil, ferr("central directory entry %d has no name", i)
		}
		if _, dup := z.byName[e.name]; dup {
			return nil, ferr("entry %q appears twice", e.name)
		}
		z.byName[e.name] = len(z.entries)
		z.entries = append(z.entries, e)
	}
	sort.Slice(z.entries, func(i, j int) bool { return z.entries[i].offset < z.entries[j].offset })
	for i := range z.entries {
		e := &z.entries[i]
		z.byName[e.name] = i
		e.next = dirOff
		if i+1 < len(z.entries) {
			e.next = z.entries[i+1].offset
		}
		// The entry must hold at least its local header, name and data.
		if e.offset >= e.next || e.next-e.offset < zipLocalLen+int64(len(e.name)) ||
			e.csize > e.next-e.offset-zipLocalLen-int64(len(e.name)) {
			return nil, ferr("entry %q (%d bytes at %d) overlaps the next entry or the directory (corrupt or truncated)", e.name, e.csize, e.offset)
		}
	}
	return z, nil
}

// zip64Extra applies the ZIP64 extended information field (tag 1,
// APPNOTE §4.5.3) to the sizes and offset that overflowed 32 bits.
func zip64Extra(e *zipEntry, x []byte) error {
	for len(x) >= 4 {
		tag, n := binary.LittleEndian.Uint16(x), int(binary.LittleEndian.Uint16(x[2:]))
		if 4+n > len(x) {
			return fmt.Errorf("extra field runs past its entry")
		}
		if tag == 1 {
			f := x[4 : 4+n]
			next := func() (int64, error) {
				if len(f) < 8 {
					return 0, fmt.Errorf("short zip64 extra field")
				}
				v := binary.LittleEndian.Uint64(f)
				f = f[8:]
				if v > 1<<62 {
					return 0, fmt.Errorf("zip64 value out of range")
				}
				return int64(v), nil
			}
			var err error
			if e.usize == 0xffffffff {
				if e.usize, err = next(); err != nil {
					return err
				}
			}
			if e.csize == 0xffffffff {
				if e.csize, err = next(); err != nil {
					return err
				}
			}
			if e.offset == 0xffffffff {
				if e.offset, err = next(); err != nil {
					return err
				}
			}
		}
		x = x[4+n:]
	}
	return nil
}

// checkStored refuses entries the loader cannot range-read.
func (e *zipEntry) checkStored(file, tensor string) error {
	switch {
	case e.flags&1 != 0:
		return formatErr(file, tensor, "zip entry %q is encrypted", e.name)
	case e.method != 0:
		return formatErr(file, tensor, "zip entry %q is compressed (method %d); torch.save stores entries uncompressed, re-save the checkpoint without compression", e.name, e.method)
	case e.csize != e.usize:
		return formatErr(file, tensor, "zip entry %q is stored with %d bytes but says it holds %d", e.name, e.csize, e.usize)
	}
	return nil
}

// localHeaderLen parses the local header at the start of b (at least
// zipLocalLen bytes) and returns its full length, name and extra field
// included. The header must agree with the central directory.
func (e *zipEntry) localHeaderLen(b []byte, file string) (int, error) {
	if len(b) < zipLocalLen || binary.LittleEndian.Uint32(b) != zipLocalSig {
		return 0, formatErr(file, "", "zip entry %q: bad local header at %d (corrupt file)", e.name, e.offset)
	}
	if m := binary.LittleEndian.Uint16(b[8:]); m != e.method {
		return 0, formatErr(file, "", "zip entry %q: local header says method %d, the directory %d", e.name, m, e.method)
	}
	n := zipLocalLen + int(binary.LittleEndian.Uint16(b[26:])) + int(binary.LittleEndian.Uint16(b[28:]))
	if int64(n) > e.next-e.offset-e.csize {
		return 0, formatErr(file, "", "zip entry %q: local header and data overrun the next entry (corrupt file)", e.name)
	}
	return n, nil
}

// readZipEntry reads a whole (small) entry's data.
func readZipEntry(r io.ReaderAt, e *zipEntry, file string, limit int64) ([]byte, error) {
	if err := e.checkStored(file, ""); err != nil {
		return nil, err
	}
	if e.csize > limit {
		return nil, formatErr(file, "", "zip entry %q has %d bytes, more than the %d-byte limit", e.name, e.csize, limit)
	}
	// One read covers the local header (whose extra field length only it
	// knows) and the data: everything up to the next entry, which for
	// torch's 64-byte-aligned entries is at most a few dozen bytes more.
	span := e.next - e.offset
	if span > limit+zipLocalLen+2*0xffff {
		span = e.csize + zipLocalLen + 2*0xffff
	}
	b := make([]byte, span)
	if err := readFullAt(r, b, e.offset); err != nil {
		return nil, err
	}
	n, err := e.localHeaderLen(b, file)
	if err != nil {
		return nil, err
	}
	if int64(n)+e.csize > int64(len(b)) {
		return nil, formatErr(file, "", "zip entry %q runs past its span (corrupt file)", e.name)
	}
	data := b[n : int64(n)+e.csize]
	if crc := crc32IEEE(data); crc != e.crc32 {
		return nil, formatErr(file, "", "zip entry %q: CRC-32 %08x, the directory says %08x (corrupt file)", e.name, crc, e.crc32)
	}
	return bytes.Clone(data), nil
}
