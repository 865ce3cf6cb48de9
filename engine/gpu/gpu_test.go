package gpu_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
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

func TestDispatchSmall(t *testing.T) {
	d := gputest.Default(t)
	for _, n := range []int{1, 63, 64, 65, 1000, 4099} {
		run(t, d, n)
	}
}

// TestDispatchFolded needs more than 65535 workgroups, so the grid is folded.
func TestDispatchFolded(t *testing.T) {
	d := gputest.Default(t)
	run(t, d, 65536*64+37)
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

func TestPipelineErrorNamesKernel(t *testing.T) {
	d := gputest.Default(t)
	k := gpu.Kernel{Shader: "selftest.wgsl", Entry: "no_such_entry", Defines: "WG=64"}
	a, _ := d.NewBuffer("a", 16)
	b, _ := d.NewBuffer("b", 16)
	defer d.Release(a)
	defer d.Release(b)
	err := d.Dispatch(k, 1, selfParams{N: 1}, gpu.Binding{Buf: a}, gpu.Binding{Buf: b})
	require.Error(t, err)
	var ve *gpu.ValidationError
	require.True(t, errors.As(err, &ve), "want a ValidationError, got %T %v", err, err)
	require.True(t, strings.Contains(err.Error(), "selftest.wgsl:no_such_entry"), err.Error())
	// The device stays usable.
	run(t, d, 100)
}

func TestBindingChecks(t *testing.T) {
	d := gputest.Default(t)
	a, _ := d.NewBuffer("a", 1024)
	b, _ := d.NewBuffer("b", 1024)
	defer d.Release(a)
	defer d.Release(b)
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a}), "takes 2 storage bindings")
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a, Offset: 4}, gpu.Binding{Buf: b}), "not a multiple")
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a, Offset: 0, Size: 4096}, gpu.Binding{Buf: b}), "outside the buffer")
	require.ErrorContains(t, d.Dispatch(selftest, 1, nil, gpu.Binding{Buf: a}, gpu.Binding{Buf: b}), "params")
}

func TestPoolReuseAfterSubmit(t *testing.T) {
	d := gputest.Default(t)
	require.NoError(t, d.Trim()) // idle buffers of other tests would be evicted for x
	before := d.Stats()
	x, err := d.NewBuffer("x", 10000)
	require.NoError(t, err)
	d.Release(x)
	y, err := d.NewBuffer("y", 9990)
	require.NoError(t, err)
	defer d.Release(y)
	after := d.Stats()
	// Same bucket: the released buffer is reused, nothing new is allocated.
	require.Equal(t, before.Allocated+bucketOf(10000), after.Allocated+0*uint64(0)+0)
	require.Equal(t, "y", y.Label())
}

func bucketOf(n uint64) uint64 {
	shift := uint(0)
	for (n-1)>>shift >= 16 {
		shift++
	}
	return (((n - 1) >> shift) + 1) << shift
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

// TestPoolReuseWithinBatch: a buffer released while its reader is still
// only recorded is handed out again at once, and a dispatch writing it
// does not overtake the earlier one reading it.
func TestPoolReuseWithinBatch(t *testing.T) {
	d := gputest.Default(t)
	ctx := context.Background()
	const n = 1000
	a := make([]float32, n)
	for i := range a {
		a[i] = float32(i%13) - 6
	}
	x, err := d.NewBuffer("x", 4*n)
	require.NoError(t, err)
	require.NoError(t, d.Write(x, 0, f32bytes(a)))
	y, err := d.NewBuffer("y", 4*n)
	require.NoError(t, err)
	defer d.Release(y)
	require.NoError(t, d.Dispatch(selftest, (n+63)/64, selfParams{N: n, Scale: 0.5}, gpu.Binding{Buf: x}, gpu.Binding{Buf: y}))
	d.Release(x) // the dispatch reading x is recorded, not submitted
	before := d.Stats()
	z, err := d.NewBuffer("z", 4*n)
	require.NoError(t, err)
	defer d.Release(z)
	require.Equal(t, before.Allocated, d.Stats().Allocated, "x's buffer should have been reused")
	require.NoError(t, d.Dispatch(selftest, (n+63)/64, selfParams{N: n, Scale: 2}, gpu.Binding{Buf: y}, gpu.Binding{Buf: z}))
	ry, err := d.Read(ctx, y, 0, 4*n)
	require.NoError(t, err)
	rz, err := d.Read(ctx, z, 0, 4*n)
	require.NoError(t, err)
	gy, gz := bytesf32(ry), bytesf32(rz)
	for i := range a {
		wy := a[i]*0.5 + float32(i)
		require.Equal(t, wy, gy[i], "y[%d]", i)
		require.Equal(t, wy*2+float32(i), gz[i], "z[%d]", i)
	}
}

// TestPoolEviction: idle buffers of other sizes are destroyed to make
// room for a new one, so the pool never lifts the allocation above the
// in-use peak.
func TestPoolEviction(t *testing.T) {
	d := gputest.Default(t)
	require.NoError(t, d.Trim())
	d.ResetPeaks()
	s0 := d.Stats()
	const mb = 1 << 20
	a, err := d.NewBuffer("a", 1*mb)
	require.NoError(t, err)
	b, err := d.NewBuffer("b", 3*mb)
	require.NoError(t, err)
	d.Release(a)
	c, err := d.NewBuffer("c", 2*mb) // a (1 MiB) is evicted for it
	require.NoError(t, err)
	require.Equal(t, s0.Allocated+5*mb, d.Stats().Allocated)
	d.Release(b)
	d.Release(c)
	e, err := d.NewBuffer("e", 4*mb) // b, then c (released first) make room
	require.NoError(t, err)
	st := d.Stats()
	require.Equal(t, s0.Allocated+4*mb, st.Allocated)
	require.LessOrEqual(t, st.PeakAllocated-s0.Allocated, st.PeakInUse-s0.InUse, "the pool lifted the allocation above the in-use peak")
	d.Release(e)
	f, err := d.NewBuffer("f", 4*mb-100) // same bucket: from the pool
	require.NoError(t, err)
	d.Release(f)
	require.Equal(t, st.Allocated, d.Stats().Allocated)
}

// TestWriteWindow: long runs of uploads (a model load) submit and wait
// every writeWindow bytes, so the driver's staging copies do not pile up.
func TestWriteWindow(t *testing.T) {
	d := gputest.Default(t)
	b, err := d.NewBuffer("w", 8<<20)
	require.NoError(t, err)
	defer d.Release(b)
	data := make([]byte, 8<<20)
	s0 := d.Stats()
	for range 24 { // 192 MiB
		require.NoError(t, d.Write(b, 0, data))
	}
	require.GreaterOrEqual(t, d.Stats().Submits-s0.Submits, int64(2), "no submits while uploading 192 MiB")
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
