// transfer.go implements the data paths between host and device: Write
// (uploads, with a bounded amount staged between waits), Read (the one
// read-back point, through a reused map-read buffer) and Sync.
package gpu

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cogentcore/webgpu/wgpu"
)

// mapRequested, when set (tests only), runs once a read-back map has been
// requested and before it is awaited: a test cancels there to land a
// cancellation inside the wait deterministically, whatever the GPU's speed.
var mapRequested func()

// writeWindow is how many bytes Write uploads between waits for the queue:
// two shards' worth, so that loading keeps streaming.
const writeWindow = 64 << 20

// Write uploads data into b at a byte offset. Work recorded earlier is
// submitted first, so it still sees the old contents.
func (d *Device) Write(b *Buffer, offset uint64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if offset%4 != 0 {
		return fmt.Errorf("gpu: write to %q at offset %d: offsets must be multiples of 4", b.label, offset)
	}
	if offset+uint64(len(data)) > b.cap {
		return fmt.Errorf("gpu: write of %d bytes at %d overruns buffer %q (%d bytes)", len(data), offset, b.label, b.size)
	}
	if err := d.flushLocked(); err != nil {
		return err
	}
	if len(data)%4 != 0 {
		padded := make([]byte, align(uint64(len(data)), 4))
		copy(padded, data)
		data = padded
	}
	if err := d.plat.write(d, b.buf, offset, data); err != nil {
		return d.wrapErr("write to "+strconv.Quote(b.label), err)
	}
	d.stats.BytesWritten += uint64(len(data))
	// The driver stages each write in host memory until the submit that
	// carries it has run, and a model load submits nothing else: unbounded,
	// the staging held a copy of every weight until the first dispatch (a
	// 1 GB component took 2.1 GB of host memory on lavapipe, where device
	// memory is host memory too). So every writeWindow bytes, submit and
	// wait.
	d.unsynced += uint64(len(data))
	if d.unsynced >= writeWindow {
		d.unsynced = 0
		d.queue.Submit()
		d.stats.Submits++
		if err := d.plat.wait(context.Background(), d); err != nil {
			return d.wrapErr("write to "+strconv.Quote(b.label), err)
		}
	}
	return nil
}

// Read copies size bytes at offset out of b. It submits all recorded work
// and waits for it: this is the one read-back/sync point.
func (d *Device) Read(ctx context.Context, b *Buffer, offset, size uint64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return nil, err
	}
	if offset%4 != 0 {
		return nil, fmt.Errorf("gpu: read of %q at offset %d: offsets must be multiples of 4", b.label, offset)
	}
	if offset+size > b.cap {
		return nil, fmt.Errorf("gpu: read of %d bytes at %d overruns buffer %q (%d bytes)", size, offset, b.label, b.size)
	}
	if size == 0 {
		return nil, nil
	}
	op := "read of " + strconv.Quote(b.label)
	// A context that has already ended stops the Read before it records a
	// copy; one that ends during the wait is handled by mapRead, which
	// leaves the read-back buffer unmapped and reusable either way.
	if err := ctx.Err(); err != nil {
		return nil, d.wrapErr(op, err)
	}
	if err := d.flushLocked(); err != nil {
		return nil, err
	}
	n := align(size, 4)
	if err := d.ensureStaging(n); err != nil {
		return nil, err
	}
	enc, err := d.dev.CreateCommandEncoder(nil)
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	if err := enc.CopyBufferToBuffer(b.buf, offset, d.staging, 0, n); err != nil {
		return nil, d.wrapErr(op, err)
	}
	cb, err := enc.Finish(nil)
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	d.queue.Submit(cb)
	d.stats.Submits++
	out, err := d.plat.mapRead(ctx, d, d.staging, n)
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	d.stats.BytesRead += size
	return out[:size], nil
}

// ensureStaging makes the map-read buffer hold at least n bytes; it grows
// by pool buckets so that reads of similar sizes keep one buffer.
func (d *Device) ensureStaging(n uint64) error {
	if d.staging != nil && d.stagingCap >= n {
		return nil
	}
	if d.staging != nil {
		d.staging.Destroy()
		d.staging.Release()
	}
	c := bucket(n)
	sb, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: "harmony.readback",
		Usage: wgpu.BufferUsageMapRead | wgpu.BufferUsageCopyDst,
		Size:  c,
	})
	if err != nil {
		d.staging, d.stagingCap = nil, 0
		return d.wrapErr("read-back buffer", err)
	}
	d.staging, d.stagingCap = sb, c
	return nil
}

// Sync submits recorded work and waits until the GPU has finished it.
func (d *Device) Sync(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if err := d.flushLocked(); err != nil {
		return err
	}
	if err := d.plat.wait(ctx, d); err != nil {
		return d.wrapErr("sync", err)
	}
	return nil
}
