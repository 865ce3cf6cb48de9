// pipeline.go implements compute pipelines: the WGSL source of a Kernel
// with its defines applied, the explicit bind-group layout read from its
// declarations (the js bindings have no automatic layouts), and the cache
// that compiles each Kernel once per device.
package gpu

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/cogentcore/webgpu/wgpu"

	"harmony/shaders"
)

// pipeline is a compiled Kernel with the layout its dispatches bind.
type pipeline struct {
	kernel   Kernel
	pipe     *wgpu.ComputePipeline
	bgl      *wgpu.BindGroupLayout
	storage  []bool // per storage binding: read-only
	uniform  int    // binding index of the Params uniform, -1 when none
	bindings int    // storage bindings
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

// pipelineLocked returns k's pipeline, compiling it on first use.
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
