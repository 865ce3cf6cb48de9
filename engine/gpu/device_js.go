//go:build js

// device_js.go opens a device on the browser's (or Node + Dawn's)
// navigator.gpu and implements the js build's waits, maps and error capture.
//
// It absorbs the gaps of the bindings' js side (each one measured):
//   - CreateInstance panics without navigator: we check navigator.gpu first.
//   - RequiredFeatures panic and RequiredLimits are dropped: we request the
//     adapter and device ourselves and wrap the device with wgpu.NewDevice.
//   - Adapter info, features and limits are empty: read through syscall/js.
//   - No GetBindGroupLayout: the shared code always builds explicit layouts.
//   - Mapped ranges are copies, MapAsync reports success even on failure,
//     WriteBuffer needs globalThis.wasm and panics on empty data: we map and
//     write through syscall/js ourselves.
//   - Errors never come back: validation and out-of-memory error scopes wrap
//     every batch and every pipeline, an uncapturederror listener catches
//     the rest, and the next wait reports them naming the pipeline.
//   - Promises block the calling goroutine: every wait here must run off
//     the goroutine serving a JS callback (the wasm API starts goroutines);
//     each wait has a timeout.
package gpu

import (
	"context"
	"fmt"
	"sync"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/cogentcore/webgpu/wgpu"

	"harmony/engine/jsx"
)

type platform struct {
	jsDev   js.Value
	jsQueue js.Value

	emu      sync.Mutex // guards errs only; never held across an await
	errs     []string   // uncaptured errors not reported yet
	scopes   []scope    // popped error scopes not awaited yet
	inBatch  bool
	callback []js.Func // listeners kept alive for the device's lifetime
}

type scope struct {
	op      string
	promise js.Value
}

// handle returns the js.Value inside a bindings object. The bindings keep it
// in an unexported field that is the struct's only field; the size check
// makes a layout change fail loudly instead of misbehaving.
func handle[T any](p *T) js.Value {
	var zero T
	if unsafe.Sizeof(zero) != unsafe.Sizeof(js.Value{}) {
		panic(fmt.Sprintf("gpu: unexpected layout of %T in the webgpu bindings", zero))
	}
	return *(*js.Value)(unsafe.Pointer(p))
}

// await blocks until promise settles, the timeout passes or ctx ends.
func await(ctx context.Context, promise js.Value, timeout time.Duration) (js.Value, error) {
	v, err := jsx.Await(ctx, promise, timeout)
	if err == jsx.ErrTimeout {
		err = ErrTimeout
	}
	return v, err
}

// Open finds an adapter on navigator.gpu and opens a device on it.
func Open(ctx context.Context, opt Options) (*Device, error) {
	nav := js.Global().Get("navigator")
	if nav.Type() != js.TypeObject || nav.Get("gpu").Type() != js.TypeObject {
		return nil, fmt.Errorf("%w: navigator.gpu is missing (no WebGPU in this browser)", ErrNoAdapter)
	}
	d := &Device{opt: opt}
	d.init()
	opts := js.Global().Get("Object").New()
	opts.Set("powerPreference", "high-performance")
	ad, err := await(ctx, nav.Get("gpu").Call("requestAdapter", opts), d.timeout())
	if err != nil {
		return nil, fmt.Errorf("%w: requestAdapter: %v", ErrNoAdapter, err)
	}
	if ad.IsNull() || ad.IsUndefined() {
		return nil, fmt.Errorf("%w: requestAdapter returned null", ErrNoAdapter)
	}
	info := ad.Get("info")
	if info.Type() == js.TypeObject {
		d.info.Vendor = jsString(info.Get("vendor"))
		d.info.Architecture = jsString(info.Get("architecture"))
		d.info.Adapter = jsString(info.Get("description"))
		if d.info.Adapter == "" {
			d.info.Adapter = jsString(info.Get("device"))
		}
		if d.info.Adapter == "" {
			d.info.Adapter = d.info.Vendor + " " + d.info.Architecture
		}
		d.info.Fallback = info.Get("isFallbackAdapter").Truthy()
	}
	d.info.Fallback = d.info.Fallback || ad.Get("isFallbackAdapter").Truthy()
	d.info.Backend = "browser"
	// wasm_exec.js installs a stub globalThis.process in browsers too; only
	// Node has process.versions.node.
	if p := js.Global().Get("process"); p.Type() == js.TypeObject {
		if v := p.Get("versions"); v.Type() == js.TypeObject && v.Get("node").Type() == js.TypeString {
			d.info.Backend = "node (dawn)"
		}
	}
	feats := js.Global().Get("Array").Call("from", ad.Get("features"))
	var haveF16 bool
	for i := 0; i < feats.Length(); i++ {
		f := feats.Index(i).String()
		d.info.Features = append(d.info.Features, f)
		switch f {
		case "shader-f16":
			haveF16 = true
		case "subgroups":
			d.info.Subgroups = true
		}
	}
	al := ad.Get("limits")
	d.info.AdapterLimits = limitsOf(al)
	d.info.DefaultMode = opt.DefaultLimits

	desc := js.Global().Get("Object").New()
	desc.Set("label", orDefault(opt.Label, "harmony"))
	req := js.Global().Get("Object").New()
	if !opt.DefaultLimits {
		for _, name := range limitNames {
			if v := al.Get(name); v.Type() == js.TypeNumber {
				req.Set(name, v)
			}
		}
	}
	desc.Set("requiredLimits", req)
	reqF := js.Global().Get("Array").New()
	if haveF16 && !opt.NoF16 {
		reqF.Call("push", "shader-f16")
	}
	if d.info.Subgroups && !opt.NoSubgroups {
		reqF.Call("push", "subgroups")
	}
	desc.Set("requiredFeatures", reqF)
	dev, err := await(ctx, ad.Call("requestDevice", desc), d.timeout())
	if err != nil {
		return nil, fmt.Errorf("gpu: requestDevice on %q: %v", d.info.Adapter, err)
	}
	d.plat.jsDev = dev
	d.plat.jsQueue = dev.Get("queue")
	wd := wgpu.NewDevice(dev)
	d.dev = &wd
	d.queue = d.dev.GetQueue()
	d.info.Limits = limitsOf(dev.Get("limits"))

	// Device loss and uncaptured errors arrive on the event loop; the
	// callbacks only record them (they must never block).
	onLost := js.FuncOf(func(_ js.Value, args []js.Value) any {
		reason, msg := "unknown", ""
		if len(args) > 0 && args[0].Type() == js.TypeObject {
			reason, msg = jsString(args[0].Get("reason")), jsString(args[0].Get("message"))
		}
		if reason != "destroyed" {
			d.markLost(reason, msg)
		}
		return nil
	})
	dev.Get("lost").Call("then", onLost)
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "uncaptured error"
		if len(args) > 0 {
			if e := args[0].Get("error"); e.Type() == js.TypeObject {
				msg = jsString(e.Get("message"))
			}
		}
		d.plat.emu.Lock()
		d.plat.errs = append(d.plat.errs, msg)
		d.plat.emu.Unlock()
		return nil
	})
	dev.Call("addEventListener", "uncapturederror", onErr)
	d.plat.callback = append(d.plat.callback, onLost, onErr)

	if haveF16 {
		granted := dev.Get("features").Call("has", "shader-f16").Truthy()
		d.info.ShaderF16, d.info.F16Note = d.probeF16(ctx, granted)
	}
	switch {
	case !d.info.Subgroups:
	case opt.NoSubgroups:
		d.info.SubgroupNote = "disabled by option"
	case !dev.Get("features").Call("has", "subgroups").Truthy():
		d.info.SubgroupNote = "feature not granted"
	default:
		lo, hi := uint32(0), uint32(0)
		if info.Type() == js.TypeObject {
			lo, hi = uint32(info.Get("subgroupMinSize").Int()), uint32(info.Get("subgroupMaxSize").Int())
		}
		d.info.SubgroupSize, d.info.SubgroupNote = d.probeSubgroups(ctx, lo, hi)
	}
	return d, nil
}

// limitNames are the limits the engine asks for by name.
var limitNames = []string{
	"maxStorageBufferBindingSize", "maxBufferSize", "maxUniformBufferBindingSize",
	"maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup",
	"maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ",
	"maxComputeWorkgroupsPerDimension", "maxStorageBuffersPerShaderStage",
}

func limitsOf(l js.Value) Limits {
	u64 := func(n string) uint64 { return uint64(l.Get(n).Float()) }
	u32 := func(n string) uint32 { return uint32(l.Get(n).Float()) }
	return Limits{
		MaxStorageBufferBindingSize:       u64("maxStorageBufferBindingSize"),
		MaxBufferSize:                     u64("maxBufferSize"),
		MaxUniformBufferBindingSize:       u64("maxUniformBufferBindingSize"),
		MaxComputeWorkgroupStorageSize:    u32("maxComputeWorkgroupStorageSize"),
		MaxComputeInvocationsPerWorkgroup: u32("maxComputeInvocationsPerWorkgroup"),
		MaxComputeWorkgroupSizeX:          u32("maxComputeWorkgroupSizeX"),
		MaxComputeWorkgroupSizeY:          u32("maxComputeWorkgroupSizeY"),
		MaxComputeWorkgroupSizeZ:          u32("maxComputeWorkgroupSizeZ"),
		MaxComputeWorkgroupsPerDimension:  u32("maxComputeWorkgroupsPerDimension"),
		MaxStorageBuffersPerShaderStage:   u32("maxStorageBuffersPerShaderStage"),
		MinStorageBufferOffsetAlignment:   u32("minStorageBufferOffsetAlignment"),
		MinUniformBufferOffsetAlignment:   u32("minUniformBufferOffsetAlignment"),
	}
}

func jsString(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// popScopes wraps the creation of one object in validation and
// out-of-memory scopes and reports what they caught.
func (d *Device) scoped(ctx context.Context, op string, f func()) error {
	dev := d.plat.jsDev
	dev.Call("pushErrorScope", "out-of-memory")
	dev.Call("pushErrorScope", "validation")
	f()
	v := dev.Call("popErrorScope")
	m := dev.Call("popErrorScope")
	for _, p := range []js.Value{v, m} {
		e, err := await(ctx, p, d.timeout())
		if err != nil {
			return err
		}
		if e.Type() == js.TypeObject {
			return &ValidationError{Op: op, Message: jsString(e.Get("message"))}
		}
	}
	return nil
}

func (d *Device) probeF16(ctx context.Context, granted bool) (bool, string) {
	if !granted {
		if d.opt.NoF16 {
			return false, "disabled by option"
		}
		return false, "feature not granted"
	}
	desc := js.Global().Get("Object").New()
	desc.Set("code", "enable f16;\n@group(0) @binding(0) var<storage, read_write> o: array<f16>;\n@compute @workgroup_size(1) fn main() { o[0] = o[0] * 2.0h + 1.0h; }\n")
	err := d.scoped(ctx, "f16 probe", func() { d.plat.jsDev.Call("createShaderModule", desc) })
	if err != nil {
		return false, "probe kernel did not compile: " + err.Error()
	}
	return true, ""
}

func (p *platform) beginBatch(d *Device) {
	p.jsDev.Call("pushErrorScope", "out-of-memory")
	p.jsDev.Call("pushErrorScope", "validation")
	p.inBatch = true
}

// check closes the batch's error scopes (their outcome is awaited at the
// next wait) and reports uncaptured errors seen so far.
func (p *platform) check(op string) error {
	if p.inBatch {
		p.inBatch = false
		p.scopes = append(p.scopes, scope{op, p.jsDev.Call("popErrorScope")}, scope{op, p.jsDev.Call("popErrorScope")})
	}
	return p.uncaptured(op)
}

func (p *platform) uncaptured(op string) error {
	p.emu.Lock()
	defer p.emu.Unlock()
	if len(p.errs) == 0 {
		return nil
	}
	msg := p.errs[0]
	p.errs = p.errs[:0]
	return &ValidationError{Op: op, Message: msg}
}

// settle awaits the error scopes of submitted batches. When ctx ends first,
// the scopes not yet seen stay queued for the next wait: a cancelled Read
// must neither lose an earlier batch's error nor report one as its own.
func (p *platform) settle(ctx context.Context, d *Device) error {
	scopes := p.scopes
	p.scopes = nil
	var first error
	for i, s := range scopes {
		e, err := await(ctx, s.promise, d.timeout())
		if err != nil && err == ctx.Err() {
			p.scopes = scopes[i:]
			if first != nil {
				return first
			}
			return err
		}
		if err != nil && first == nil {
			first = err
		}
		if err == nil && e.Type() == js.TypeObject && first == nil {
			first = &ValidationError{Op: s.op, Message: jsString(e.Get("message"))}
		}
	}
	if first == nil {
		first = p.uncaptured("earlier work")
	}
	return first
}

func (p *platform) endPass(pass *wgpu.ComputePassEncoder) error {
	pass.End()
	return nil
}

// write copies data into a JS array and queues it (the bindings' own
// WriteBuffer needs globalThis.wasm and panics on empty slices).
func (p *platform) write(d *Device, b *wgpu.Buffer, off uint64, data []byte) error {
	const chunk = 8 << 20
	jb := handle(b)
	for len(data) > 0 {
		n := min(len(data), chunk)
		arr := js.Global().Get("Uint8Array").New(n)
		js.CopyBytesToJS(arr, data[:n])
		p.jsQueue.Call("writeBuffer", jb, off, arr)
		data, off = data[n:], off+uint64(n)
	}
	return p.uncaptured("write")
}

func (p *platform) createPipeline(d *Device, k Kernel, src string, layout *wgpu.PipelineLayout) (*wgpu.ComputePipeline, error) {
	var pipe *wgpu.ComputePipeline
	var cerr error
	err := d.scoped(context.Background(), "pipeline "+k.String(), func() {
		mod, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
			Label:          k.String(),
			WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: src},
		})
		if err != nil {
			cerr = err
			return
		}
		handle(mod).Set("label", k.String())
		pipe, cerr = d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
			Layout:  layout,
			Compute: wgpu.ProgrammableStageDescriptor{Module: mod, EntryPoint: k.Entry},
		})
		if cerr == nil {
			handle(pipe).Set("label", k.String())
		}
	})
	if err == nil {
		err = cerr
	}
	return pipe, err
}

func (p *platform) wait(ctx context.Context, d *Device) error {
	if _, err := await(ctx, p.jsQueue.Call("onSubmittedWorkDone"), d.timeout()); err != nil {
		return err
	}
	return p.settle(ctx, d)
}

func (p *platform) mapRead(ctx context.Context, d *Device, b *wgpu.Buffer, n uint64) ([]byte, error) {
	jb := handle(b)
	mode := js.Global().Get("GPUMapMode").Get("READ")
	promise := jb.Call("mapAsync", mode, 0, n)
	if mapRequested != nil {
		mapRequested()
	}
	if _, err := await(ctx, promise, d.timeout()); err != nil {
		if err == ctx.Err() {
			// The caller stopped waiting. Left pending, the map keeps the
			// buffer unusable: the next Read's copy into it would be a
			// validation error, remembered as the device's. unmap cancels
			// the map (its promise rejects with an AbortError nobody
			// awaits), and the batches' error scopes stay queued for the
			// next wait.
			jb.Call("unmap")
			return nil, err
		}
		if serr := p.settle(ctx, d); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("map for reading failed: %v", err)
	}
	if err := p.settle(ctx, d); err != nil {
		jb.Call("unmap")
		return nil, err
	}
	ab := jb.Call("getMappedRange", 0, n)
	out := make([]byte, n)
	js.CopyBytesToGo(out, js.Global().Get("Uint8Array").New(ab))
	jb.Call("unmap")
	return out, nil
}

func (p *platform) close(d *Device) {
	p.jsDev.Call("destroy")
	for _, f := range p.callback {
		f.Release()
	}
	p.callback = nil
}
