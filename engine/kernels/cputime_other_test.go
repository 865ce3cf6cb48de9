//go:build !unix

// cputime_other_test.go: no process CPU time here; the benchmarks report
// wall-clock throughput only.
package kernels

import "time"

func cpuTime() time.Duration { return 0 }
