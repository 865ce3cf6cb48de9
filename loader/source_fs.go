// source_fs.go: a Source over an fs.FS, for models compiled into the
// binary (the bundled demo pack) and for tests.
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// FSSource is a folder of an fs.FS.
type FSSource struct {
	FS   fs.FS
	Name string // shown in messages
}

// NewFSSource returns a source reading fsys; name describes it.
func NewFSSource(fsys fs.FS, name string) *FSSource { return &FSSource{FS: fsys, Name: name} }

func (s *FSSource) String() string { return s.Name }

// Open implements Source. Files that can be read at offsets (embed.FS,
// os.DirFS) are read in place; others are read into memory once.
func (s *FSSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	full := s.Name + "/" + name
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, &SourceError{URL: full, Op: "open", Err: unwrapPath(err)}
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = errors.New("is a directory")
	}
	if err != nil {
		f.Close()
		return nil, &SourceError{URL: full, Op: "open", Err: err}
	}
	tag := fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())
	if ra, ok := f.(io.ReaderAt); ok {
		return &fsFile{ctx: ctx, f: f, ra: ra, size: st.Size(), name: full, tag: tag}, nil
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, &SourceError{URL: full, Op: "read", Err: err}
	}
	return &memFile{name: full, data: data, tag: tag}, nil
}

type fsFile struct {
	ctx  context.Context
	f    fs.File
	ra   io.ReaderAt
	size int64
	name string
	tag  string
}

func (f *fsFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := f.ra.ReadAt(p, off)
	if err != nil && !(err == io.EOF && n == len(p)) {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, &SourceError{URL: f.name, Op: "read", Err: err}
	}
	return n, nil
}

func (f *fsFile) Stream(off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, &SourceError{URL: f.name, Op: "read", Err: fmt.Errorf("range [%d, +%d) outside the %d-byte file (truncated?)", off, n, f.size)}
	}
	return io.NopCloser(&ctxReader{ctx: f.ctx, r: io.NewSectionReader(f.ra, off, n)}), nil
}

func (f *fsFile) Size() int64  { return f.size }
func (f *fsFile) Name() string { return f.name }
func (f *fsFile) Tag() string  { return f.tag }
func (f *fsFile) Close() error { return f.f.Close() }
