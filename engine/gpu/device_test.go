// device_test.go: the helpers the device tests share (the selftest kernel
// run against a host computation) and the tests of opening a device.
package gpu_test

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

type selfParams struct {
	N     uint32
	Scale float32
	_     [2]uint32
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesf32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

var selftest = gpu.Kernel{Shader: "selftest.wgsl", Entry: "main", Defines: "WG=64"}

// run dispatches the probe kernel over n elements, guarded by sentinels.
func run(t *testing.T, d *gpu.Device, n int) {
	ctx := context.Background()
	const guard = 64
	a := make([]float32, n)
	for i := range a {
		a[i] = float32(i%97) - 48
	}
	in, err := d.NewBuffer("test.a", uint64(4*n))
	require.NoError(t, err)
	defer d.Release(in)
	out, err := d.NewBuffer("test.out", uint64(4*(n+2*guard)))
	require.NoError(t, err)
	defer d.Release(out)
	init := make([]float32, n+2*guard)
	for i := range init {
		init[i] = -12345
	}
	require.NoError(t, d.Write(in, 0, f32bytes(a)))
	require.NoError(t, d.Write(out, 0, f32bytes(init)))
	// The output window starts after the first guard band: a binding offset
	// must be 256-aligned, and 64 floats are exactly 256 bytes.
	wg := (n + 63) / 64
	require.NoError(t, d.Dispatch(selftest, wg, selfParams{N: uint32(n), Scale: 0.5},
		gpu.Binding{Buf: in}, gpu.Binding{Buf: out, Offset: 4 * guard, Size: uint64(4 * n)}))
	raw, err := d.Read(ctx, out, 0, uint64(4*(n+2*guard)))
	require.NoError(t, err)
	got := bytesf32(raw)
	for i := 0; i < guard; i++ {
		require.Equal(t, float32(-12345), got[i], "front sentinel %d", i)
		require.Equal(t, float32(-12345), got[guard+n+i], "back sentinel %d", i)
	}
	for i := 0; i < n; i++ {
		want := a[i]*0.5 + float32(i)
		if got[guard+i] != want {
			t.Fatalf("out[%d] = %v, want %v", i, got[guard+i], want)
		}
	}
}

func TestInfo(t *testing.T) {
	d := gputest.Default(t)
	i := d.Info()
	t.Logf("backend %q adapter %q vendor %q arch %q fallback %v f16 %v (%s) subgroups %v size %d (%s)", i.Backend, i.Adapter, i.Vendor, i.Architecture, i.Fallback, i.ShaderF16, i.F16Note, i.Subgroups, i.SubgroupSize, i.SubgroupNote)
	t.Logf("limits %+v", i.Limits)
	t.Logf("features %v", i.Features)
	require.NotEmpty(t, i.Backend)
	require.NotZero(t, i.Limits.MaxStorageBufferBindingSize)
}

func TestDefaultLimitsMode(t *testing.T) {
	d := gputest.Open(t, gpu.Options{DefaultLimits: true})
	l := d.Limits()
	require.Equal(t, uint64(128<<20), l.MaxStorageBufferBindingSize)
	require.Equal(t, uint64(256<<20), l.MaxBufferSize)
	require.True(t, d.Info().DefaultMode)
	run(t, d, 777)
	// A binding beyond 128 MiB is refused up front with a limit error.
	big, err := d.NewBuffer("test.big", 129<<20)
	require.NoError(t, err)
	defer d.Release(big)
	small, err := d.NewBuffer("test.small", 1024)
	require.NoError(t, err)
	defer d.Release(small)
	err = d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: big}, gpu.Binding{Buf: small})
	var le *gpu.LimitError
	require.ErrorAs(t, err, &le)
	require.Contains(t, err.Error(), "test.big")
	_, err = d.NewBuffer("test.huge", 300<<20)
	require.ErrorAs(t, err, &le)
}

// TestSubgroupDecision: a device whose adapter offers subgroups either
// passes the probe or says why not; one opened with NoSubgroups never uses
// them.
func TestSubgroupDecision(t *testing.T) {
	i := gputest.Default(t).Info()
	t.Logf("subgroups offered %v, size %d (%s)", i.Subgroups, i.SubgroupSize, i.SubgroupNote)
	if !i.Subgroups {
		require.Zero(t, i.SubgroupSize)
		return
	}
	require.True(t, i.SubgroupSize > 0 || i.SubgroupNote != "", "subgroups offered, not used, and no reason given")
	off := gputest.Open(t, gpu.Options{NoSubgroups: true}).Info()
	require.Zero(t, off.SubgroupSize)
	require.Equal(t, "disabled by option", off.SubgroupNote)
}
