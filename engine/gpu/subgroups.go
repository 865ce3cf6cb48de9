// subgroups.go decides whether kernels may use subgroup operations. WGSL
// promises neither a subgroup size nor which invocations share a subgroup;
// the subgroup kernels (matmul.wgsl and conv2d.wgsl with SG) assume every
// subgroup of their workgroup has the same power-of-two size S and holds S
// consecutive local invocation indices, lane = index mod S. They are used
// only where the adapter reports one fixed subgroup size and a probe kernel
// finds exactly that layout on the device, with subgroupBroadcast returning
// the chosen lane's value.
package gpu

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
)

// subgroupProbe is selftest.wgsl's subgroup entry point.
var subgroupProbe = Kernel{Shader: "selftest.wgsl", Entry: "subgroups", Defines: "SGPROBE=1,WG=64"}

// probeParams is selftest.wgsl's Params (the probe reads none of it).
type probeParams struct {
	N     uint32  // elements
	Scale float32 // multiplier of the main entry
	_     [2]uint32
}

// probeSubgroups runs the probe and returns the subgroup size kernels may
// assume, or 0 and why not. lo and hi are the adapter's subgroupMinSize and
// subgroupMaxSize: where they differ, a driver may compile each pipeline
// for another size (Intel's SIMD8/16/32, AMD's wave32/64), so what the probe
// sees need not hold for the matmul pipeline, and a kernel assuming it would
// broadcast from the wrong lanes. Only a fixed size is used.
func (d *Device) probeSubgroups(ctx context.Context, lo, hi uint32) (uint32, string) {
	if note := fixedSize(lo, hi); note != "" {
		return 0, note
	}
	const wg = 64
	out, err := d.NewBuffer("subgroup probe", 3*wg*4)
	if err != nil {
		return 0, "probe: " + err.Error()
	}
	defer d.Release(out)
	if err := d.Dispatch(subgroupProbe, 1, probeParams{N: wg}, Binding{Buf: out}); err != nil {
		return 0, "probe kernel failed: " + firstLine(err.Error())
	}
	raw, err := d.Read(ctx, out, 0, 3*wg*4)
	if err != nil {
		return 0, "probe read-back failed: " + firstLine(err.Error())
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(raw[4*i:]) }
	s, note := checkSubgroups(wg, u)
	if s != 0 && s != lo {
		return 0, fmt.Sprintf("the probe ran with subgroups of %d, the adapter reports %d", s, lo)
	}
	return s, note
}

// fixedSize says why the adapter's reported subgroup sizes rule the
// subgroup kernels out, or "" when they allow them.
func fixedSize(lo, hi uint32) string {
	switch {
	case lo == 0 || hi == 0:
		return "the adapter does not report its subgroup sizes"
	case lo != hi:
		return fmt.Sprintf("subgroup size varies from %d to %d between pipelines on this adapter", lo, hi)
	}
	return ""
}

// checkSubgroups judges the probe's output: u(i) for i < wg is
// subgroup_size at local index i, u(wg+i) subgroup_invocation_id, u(2wg+i)
// subgroupBroadcast(i, 0).
func checkSubgroups(wg int, u func(int) uint32) (uint32, string) {
	s := u(0)
	if s < 4 || s > uint32(wg) || s&(s-1) != 0 {
		return 0, fmt.Sprintf("subgroup size %d (kernels need a power of two from 4 to %d)", s, wg)
	}
	for i := range wg {
		switch {
		case u(i) != s:
			return 0, fmt.Sprintf("subgroup sizes differ within a workgroup (%d at invocation 0, %d at %d)", s, u(i), i)
		case u(wg+i) != uint32(i)%s:
			return 0, fmt.Sprintf("invocation %d is lane %d, not %d: subgroups are not consecutive invocations", i, u(wg+i), uint32(i)%s)
		case u(2*wg+i) != uint32(i)-uint32(i)%s:
			return 0, fmt.Sprintf("subgroupBroadcast gave invocation %d the value %d, want %d", i, u(2*wg+i), uint32(i)-uint32(i)%s)
		}
	}
	return s, ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
