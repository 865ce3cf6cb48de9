// freespace_statfs.go: the free space of a folder's file system, from
// statfs, on the systems whose statfs the check knows.

//go:build linux || darwin

package main

import "syscall"

// freeSpace returns the bytes an unprivileged writer may still use in the
// file system holding dir; ok is false when the OS does not say.
func freeSpace(dir string) (free int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
