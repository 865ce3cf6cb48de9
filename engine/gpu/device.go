// device.go holds the Device both builds share: its state, its counters,
// the checks every call makes before touching the GPU, and Close. The rest
// of what a device does lives in one file per concern: buffer.go and
// pool.go (buffers and their reuse), transfer.go (uploads, read-back and
// the sync point), dispatch.go (recording, the params arena and
// submission), bindgroup.go (the bind-group cache), pipeline.go (pipelines
// and their layouts), errors.go and info.go. The calls into the bindings
// exist with the same shape on their native and js sides; what differs
// (opening, error capture, mapping, waiting) lives in device_native.go and
// device_js.go.
package gpu

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// Device is an opened WebGPU device. Every method takes the device's
// mutex, so goroutines may share one; work from several goroutines lands
// in one queue in the order the calls took the lock.
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
	binds     bindCache
	nextID    uint64
	debugSync bool // HARMONY_GPU_DEBUG=1: flush after every dispatch so errors name their kernel
	profiling bool // Options.Profile or HARMONY_GPU_PROFILE=1 (profile.go)
	profile   map[string]*KernelTime

	// The batch being recorded.
	enc      *wgpu.CommandEncoder
	pass     *wgpu.ComputePassEncoder
	batch    []Kernel // kernels recorded in this batch, for error messages
	uniforms []byte   // params of this batch, one aligned slot per dispatch
	uniBuf   *wgpu.Buffer
	uniCap   uint64
	released []*Buffer // unpooled buffers released while the batch was open; destroyed after submit

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
	d.binds.init()
	d.pool.free = map[uint64][]*Buffer{}
	d.debugSync = os.Getenv("HARMONY_GPU_DEBUG") == "1"
	d.profiling = d.opt.Profile || os.Getenv("HARMONY_GPU_PROFILE") == "1"
	d.profile = map[string]*KernelTime{}
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
	d.destroyIdle()
	d.plat.close(d)
}
