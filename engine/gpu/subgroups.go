// subgroups.go decides whether kernels may use subgroup operations. WGSL
// promises neither a subgroup size nor which invocations share a subgroup;
// the subgroup kernels (matmul.wgsl with SG) assume every subgroup of a
// 64-invocation workgroup has the same power-of-two size S and holds S
// consecutive local invocation indices, lane = index mod S. The probe
// checks exactly that on the device, and that subgroupBroadcast returns the
// chosen lane's value, before any kernel relies on it.
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
	N     uint32
	Scale float32
	_     [2]uint32
}

// probeSubgroups runs the probe and returns the subgroup size kernels may
// assume, or 0 and why not.
func (d *Device) probeSubgroups(ctx context.Context) (uint32, string) {
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
	return checkSubgroups(wg, u)
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
