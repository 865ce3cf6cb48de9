// dispatch.go implements recording: Dispatch checks a dispatch's bindings
// against the kernel's layout and the device limits, puts its Params in
// the batch's uniform arena (one dynamic-offset slot per dispatch), folds
// its grid into the per-dimension limit and records it into the open
// command encoder; Flush and flushLocked submit the batch.
package gpu

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

// paramsSlot is the room one dispatch's Params take in the uniform arena;
// it is also the dynamic-offset alignment the spec guarantees to work.
const paramsSlot = 256

// maxBatch bounds the dispatches in one command buffer, so that the uniform
// arena stays small and a slow adapter gets work early.
const maxBatch = 512

// Binding is one storage-buffer binding of a dispatch: a byte range of a
// buffer. Offset must be a multiple of MinStorageBufferOffsetAlignment
// (kernels take finer element offsets in their Params); Size 0 binds to the
// end of the buffer.
type Binding struct {
	Buf    *Buffer
	Offset uint64
	Size   uint64
}

// Dispatch records one dispatch of workgroups workgroups with the kernel's
// storage bindings in declaration order and its Params. The count is
// linear: past MaxComputeWorkgroupsPerDimension the grid is folded into y
// (and z), so kernels rebuild the linear workgroup index with wg_linear
// from common.wgsl and ignore indices past their work. Work is batched;
// Read, Sync and Flush submit it.
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
	key, err := d.bindKeyOf(p, bindings)
	if err != nil {
		return err
	}
	pb, err := encodeParams(params)
	if err != nil {
		return err
	}
	if (p.uniform >= 0) != (pb != nil) {
		return fmt.Errorf("gpu: %s: params given %v, kernel declares a uniform %v", k, pb != nil, p.uniform >= 0)
	}
	if d.enc != nil && len(d.batch) >= maxBatch {
		if err := d.flushLocked(); err != nil {
			return err
		}
	}
	if err := d.ensureUniforms(); err != nil {
		return err
	}
	bg, err := d.bindGroupLocked(p, key, bindings)
	if err != nil {
		return err
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
	x, y, z := fold(uint32(workgroups), d.info.Limits.MaxComputeWorkgroupsPerDimension)
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

// bindKeyOf checks a dispatch's bindings against the pipeline and the
// device limits and returns the bind-group cache key they make.
func (d *Device) bindKeyOf(p *pipeline, bindings []Binding) (bindKey, error) {
	k, lim := p.kernel, d.info.Limits
	key := bindKey{pipe: p}
	if len(bindings) != p.bindings {
		return key, fmt.Errorf("gpu: %s takes %d storage bindings, got %d", k, p.bindings, len(bindings))
	}
	for i, bd := range bindings {
		if bd.Buf == nil || !bd.Buf.live {
			return key, fmt.Errorf("gpu: %s binding %d: buffer is nil or released", k, i)
		}
		size := bd.Size
		if size == 0 {
			size = bd.Buf.cap - bd.Offset
		}
		if bd.Offset%uint64(lim.MinStorageBufferOffsetAlignment) != 0 {
			return key, fmt.Errorf("gpu: %s binding %d (%q): offset %d is not a multiple of %d", k, i, bd.Buf.label, bd.Offset, lim.MinStorageBufferOffsetAlignment)
		}
		if bd.Offset+size > bd.Buf.cap || size == 0 {
			return key, fmt.Errorf("gpu: %s binding %d (%q): range [%d, %d) outside the buffer's %d bytes", k, i, bd.Buf.label, bd.Offset, bd.Offset+size, bd.Buf.cap)
		}
		// The binding size, not the buffer size, is what the limit caps:
		// a big buffer is fine as long as each dispatch sees a window of it.
		if size > lim.MaxStorageBufferBindingSize {
			return key, &LimitError{What: fmt.Sprintf("%s binding %d (%q) size", k, i, bd.Buf.label), Need: size, Have: lim.MaxStorageBufferBindingSize}
		}
		d.stats.LargestBinding = max(d.stats.LargestBinding, size)
		key.ids[i], key.offs[i], key.szs[i] = bd.Buf.id, bd.Offset, size
	}
	return key, nil
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
	// Every cached bind group binds the old arena.
	d.binds.reset()
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

// Flush submits the work recorded so far without waiting for it.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return err
	}
	return d.flushLocked()
}

// flushLocked ends the open pass, uploads the batch's Params and submits
// it; buffers released during the batch go back to the pool (or are
// destroyed) only then.
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

// batchNames names the kernels of a batch for an error raised by its
// submit, which WebGPU cannot pin on one dispatch.
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
