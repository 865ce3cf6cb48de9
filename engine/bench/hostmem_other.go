//go:build !linux

// hostmem_other.go: no resident-set figures outside Linux.
package bench

func resetRSSPeak() {}

func rssPeak() uint64 { return 0 }
