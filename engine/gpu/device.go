// device.go implements what both builds share: buffers and their pool,
// pipeline creation and caching, bind-group caching, dispatch recording with
// grid folding, batching into one command encoder, and the flush / read-back
// points. The calls it makes into the bindings exist with the same shape on
// their native and js sides; what differs (opening, error capture, mapping,
// waiting) lives in device_native.go and device_js.go.
package gpu

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cogentcore/webgpu/wgpu"

	"harmony/shaders"
)

// Device is an opened WebGPU device. Use it from one goroutine at a time
// (a mutex guards against misuse, not for concurrency).
type Device struct {
	opt   Options
	info  Info
	dev   *wgpu.Device
	queue *wgpu.Queue
	plat  platform

	mu        sync.Mutex
	closed    bool
	lost      atomic.Pointer[DeviceLostError]
	pipelines map[Kernel]*pipeline
	pool      pool
	nextID    uint64
	debugSync bool // HARMONY_GPU_DEBUG=1: flush after every dispatch so errors name their kernel
	profiling bool // Options.Profile or HARMONY_GPU_PROFILE=1 (profile.go)
	profile   map[string]*KernelTime

	// The batch being recorded.
	enc       *wgpu.CommandEncoder
	pass      *wgpu.ComputePassEncoder
	batch     []Kernel // kernels recorded in this batch, for error messages
	uniforms  []byte   // params of this batch, one aligned slot per dispatch
	uniBuf    *wgpu.Buffer
	uniCap    uint64
	released  []*Buffer // unpooled buffers released while the batch was open; destroyed after submit
	bindCache map[bindKey]*wgpu.BindGroup

	staging    *wgpu.Buffer // map-read buffer reused by Read
	stagingCap uint64
	unsynced   uint64 // bytes written since Write last waited for the queue

	stats Stats
}

// Stats counts the device's work and memory.
type Stats struct {
	Dispatches     int64  // dispatches recorded
	Submits        int64  // command buffers submitted
	Pipelines      int    // distinct pipelines compiled
	BindGroups     int64  // bind groups created (cache misses)
	Allocated      uint64 // bytes in live buffers (in use or pooled)
	PeakAllocated  uint64 // high-water mark of Allocated
	InUse          uint64 // bytes in buffers handed out and not released
	PeakInUse      uint64 // high-water mark of InUse
	BytesWritten   uint64 // bytes uploaded with Write
	BytesRead      uint64 // bytes read back with Read
	LargestBinding uint64 // largest storage binding seen, bytes
}

// paramsSlot is the room one dispatch's Params take in the uniform arena;
// it is also the dynamic-offset alignment the spec guarantees to work.
const paramsSlot = 256

// maxBatch bounds the dispatches in one command buffer, so that the uniform
// arena stays small and a slow adapter gets work early.
const maxBatch = 512

// Buffer is a labelled GPU storage buffer.
type Buffer struct {
	id       uint64
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

type pipeline struct {
	kernel   Kernel
	pipe     *wgpu.ComputePipeline
	bgl      *wgpu.BindGroupLayout
	storage  []bool // per storage binding: read-only
	uniform  int    // binding index of the Params uniform, -1 when none
	bindings int    // storage bindings
}

type bindKey struct {
	pipe *pipeline
	ids  [8]uint64 // buffer ids
	offs [8]uint64
	szs  [8]uint64
}

// Info describes the adapter and device.
func (d *Device) Info() Info { return d.info }

// Limits are the granted device limits.
func (d *Device) Limits() Limits { return d.info.Limits }

// Stats returns the counters so far.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Pipelines = len(d.pipelines)
	return s
}

// ResetPeaks sets the memory high-water marks to the current values.
func (d *Device) ResetPeaks() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.PeakAllocated = d.stats.Allocated
	d.stats.PeakInUse = d.stats.InUse
}

// Lost reports the device-lost error, or nil while the device is alive.
func (d *Device) Lost() error {
	if l := d.lost.Load(); l != nil {
		return l
	}
	return nil
}

func (d *Device) markLost(reason, msg string) {
	d.lost.CompareAndSwap(nil, &DeviceLostError{Reason: reason, Message: msg})
}

func (d *Device) usable() error {
	if d.closed {
		return ErrClosed
	}
	return d.Lost()
}

func (d *Device) timeout() time.Duration {
	if d.opt.Timeout > 0 {
		return d.opt.Timeout
	}
	return DefaultTimeout
}

func (d *Device) init() {
	d.pipelines = map[Kernel]*pipeline{}
	d.bindCache = map[bindKey]*wgpu.BindGroup{}
	d.pool.free = map[uint64][]*Buffer{}
	d.debugSync = os.Getenv("HARMONY_GPU_DEBUG") == "1"
	d.profiling = d.opt.Profile || os.Getenv("HARMONY_GPU_PROFILE") == "1"
	d.profile = map[string]*KernelTime{}
}

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
	b, err := d.create(label, size, c, true)
	if err != nil {
		return nil, err
	}
	return b, nil
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

func (d *Device) recycle(b *Buffer) {
	if b.pooled && !d.closed {
		d.pool.put(b)
		return
	}
	d.destroy(b)
}

func (d *Device) destroy(b *Buffer) {
	for k := range d.bindCache {
		for i := range k.ids {
			if k.ids[i] == b.id {
				delete(d.bindCache, k)
				break
			}
		}
	}
	b.buf.Destroy()
	b.buf.Release()
	d.stats.Allocated -= b.cap
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
	for c, list := range d.pool.free {
		for _, b := range list {
			d.destroy(b)
		}
		delete(d.pool.free, c)
	}
	d.pool.idle, d.pool.high = 0, d.stats.InUse
	return nil
}

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

// writeWindow is how many bytes Write uploads between waits for the queue:
// two shards' worth, so that loading keeps streaming.
const writeWindow = 64 << 20

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
	if err := d.flushLocked(); err != nil {
		return nil, err
	}
	n := align(size, 4)
	if d.staging == nil || d.stagingCap < n {
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
			return nil, d.wrapErr("read-back buffer", err)
		}
		d.staging, d.stagingCap = sb, c
	}
	enc, err := d.dev.CreateCommandEncoder(nil)
	if err != nil {
		return nil, d.wrapErr("read of "+strconv.Quote(b.label), err)
	}
	if err := enc.CopyBufferToBuffer(b.buf, offset, d.staging, 0, n); err != nil {
		return nil, d.wrapErr("read of "+strconv.Quote(b.label), err)
	}
	cb, err := enc.Finish(nil)
	if err != nil {
		return nil, d.wrapErr("read of "+strconv.Quote(b.label), err)
	}
	d.queue.Submit(cb)
	d.stats.Submits++
	out, err := d.plat.mapRead(ctx, d, d.staging, n)
	if err != nil {
		return nil, d.wrapErr("read of "+strconv.Quote(b.label), err)
	}
	d.stats.BytesRead += size
	return out[:size], nil
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

// Flush submits the work recorded so far without waiting for it.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	return d.flushLocked()
}

func (d *Device) flushLocked() error {
	if d.enc == nil {
		return nil
	}
	enc, pass, names := d.enc, d.pass, d.batch
	d.enc, d.pass, d.batch = nil, nil, nil
	released := d.released
	d.released = nil
	defer func() {
		for _, b := range released {
			d.recycle(b)
		}
	}()
	op := "dispatch of " + batchNames(names)
	if err := d.plat.endPass(pass); err != nil {
		d.uniforms = d.uniforms[:0]
		return d.wrapErr(op, err)
	}
	cb, err := enc.Finish(nil)
	if err != nil {
		d.uniforms = d.uniforms[:0]
		return d.wrapErr(op, err)
	}
	if len(d.uniforms) > 0 {
		if err := d.plat.write(d, d.uniBuf, 0, d.uniforms); err != nil {
			d.uniforms = d.uniforms[:0]
			return d.wrapErr(op, err)
		}
	}
	d.uniforms = d.uniforms[:0]
	d.queue.Submit(cb)
	d.stats.Submits++
	if err := d.plat.check(op); err != nil {
		return d.wrapErr(op, err)
	}
	return nil
}

func batchNames(ks []Kernel) string {
	if len(ks) == 1 {
		return ks[0].String()
	}
	seen := map[Kernel]bool{}
	var buf bytes.Buffer
	for _, k := range ks {
		if seen[k] {
			continue
		}
		seen[k] = true
		if buf.Len() > 0 {
			buf.WriteString(", ")
		}
		buf.WriteString(k.String())
		if buf.Len() > 400 {
			buf.WriteString(", …")
			break
		}
	}
	return fmt.Sprintf("a batch of %d dispatches (%s; HARMONY_GPU_DEBUG=1 names the one)", len(ks), buf.String())
}

func (d *Device) wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if l := d.Lost(); l != nil {
		return l
	}
	switch err.(type) {
	case *ValidationError, *DeviceLostError, *LimitError:
		return err
	}
	if err == ErrTimeout || err == context.Canceled || err == context.DeadlineExceeded {
		return fmt.Errorf("gpu: %s: %w", op, err)
	}
	return &ValidationError{Op: op, Message: err.Error()}
}

// Params encoding: a struct of 4-byte fields (uint32, int32, float32 and
// arrays of them), or raw bytes, padded to 16.
func encodeParams(p any) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	if b, ok := p.([]byte); ok {
		return b, nil
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, p); err != nil {
		return nil, fmt.Errorf("gpu: params %T: %v", p, err)
	}
	for buf.Len()%16 != 0 {
		buf.WriteByte(0)
	}
	if buf.Len() > paramsSlot {
		return nil, fmt.Errorf("gpu: params %T are %d bytes, more than %d", p, buf.Len(), paramsSlot)
	}
	return buf.Bytes(), nil
}

// Dispatch records one dispatch of workgroups workgroups (a linear count;
// grids past MaxComputeWorkgroupsPerDimension are folded into 2-D/3-D) with
// the kernel's storage bindings in declaration order and its Params. Work is
// batched; Read, Sync and Flush submit it.
func (d *Device) Dispatch(k Kernel, workgroups int, params any, bindings ...Binding) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	if workgroups <= 0 {
		return nil
	}
	var t0 time.Time
	if d.profiling {
		if err := d.flushLocked(); err != nil {
			return err
		}
		if err := d.plat.wait(context.Background(), d); err != nil {
			return d.wrapErr("sync before "+k.String(), err)
		}
		t0 = time.Now()
	}
	p, err := d.pipelineLocked(k)
	if err != nil {
		return err
	}
	if len(bindings) != p.bindings {
		return fmt.Errorf("gpu: %s takes %d storage bindings, got %d", k, p.bindings, len(bindings))
	}
	lim := d.info.Limits
	var key bindKey
	key.pipe = p
	for i, bd := range bindings {
		if bd.Buf == nil || !bd.Buf.live {
			return fmt.Errorf("gpu: %s binding %d: buffer is nil or released", k, i)
		}
		size := bd.Size
		if size == 0 {
			size = bd.Buf.cap - bd.Offset
		}
		if bd.Offset%uint64(lim.MinStorageBufferOffsetAlignment) != 0 {
			return fmt.Errorf("gpu: %s binding %d (%q): offset %d is not a multiple of %d", k, i, bd.Buf.label, bd.Offset, lim.MinStorageBufferOffsetAlignment)
		}
		if bd.Offset+size > bd.Buf.cap || size == 0 {
			return fmt.Errorf("gpu: %s binding %d (%q): range [%d, %d) outside the buffer's %d bytes", k, i, bd.Buf.label, bd.Offset, bd.Offset+size, bd.Buf.cap)
		}
		// The binding size, not the buffer size, is what the limit caps:
		// a big buffer is fine as long as each dispatch sees a window of it.
		if size > lim.MaxStorageBufferBindingSize {
			return &LimitError{What: fmt.Sprintf("%s binding %d (%q) size", k, i, bd.Buf.label), Need: size, Have: lim.MaxStorageBufferBindingSize}
		}
		d.stats.LargestBinding = max(d.stats.LargestBinding, size)
		key.ids[i], key.offs[i], key.szs[i] = bd.Buf.id, bd.Offset, size
	}
	pb, err := encodeParams(params)
	if err != nil {
		return err
	}
	if (p.uniform >= 0) != (pb != nil) {
		return fmt.Errorf("gpu: %s: params given %v, kernel declares a uniform %v", k, pb != nil, p.uniform >= 0)
	}
	if d.enc != nil && (len(d.batch) >= maxBatch) {
		if err := d.flushLocked(); err != nil {
			return err
		}
	}
	if err := d.ensureUniforms(); err != nil {
		return err
	}
	bg := d.bindCache[key]
	if bg == nil {
		entries := make([]wgpu.BindGroupEntry, 0, len(bindings)+1)
		for i := range bindings {
			entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i), Buffer: bindings[i].Buf.buf, Offset: key.offs[i], Size: key.szs[i]})
		}
		if p.uniform >= 0 {
			entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(p.uniform), Buffer: d.uniBuf, Offset: 0, Size: paramsSlot})
		}
		bg, err = d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: k.String(), Layout: p.bgl, Entries: entries})
		if err != nil {
			return d.wrapErr("bind group for "+k.String(), err)
		}
		if len(d.bindCache) > 8192 {
			clear(d.bindCache)
		}
		d.bindCache[key] = bg
		d.stats.BindGroups++
	}
	if d.enc == nil {
		enc, err := d.dev.CreateCommandEncoder(nil)
		if err != nil {
			return d.wrapErr("command encoder", err)
		}
		d.enc = enc
		d.pass = enc.BeginComputePass(nil)
		d.plat.beginBatch(d)
	}
	var dyn []uint32
	if p.uniform >= 0 {
		off := uint64(len(d.uniforms))
		d.uniforms = append(d.uniforms, pb...)
		for uint64(len(d.uniforms)) < off+paramsSlot {
			d.uniforms = append(d.uniforms, 0)
		}
		dyn = []uint32{uint32(off)}
	}
	x, y, z := fold(uint32(workgroups), lim.MaxComputeWorkgroupsPerDimension)
	d.pass.SetPipeline(p.pipe)
	d.pass.SetBindGroup(0, bg, dyn)
	d.pass.DispatchWorkgroups(x, y, z)
	d.batch = append(d.batch, k)
	d.stats.Dispatches++
	if d.profiling {
		return d.profileDispatch(k, workgroups, t0)
	}
	if d.debugSync {
		if err := d.flushLocked(); err != nil {
			return err
		}
		if err := d.plat.wait(context.Background(), d); err != nil {
			return d.wrapErr("dispatch of "+k.String(), err)
		}
	}
	return nil
}

// ensureUniforms makes sure the uniform arena can hold a full batch.
func (d *Device) ensureUniforms() error {
	need := uint64(maxBatch * paramsSlot)
	if d.uniBuf != nil && d.uniCap >= need {
		return nil
	}
	ub, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{
		Label: "harmony.params",
		Usage: wgpu.BufferUsageUniform | wgpu.BufferUsageCopyDst,
		Size:  need,
	})
	if err != nil {
		return d.wrapErr("params buffer", err)
	}
	d.uniBuf, d.uniCap = ub, need
	clear(d.bindCache)
	return nil
}

// fold spreads n workgroups over up to three dimensions of at most m each.
func fold(n, m uint32) (x, y, z uint32) {
	if n <= m {
		return n, 1, 1
	}
	y = (n + m - 1) / m
	if y <= m {
		return m, y, 1
	}
	z = (y + m - 1) / m
	return m, m, z
}

var bindingRE = regexp.MustCompile(`@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var<\s*(storage|uniform)\s*(?:,\s*(read_write|read)\s*)?>`)

// layoutOf reads the bind-group layout a kernel declares: storage bindings
// first (0..n-1), then at most one uniform (the Params), which must be last.
func layoutOf(k Kernel, src string) (storage []bool, uniform int, err error) {
	uniform = -1
	ms := bindingRE.FindAllStringSubmatch(src, -1)
	for i, m := range ms {
		idx, _ := strconv.Atoi(m[1])
		if idx != i {
			return nil, 0, fmt.Errorf("gpu: %s: bindings must be numbered 0, 1, … in order (binding %d is declared %d-th)", k, idx, i)
		}
		if m[2] == "uniform" {
			if i != len(ms)-1 {
				return nil, 0, fmt.Errorf("gpu: %s: the uniform Params must be the last binding", k)
			}
			uniform = idx
			continue
		}
		storage = append(storage, m[3] != "read_write")
	}
	return storage, uniform, nil
}

func (d *Device) pipelineLocked(k Kernel) (*pipeline, error) {
	if p := d.pipelines[k]; p != nil {
		return p, nil
	}
	src, err := shaders.Source(k.Shader, k.Defines)
	if err != nil {
		return nil, err
	}
	storage, uniform, err := layoutOf(k, src)
	if err != nil {
		return nil, err
	}
	if n := uint32(len(storage)); n > d.info.Limits.MaxStorageBuffersPerShaderStage {
		return nil, &LimitError{What: k.String() + " storage bindings", Need: uint64(n), Have: uint64(d.info.Limits.MaxStorageBuffersPerShaderStage)}
	}
	if len(storage) > len(bindKey{}.ids) {
		return nil, fmt.Errorf("gpu: %s declares %d storage bindings, at most %d are supported", k, len(storage), len(bindKey{}.ids))
	}
	entries := make([]wgpu.BindGroupLayoutEntry, 0, len(storage)+1)
	for i, ro := range storage {
		t := wgpu.BufferBindingTypeStorage
		if ro {
			t = wgpu.BufferBindingTypeReadOnlyStorage
		}
		entries = append(entries, wgpu.BindGroupLayoutEntry{Binding: uint32(i), Visibility: wgpu.ShaderStageCompute, Buffer: wgpu.BufferBindingLayout{Type: t}})
	}
	if uniform >= 0 {
		// Each dispatch binds a whole paramsSlot; wgpu rejects a pipeline
		// whose Params struct is larger than the layout's MinBindingSize.
		entries = append(entries, wgpu.BindGroupLayoutEntry{Binding: uint32(uniform), Visibility: wgpu.ShaderStageCompute,
			Buffer: wgpu.BufferBindingLayout{Type: wgpu.BufferBindingTypeUniform, HasDynamicOffset: true, MinBindingSize: paramsSlot}})
	}
	op := "pipeline " + k.String()
	bgl, err := d.dev.CreateBindGroupLayout(&wgpu.BindGroupLayoutDescriptor{Label: k.String(), Entries: entries})
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	pl, err := d.dev.CreatePipelineLayout(&wgpu.PipelineLayoutDescriptor{Label: k.String(), BindGroupLayouts: []*wgpu.BindGroupLayout{bgl}})
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	pipe, err := d.plat.createPipeline(d, k, src, pl)
	if err != nil {
		return nil, d.wrapErr(op, err)
	}
	p := &pipeline{kernel: k, pipe: pipe, bgl: bgl, storage: storage, uniform: uniform, bindings: len(storage)}
	d.pipelines[k] = p
	return p, nil
}

// Precompile builds a pipeline ahead of its first dispatch, so compile
// errors surface early and the first step is not slower than the rest.
func (d *Device) Precompile(k Kernel) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	_, err := d.pipelineLocked(k)
	return err
}

// Close releases the device. Buffers handed out become invalid.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	_ = d.flushLocked()
	d.closed = true
	for c, list := range d.pool.free {
		for _, b := range list {
			d.destroy(b)
		}
		delete(d.pool.free, c)
	}
	d.pool.idle = 0
	d.plat.close(d)
}

func align(n, a uint64) uint64 { return (n + a - 1) / a * a }

// bucket rounds a size up to m·2^k with a 3-bit mantissa m, so a pooled
// buffer wastes at most 12.5 % and similar sizes share a free list.
func bucket(n uint64) uint64 {
	if n <= 256 {
		return 256
	}
	shift := uint(0)
	for (n-1)>>shift >= 16 {
		shift++
	}
	m := ((n - 1) >> shift) + 1
	return m << shift
}

// pool holds released buffers by capacity, each list in release order.
type pool struct {
	free map[uint64][]*Buffer
	idle uint64 // bytes in the lists
	high uint64 // the most bytes in use since the pool was last emptied (Trim)
	seq  uint64 // release counter
}

func (p *pool) take(c uint64) *Buffer {
	l := p.free[c]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	p.free[c] = l[:len(l)-1]
	p.idle -= b.cap
	return b
}

func (p *pool) put(b *Buffer) {
	p.seq++
	b.released = p.seq
	p.free[b.cap] = append(p.free[b.cap], b)
	p.idle += b.cap
}

// oldest removes and returns the least recently released buffer (the pool
// must not be empty): the first of some list.
func (p *pool) oldest() *Buffer {
	var bc uint64
	var best *Buffer
	for c, l := range p.free {
		if len(l) > 0 && (best == nil || l[0].released < best.released) {
			bc, best = c, l[0]
		}
	}
	p.free[bc] = p.free[bc][1:]
	p.idle -= best.cap
	return best
}
