// fulldisk_linux_test.go: a full disk for the bad-input suite, as a tiny
// tmpfs (Linux, as root).
package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// fullDisk mounts a 64 KiB tmpfs at tmp/full and fills it, or says why it
// cannot.
func fullDisk(e *badEnv) string {
	if os.Geteuid() != 0 {
		return "mounting a small tmpfs needs root"
	}
	dir := filepath.Join(e.tmp, "full")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		return "cannot mount a tmpfs here: " + err.Error()
	}
	e.t.Cleanup(func() { syscall.Unmount(dir, 0) })
	os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 60<<10), 0o644)
	return ""
}
