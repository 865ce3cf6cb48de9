// fulldisk_linux_test.go: a full disk and a read-only folder for the
// bad-input suite, as tiny tmpfs mounts when running as root (root ignores
// permission bits, so a read-only mount is the only folder it cannot write).
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

// readOnlyDir makes tmp/ro a folder nobody may write: a read-only tmpfs as
// root, a folder without write bits otherwise.
func readOnlyDir(e *badEnv) string {
	dir := filepath.Join(e.tmp, "ro")
	if os.Geteuid() != 0 {
		if err := os.MkdirAll(dir, 0o555); err != nil {
			return err.Error()
		}
		e.t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=64k"); err != nil {
		return "cannot mount a read-only tmpfs here: " + err.Error()
	}
	e.t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return ""
}
