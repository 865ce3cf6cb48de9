// hostmem_linux.go: the resident set's high-water mark from /proc, reset
// per stage through /proc/self/clear_refs (Linux ≥ 4.0).
package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// resetRSSPeak sets VmHWM to the current RSS.
func resetRSSPeak() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// rssPeak is VmHWM in bytes (0 when unreadable).
func rssPeak() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
