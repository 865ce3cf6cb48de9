// fulldisk_other_test.go: without Linux's mount, the bad-input suite's
// full-disk case is skipped.

//go:build !linux && !js

package main

func fullDisk(e *badEnv) string { return "a full disk is simulated with a Linux tmpfs mount only" }
