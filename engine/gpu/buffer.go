// buffer.go implements storage buffers: creation (pooled or exact), the
// release that hands them back, eviction of idle pooled buffers under the
// in-use high-water mark, Trim, and destruction, which also drops the
// cached bind groups that reference the buffer.
package gpu

import (
	"fmt"
	"strconv"

	"github.com/cogentcore/webgpu/wgpu"
)

// Buffer is a labelled GPU storage buffer.
type Buffer struct {
	id       uint64 // unique for the device's lifetime; keys the bind-group cache
	label    string
	size     uint64 // usable bytes (what the caller asked for, rounded to 4)
	cap      uint64 // bytes of the underlying buffer
	buf      *wgpu.Buffer
	pooled   bool
	live     bool
	released uint64 // pool order of its last release
}

// Size is the usable size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Label is the name given at creation (or at the last reuse from the pool).
func (b *Buffer) Label() string { return b.label }

// NewBuffer returns a storage buffer of at least size bytes from the pool
// (sizes are bucketed to within 12.5 %). Release it when done.
func (d *Device) NewBuffer(label string, size uint64) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return nil, err
	}
	size = align(max(size, 4), 4)
	c := bucket(size)
	if b := d.pool.take(c); b != nil {
		b.label, b.size, b.live = label, size, true
		d.addInUse(b.cap)
		return b, nil
	}
	if err := d.evictLocked(c); err != nil {
		return nil, err
	}
	return d.create(label, size, c, true)
}

// NewExactBuffer returns a storage buffer of exactly size bytes (rounded to
// 16) that bypasses the pool: for weights, which live as long as the model.
func (d *Device) NewExactBuffer(label string, size uint64) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return nil, err
	}
	size = align(max(size, 4), 4)
	return d.create(label, size, align(size, 16), false)
}

func (d *Device) create(label string, size, capacity uint64, pooled bool) (*Buffer, error) {
	if capacity > d.info.Limits.MaxBufferSize {
		if size <= d.info.Limits.MaxBufferSize {
			capacity = size
		} else {
			return nil, &LimitError{What: fmt.Sprintf("buffer %q size", label), Need: size, Have: d.info.Limits.MaxBufferSize}
		}
	}
	wb, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: label,
		Usage: wgpu.BufferUsageStorage | wgpu.BufferUsageCopySrc | wgpu.BufferUsageCopyDst,
		Size:  capacity,
	})
	if err == nil {
		err = d.plat.check("buffer " + strconv.Quote(label))
	}
	if err != nil {
		return nil, d.wrapErr("buffer "+strconv.Quote(label), err)
	}
	d.nextID++
	b := &Buffer{id: d.nextID, label: label, size: size, cap: capacity, buf: wb, pooled: pooled, live: true}
	d.stats.Allocated += capacity
	d.stats.PeakAllocated = max(d.stats.PeakAllocated, d.stats.Allocated)
	d.addInUse(capacity)
	return b, nil
}

func (d *Device) addInUse(n uint64) {
	d.stats.InUse += n
	d.stats.PeakInUse = max(d.stats.PeakInUse, d.stats.InUse)
	d.pool.high = max(d.pool.high, d.stats.InUse)
}

// Release gives a buffer back. A pooled buffer is reusable at once, even
// while a batch is open: the dispatches of a pass run in recording order
// with the barriers WebGPU inserts between them, so a later dispatch that
// writes the buffer cannot overtake an earlier one that reads it, and Write
// submits the recorded work before uploading. (Holding released buffers
// back until the submit made a 512×512 VAE decode, one batch, allocate
// five times what it had in use.) A buffer to destroy waits for the
// submit, so that pending dispatches that read it stay valid.
func (d *Device) Release(b *Buffer) {
	if b == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !b.live {
		return
	}
	b.live = false
	d.stats.InUse -= b.cap
	if b.pooled && !d.closed {
		d.pool.put(b)
		return
	}
	if d.enc != nil {
		d.released = append(d.released, b)
		return
	}
	d.destroy(b)
}

// evictLocked makes room before a buffer of n bytes is created: while
// the allocation would pass the in-use high-water mark (since the pool was
// last emptied), it destroys the least recently released idle buffers. So
// idle memory of other sizes turns into the new buffer instead of adding
// to it, and the pool never lifts Allocated above the in-use peak
// (Stats.PeakAllocated ≤ the larger of PeakInUse and what was allocated at
// the last ResetPeaks), while repeated calls of one model, whose buffers
// fit under their own peak, keep hitting the pool. Recorded dispatches may
// use idle buffers, so they are submitted before any is destroyed.
func (d *Device) evictLocked(n uint64) error {
	limit := max(d.pool.high, d.stats.InUse+n)
	if d.pool.idle == 0 || d.stats.Allocated+n <= limit {
		return nil
	}
	if err := d.flushLocked(); err != nil {
		return err
	}
	for d.pool.idle > 0 && d.stats.Allocated+n > limit {
		d.destroy(d.pool.oldest())
	}
	return nil
}

// recycle puts a buffer released during a batch where Release would have
// put it, once the batch is submitted.
func (d *Device) recycle(b *Buffer) {
	if b.pooled && !d.closed {
		d.pool.put(b)
		return
	}
	d.destroy(b)
}

// destroy frees b's memory. It runs with no pass open (callers submit
// first), so the bind groups that reference b are unused by recorded work
// and can be released with it.
func (d *Device) destroy(b *Buffer) {
	for _, bg := range d.binds.dropBuffer(b.id) {
		bg.Release()
	}
	b.buf.Destroy()
	b.buf.Release()
	d.stats.Allocated -= b.cap
}

// destroyIdle destroys every pooled buffer not in use.
func (d *Device) destroyIdle() {
	for c, list := range d.pool.free {
		for _, b := range list {
			d.destroy(b)
		}
		delete(d.pool.free, c)
	}
	d.pool.idle = 0
}

// Trim destroys every pooled buffer that is not in use. Recorded
// dispatches may still use pooled buffers, so it submits them first (and
// returns that submit's error, trimming nothing).
func (d *Device) Trim() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if err := d.flushLocked(); err != nil {
		return err
	}
	d.destroyIdle()
	d.pool.high = d.stats.InUse
	return nil
}
