//go:build !unix

// cputime_other.go: no CPU time where getrusage is missing (figures read 0).
package bench

import "time"

func cpuTime() time.Duration { return 0 }
