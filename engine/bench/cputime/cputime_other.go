//go:build !unix

package cputime

import "time"

// Process is 0 where getrusage is missing (js/wasm, Windows): figures per
// CPU-second then read 0.
func Process() time.Duration { return 0 }
