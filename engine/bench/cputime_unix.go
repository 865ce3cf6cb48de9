//go:build unix

// cputime_unix.go: the process's CPU time (user + system). On a CPU
// adapter the "GPU" threads are the process's own, so this counts them.
package bench

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
