//go:build !js

// device_native.go opens a device on wgpu-native (Vulkan, Metal, D3D12) and
// implements the waits, maps and error capture of the native build. The
// bindings wrap each call in a validation error scope, so errors come back
// as Go errors; waits poll the device with a deadline.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cogentcore/webgpu/wgpu"
)

type platform struct {
	instance *wgpu.Instance
	adapter  *wgpu.Adapter
}

func init() {
	// wgpu-native logs through stderr by default; keep it to real warnings.
	wgpu.SetLogLevel(wgpu.LogLevelError)
}

// Open finds an adapter and opens a device on it.
func Open(ctx context.Context, opt Options) (*Device, error) {
	quietXDG()
	inst := wgpu.CreateInstance(nil)
	if inst == nil {
		return nil, ErrNoAdapter
	}
	ad, err := inst.RequestAdapter(&wgpu.RequestAdapterOptions{PowerPreference: wgpu.PowerPreferenceHighPerformance})
	if err != nil || ad == nil {
		inst.Release()
		return nil, fmt.Errorf("%w: %v", ErrNoAdapter, err)
	}
	ai := ad.GetInfo()
	al := ad.GetLimits().Limits
	d := &Device{opt: opt}
	d.init()
	d.plat = platform{instance: inst, adapter: ad}
	d.info.Backend = ai.BackendType.String()
	d.info.Adapter = ai.DriverDescription
	if d.info.Adapter == "" {
		d.info.Adapter = ai.Name
	}
	d.info.Vendor = ai.VendorName
	d.info.Architecture = ai.Architecture
	d.info.Fallback = ai.AdapterType == wgpu.AdapterTypeCPU
	d.info.AdapterLimits = fromWGPU(al)
	d.info.DefaultMode = opt.DefaultLimits
	var haveF16 bool
	for _, f := range ad.EnumerateFeatures() {
		name := featureName(f)
		d.info.Features = append(d.info.Features, name)
		switch name {
		case "shader-f16":
			haveF16 = true
		case "subgroups":
			d.info.Subgroups = true
		}
	}
	req := al
	req.MaxPushConstantSize = 0 // read back as garbage by the bindings; we use none
	if opt.DefaultLimits {
		req = toWGPU(SpecDefaultLimits(), al)
	}
	var feats []wgpu.FeatureName
	if haveF16 && !opt.NoF16 {
		feats = append(feats, wgpu.FeatureNameShaderF16)
	}
	desc := &wgpu.DeviceDescriptor{
		Label:            orDefault(opt.Label, "harmony"),
		RequiredFeatures: feats,
		RequiredLimits:   &wgpu.RequiredLimits{Limits: req},
		// No DeviceLostCallback: the bindings pass a Go pointer inside a Go
		// struct to C for it, which cgocheck rejects. Loss shows up instead
		// as a failed map or wait, which markLost records.
	}
	dev, err := ad.RequestDevice(desc)
	if err != nil && len(feats) > 0 {
		desc.RequiredFeatures = nil
		feats = nil
		dev, err = ad.RequestDevice(desc)
	}
	if err != nil {
		ad.Release()
		inst.Release()
		return nil, fmt.Errorf("gpu: request device on %q: %v", d.info.Adapter, err)
	}
	d.dev = dev
	d.queue = dev.GetQueue()
	if opt.DefaultLimits {
		d.info.Limits = SpecDefaultLimits()
	} else {
		d.info.Limits = fromWGPU(dev.GetLimits().Limits)
	}
	if haveF16 {
		d.info.ShaderF16, d.info.F16Note = d.probeF16(len(feats) > 0)
	}
	if d.info.Subgroups {
		// wgpu-native v0.23 exposes subgroups only as a native feature the
		// bindings do not name; the kernels fall back.
		d.info.SubgroupNote = "not requested by the native build"
	}
	return d, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// probeF16 compiles a kernel that uses f16 arithmetic: some stacks advertise
// shader-f16 but cannot compile it (lavapipe with the bundled naga).
func (d *Device) probeF16(granted bool) (bool, string) {
	if !granted {
		if d.opt.NoF16 {
			return false, "disabled by option"
		}
		return false, "feature not granted"
	}
	// A failed probe is expected on some stacks: keep wgpu-native from
	// logging it as an error.
	wgpu.SetLogLevel(wgpu.LogLevelOff)
	defer wgpu.SetLogLevel(wgpu.LogLevelError)
	mod, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
		Label:          "harmony.f16probe",
		WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: f16Probe},
	})
	if err != nil {
		return false, "probe kernel did not compile: " + firstLine(err.Error())
	}
	mod.Release()
	return true, ""
}

const f16Probe = `enable f16;
@group(0) @binding(0) var<storage, read_write> o: array<f16>;
@compute @workgroup_size(1) fn main() { o[0] = o[0] * 2.0h + 1.0h; }
`

func (platform) beginBatch(*Device) {}

func (platform) check(string) error { return nil }

func (platform) endPass(p *wgpu.ComputePassEncoder) error {
	err := p.End()
	p.Release()
	return err
}

func (platform) write(d *Device, b *wgpu.Buffer, off uint64, data []byte) error {
	return d.queue.WriteBuffer(b, off, data)
}

func (platform) createPipeline(d *Device, k Kernel, src string, layout *wgpu.PipelineLayout) (*wgpu.ComputePipeline, error) {
	mod, err := d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
		Label:          k.String(),
		WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: src},
	})
	if err != nil {
		return nil, err
	}
	defer mod.Release()
	return d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
		Label:   k.String(),
		Layout:  layout,
		Compute: wgpu.ProgrammableStageDescriptor{Module: mod, EntryPoint: k.Entry},
	})
}

// poll drives the device until done() or the deadline.
func (d *Device) poll(ctx context.Context, done func() bool) error {
	deadline := time.Now().Add(d.timeout())
	sleep := 50 * time.Microsecond
	for !done() {
		if d.Lost() != nil {
			return d.Lost()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		if d.dev.Poll(false, nil) {
			// Queue empty: one more poll delivers pending callbacks.
			d.dev.Poll(false, nil)
			if done() {
				break
			}
		}
		time.Sleep(sleep)
		sleep = min(sleep*2, 2*time.Millisecond)
	}
	return nil
}

func (platform) wait(ctx context.Context, d *Device) error {
	done := false
	d.queue.OnSubmittedWorkDone(func(wgpu.QueueWorkDoneStatus) { done = true })
	return d.poll(ctx, func() bool { return done })
}

func (platform) mapRead(ctx context.Context, d *Device, b *wgpu.Buffer, n uint64) ([]byte, error) {
	var status wgpu.BufferMapAsyncStatus
	finished := false
	if err := b.MapAsync(wgpu.MapModeRead, 0, n, func(s wgpu.BufferMapAsyncStatus) {
		status, finished = s, true
	}); err != nil {
		return nil, err
	}
	if mapRequested != nil {
		mapRequested()
	}
	if err := d.poll(ctx, func() bool { return finished }); err != nil {
		if err == ctx.Err() && !finished {
			d.abortMap(b)
		}
		return nil, err
	}
	if status == wgpu.BufferMapAsyncStatusDeviceLost {
		d.markLost("map", "the device was lost while reading back")
		return nil, d.Lost()
	}
	if status != wgpu.BufferMapAsyncStatusSuccess {
		return nil, errors.New("map for reading failed: " + status.String())
	}
	// The mapped range aliases the mapping: copy before Unmap.
	out := make([]byte, n)
	copy(out, b.GetMappedRange(0, uint(n)))
	return out, b.Unmap()
}

// abortMap frees the read-back buffer of a map the caller stopped waiting
// for. Left pending, the buffer counts as mapped and the next Read's copy
// into it fails validation inside Submit, which wgpu-native turns into an
// abort of the whole process. Unmap cancels the pending map (its callback
// reports the abort); should that fail, the buffer is dropped instead and
// the next Read allocates a fresh one (Destroy also ends the map).
func (d *Device) abortMap(b *wgpu.Buffer) {
	if err := b.Unmap(); err == nil {
		return
	}
	if d.staging == b {
		d.staging, d.stagingCap = nil, 0
	}
	b.Destroy()
	b.Release()
}

func (platform) close(d *Device) {
	if d.staging != nil {
		d.staging.Destroy()
		d.staging.Release()
	}
	if d.uniBuf != nil {
		d.uniBuf.Destroy()
		d.uniBuf.Release()
	}
	for _, p := range d.pipelines {
		p.pipe.Release()
		p.bgl.Release()
	}
	d.queue.Release()
	d.dev.Release()
	d.plat.adapter.Release()
	d.plat.instance.Release()
}

func fromWGPU(l wgpu.Limits) Limits {
	return Limits{
		MaxStorageBufferBindingSize:       l.MaxStorageBufferBindingSize,
		MaxBufferSize:                     l.MaxBufferSize,
		MaxUniformBufferBindingSize:       l.MaxUniformBufferBindingSize,
		MaxComputeWorkgroupStorageSize:    l.MaxComputeWorkgroupStorageSize,
		MaxComputeInvocationsPerWorkgroup: l.MaxComputeInvocationsPerWorkgroup,
		MaxComputeWorkgroupSizeX:          l.MaxComputeWorkgroupSizeX,
		MaxComputeWorkgroupSizeY:          l.MaxComputeWorkgroupSizeY,
		MaxComputeWorkgroupSizeZ:          l.MaxComputeWorkgroupSizeZ,
		MaxComputeWorkgroupsPerDimension:  l.MaxComputeWorkgroupsPerDimension,
		MaxStorageBuffersPerShaderStage:   l.MaxStorageBuffersPerShaderStage,
		MinStorageBufferOffsetAlignment:   l.MinStorageBufferOffsetAlignment,
		MinUniformBufferOffsetAlignment:   l.MinUniformBufferOffsetAlignment,
	}
}

// toWGPU writes our limits over the adapter's, keeping the adapter's values
// for limits we do not manage.
func toWGPU(l Limits, base wgpu.Limits) wgpu.Limits {
	base.MaxStorageBufferBindingSize = l.MaxStorageBufferBindingSize
	base.MaxBufferSize = l.MaxBufferSize
	base.MaxUniformBufferBindingSize = l.MaxUniformBufferBindingSize
	base.MaxComputeWorkgroupStorageSize = l.MaxComputeWorkgroupStorageSize
	base.MaxComputeInvocationsPerWorkgroup = l.MaxComputeInvocationsPerWorkgroup
	base.MaxComputeWorkgroupSizeX = l.MaxComputeWorkgroupSizeX
	base.MaxComputeWorkgroupSizeY = l.MaxComputeWorkgroupSizeY
	base.MaxComputeWorkgroupSizeZ = l.MaxComputeWorkgroupSizeZ
	base.MaxComputeWorkgroupsPerDimension = l.MaxComputeWorkgroupsPerDimension
	base.MaxStorageBuffersPerShaderStage = l.MaxStorageBuffersPerShaderStage
	base.MinStorageBufferOffsetAlignment = l.MinStorageBufferOffsetAlignment
	base.MinUniformBufferOffsetAlignment = l.MinUniformBufferOffsetAlignment
	base.MaxPushConstantSize = 0
	return base
}

// featureName spells a feature the way WebGPU (and the browser) does; the
// bindings' String already does, with a "native-feature-" prefix for
// wgpu-only extensions.
func featureName(f wgpu.FeatureName) string {
	if s := f.String(); s != "" {
		return s
	}
	return fmt.Sprintf("feature-%#x", uint32(f))
}

// quietXDG gives Mesa's window-system code a runtime directory when the
// environment has none (headless servers, CI); otherwise every process
// prints "XDG_RUNTIME_DIR is invalid" although no window is ever used.
func quietXDG() {
	if os.Getenv("XDG_RUNTIME_DIR") != "" {
		return
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("harmony-xdg-%d", os.Getuid()))
	if os.MkdirAll(dir, 0o700) == nil {
		os.Setenv("XDG_RUNTIME_DIR", dir)
	}
}
