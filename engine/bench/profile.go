// profile.go formats the device's per-kernel profile (gpu.Options.Profile)
// per UNet call.
package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"harmony/engine/gpu"
)

// ProfileRow is one kernel's share of a call.
type ProfileRow struct {
	Kernel     string  `json:"kernel"`
	Dispatches float64 `json:"dispatches_per_call"`
	Workgroups float64 `json:"workgroups_per_call"`
	MS         float64 `json:"ms_per_call"`
	Percent    float64 `json:"percent"`
}

// ProfileRows divides a profile taken over calls calls.
func ProfileRows(p []gpu.KernelTime, calls int) []ProfileRow {
	var total time.Duration
	for _, r := range p {
		total += r.Total
	}
	rows := make([]ProfileRow, 0, len(p))
	n := float64(max(calls, 1))
	for _, r := range p {
		rows = append(rows, ProfileRow{Kernel: r.Kernel, Dispatches: float64(r.Calls) / n, Workgroups: float64(r.Workgroups) / n,
			MS: round3(float64(r.Total.Microseconds()) / 1e3 / n), Percent: round3(100 * float64(r.Total) / float64(max(total, 1)))})
	}
	return rows
}

// PrintProfile writes the rows as a table.
func PrintProfile(w io.Writer, rows []ProfileRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ms/call\t%\tdispatches\tworkgroups\tkernel\t")
	var ms, disp float64
	for _, r := range rows {
		fmt.Fprintf(tw, "%.1f\t%.1f\t%.0f\t%.0f\t%s\t\n", r.MS, r.Percent, r.Dispatches, r.Workgroups, r.Kernel)
		ms += r.MS
		disp += r.Dispatches
	}
	fmt.Fprintf(tw, "%.1f\t100\t%.0f\t\ttotal (serialized)\t\n", ms, disp)
	tw.Flush()
}
