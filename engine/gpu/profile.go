// profile.go: a per-kernel wall-clock profile. With Options.Profile (or
// HARMONY_GPU_PROFILE=1) every dispatch is submitted and waited for on its
// own, and its wall time (record, submit, GPU execution, wait) is added to
// its kernel's row. It serializes the GPU, so it shows where the time of a
// slow adapter goes, not how fast a batched run is. Off, it costs nothing.
package gpu

import (
	"context"
	"sort"
	"time"
)

// KernelTime is one kernel's row of the profile.
type KernelTime struct {
	Kernel     string        // Kernel.String()
	Calls      int           // dispatches
	Workgroups int64         // workgroups over all dispatches
	Total      time.Duration // wall time over all dispatches
}

// Profile returns the rows so far, slowest first.
func (d *Device) Profile() []KernelTime {
	d.mu.Lock()
	defer d.mu.Unlock()
	rows := make([]KernelTime, 0, len(d.profile))
	for _, r := range d.profile {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Total > rows[j].Total })
	return rows
}

// ResetProfile clears the profile.
func (d *Device) ResetProfile() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.profile)
}

// profileDispatch submits the dispatch just recorded, waits for it and
// charges the time since t0 to k.
func (d *Device) profileDispatch(k Kernel, workgroups int, t0 time.Time) error {
	if err := d.flushLocked(); err != nil {
		return err
	}
	if err := d.plat.wait(context.Background(), d); err != nil {
		return d.wrapErr("dispatch of "+k.String(), err)
	}
	name := k.String()
	r := d.profile[name]
	if r == nil {
		r = &KernelTime{Kernel: name}
		d.profile[name] = r
	}
	r.Calls++
	r.Workgroups += int64(workgroups)
	r.Total += time.Since(t0)
	return nil
}
