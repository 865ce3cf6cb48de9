//go:build js

// files.go: a loader.Source over File objects the user picked or dropped
// (a local model folder). Bytes are read with File.slice().arrayBuffer() a
// piece at a time, so a multi-gigabyte checkpoint never sits in the wasm
// heap whole.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall/js"

	"harmony/engine/jsx"
	"harmony/loader"
)

// fileSource maps relative paths ("unet/config.json") to File objects.
type fileSource struct {
	root  string
	files map[string]js.Value
}

// newFileSource indexes picked files by their path below the picked
// folder: webkitRelativePath (or the relPath the page sets for dropped
// folders) without its first component.
func newFileSource(list js.Value) (*fileSource, error) {
	s := &fileSource{files: map[string]js.Value{}}
	n := list.Length()
	for i := 0; i < n; i++ {
		f := list.Index(i)
		p := jsStr(f, "relPath")
		if p == "" {
			p = jsStr(f, "webkitRelativePath")
		}
		if p == "" {
			p = jsStr(f, "name")
		}
		root, rest, ok := strings.Cut(p, "/")
		if !ok {
			rest = p
		} else if s.root == "" {
			s.root = root
		}
		s.files[rest] = f
	}
	if len(s.files) == 0 {
		return nil, codedf(CodeBadModel, "harmony: the picked folder is empty")
	}
	if s.root == "" {
		s.root = "picked files"
	}
	return s, nil
}

func (s *fileSource) String() string { return s.root }

// Open implements loader.Source.
func (s *fileSource) Open(ctx context.Context, name string) (loader.File, error) {
	f, ok := s.files[name]
	if !ok {
		return nil, &loader.SourceError{URL: s.root + "/" + name, Op: "open", Err: fs.ErrNotExist}
	}
	size := int64(f.Get("size").Float())
	tag := fmt.Sprintf("%d-%v", size, f.Get("lastModified").Float())
	return &pickedFile{ctx: ctx, f: f, size: size, name: s.root + "/" + name, tag: tag}, nil
}

type pickedFile struct {
	ctx  context.Context
	f    js.Value
	size int64
	name string
	tag  string
}

func (p *pickedFile) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off > p.size {
		return 0, &loader.SourceError{URL: p.name, Op: "read", Err: fmt.Errorf("offset %d outside the %d-byte file", off, p.size)}
	}
	end := min(off+int64(len(b)), p.size)
	ab, err := jsx.Await(p.ctx, p.f.Call("slice", off, end).Call("arrayBuffer"), 0)
	if err != nil {
		return 0, &loader.SourceError{URL: p.name, Op: "read", Err: err}
	}
	n := js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(ab))
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// Stream reads the range in pieces of 4 MiB.
func (p *pickedFile) Stream(off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off+n > p.size {
		return nil, &loader.SourceError{URL: p.name, Op: "read", Err: fmt.Errorf("range [%d, +%d) outside the %d-byte file", off, n, p.size)}
	}
	return io.NopCloser(bufio.NewReaderSize(io.NewSectionReader(p, off, n), 4<<20)), nil
}

func (p *pickedFile) Size() int64  { return p.size }
func (p *pickedFile) Name() string { return p.name }
func (p *pickedFile) Tag() string  { return p.tag }
func (p *pickedFile) Close() error { return nil }
