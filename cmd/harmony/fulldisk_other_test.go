// fulldisk_other_test.go: without Linux's mount, the bad-input suite's
// full-disk case is skipped, and a read-only folder is one without write
// bits (which only a non-root user cannot write).

//go:build !linux && !js

package main

import (
	"os"
	"path/filepath"
)

func fullDisk(e *badEnv) string { return "a full disk is simulated with a Linux tmpfs mount only" }

func readOnlyDir(e *badEnv) string {
	if os.Geteuid() == 0 {
		return "running as root, which ignores permissions, and a read-only mount needs Linux"
	}
	dir := filepath.Join(e.tmp, "ro")
	if err := os.MkdirAll(dir, 0o555); err != nil {
		return err.Error()
	}
	e.t.Cleanup(func() { os.Chmod(dir, 0o755) })
	return ""
}
