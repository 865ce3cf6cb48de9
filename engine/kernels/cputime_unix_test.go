//go:build unix

// cputime_unix_test.go: process CPU time for the benchmarks. On a CPU adapter
// (lavapipe) sharing a loaded machine, GFLOP per CPU-second varies far less
// between runs than GFLOP per wall second.
package kernels

import (
	"syscall"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
