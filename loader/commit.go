// commit.go writes files so that an existing one is never damaged: each is
// written under a temporary name beside it, synced, and only then renamed
// over its name. The disk cache, packs and the CLI's outputs all go
// through it.
package loader

import (
	"fmt"
	"os"
	"path/filepath"
)

// OutFile is one file to write.
type OutFile struct {
	Path string
	Data []byte
}

// WriteFile writes data to path through a synced temporary file beside it:
// path holds either its old content or all of data, never a part.
func WriteFile(path string, data []byte) error {
	return WriteFiles([]OutFile{{path, data}})
}

// WriteFiles writes a set of files: all of them under temporary names
// first, each synced, and only when every one is complete are they renamed
// in order, back to back. A failure before the renames (a full disk, a
// folder that cannot be written) leaves every existing file as it was and
// no temporary behind.
func WriteFiles(files []OutFile) error {
	var tmps []*os.File
	defer func() {
		for _, f := range tmps {
			os.Remove(f.Name())
		}
	}()
	for _, o := range files {
		dir, base := filepath.Split(o.Path)
		if dir == "" {
			dir = "."
		}
		f, err := os.CreateTemp(dir, "."+base+".tmp-*")
		if err != nil {
			return fmt.Errorf("loader: writing %s: %w", o.Path, err)
		}
		tmps = append(tmps, f)
		if err := syncFile(f, o.Data); err != nil {
			return fmt.Errorf("loader: writing %s: %w", o.Path, err)
		}
	}
	for i, o := range files {
		if err := os.Rename(tmps[i].Name(), o.Path); err != nil {
			return fmt.Errorf("loader: writing %s: %w", o.Path, err)
		}
	}
	tmps = nil
	syncDirs(files)
	return nil
}

// syncDirs makes the renames durable where the OS allows syncing a
// folder; where it does not, the files are complete all the same.
func syncDirs(files []OutFile) {
	seen := map[string]bool{}
	for _, o := range files {
		dir := filepath.Dir(o.Path)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
}

// syncFile writes data to f, syncs and closes it; on failure it removes f.
func syncFile(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// commitFile writes data to f, a new temporary file, syncs and closes it,
// and renames it to dst; on any failure it removes f, so a partial file is
// never left under either name.
func commitFile(f *os.File, data []byte, dst string) error {
	err := syncFile(f, data)
	if err == nil {
		if err = os.Rename(f.Name(), dst); err != nil {
			os.Remove(f.Name())
		}
	}
	return err
}
