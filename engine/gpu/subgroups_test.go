package gpu

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFixedSize: only an adapter that reports one subgroup size may run the
// subgroup kernels.
func TestFixedSize(t *testing.T) {
	require.Empty(t, fixedSize(4, 4))
	require.Empty(t, fixedSize(32, 32))
	require.Contains(t, fixedSize(8, 32), "varies from 8 to 32")
	require.Contains(t, fixedSize(32, 64), "varies")
	require.Contains(t, fixedSize(0, 0), "does not report")
}

// TestCheckSubgroups: the probe's verdict on made-up outputs, one per way a
// device can break the subgroup kernels' assumptions.
func TestCheckSubgroups(t *testing.T) {
	const wg = 64
	probe := func(size func(i int) uint32, lane func(i int) uint32, bcast func(i int) uint32) func(int) uint32 {
		return func(j int) uint32 {
			switch {
			case j < wg:
				return size(j)
			case j < 2*wg:
				return lane(j - wg)
			default:
				return bcast(j - 2*wg)
			}
		}
	}
	good := func(s uint32) func(int) uint32 {
		return probe(func(int) uint32 { return s }, func(i int) uint32 { return uint32(i) % s },
			func(i int) uint32 { return uint32(i) - uint32(i)%s })
	}
	for _, s := range []uint32{4, 8, 16, 32, 64} {
		got, note := checkSubgroups(wg, good(s))
		require.Equal(t, s, got, note)
		require.Empty(t, note)
	}
	for _, c := range []struct {
		name string
		u    func(int) uint32
		want string
	}{
		{"size 1", good(1), "size 1"},
		{"size 128", probe(func(int) uint32 { return 128 }, func(i int) uint32 { return uint32(i) }, func(int) uint32 { return 0 }), "size 128"},
		{"size 12", good(12), "size 12"},
		{"mixed sizes", probe(func(i int) uint32 { return map[bool]uint32{true: 16, false: 8}[i < 32] },
			func(i int) uint32 { return uint32(i) % 16 }, func(i int) uint32 { return uint32(i) - uint32(i)%16 }), "sizes differ"},
		{"lanes not consecutive", probe(func(int) uint32 { return 8 }, func(i int) uint32 { return uint32(i) / 8 },
			func(i int) uint32 { return uint32(i) - uint32(i)%8 }), "not consecutive"},
		{"broadcast wrong", probe(func(int) uint32 { return 8 }, func(i int) uint32 { return uint32(i) % 8 },
			func(i int) uint32 { return uint32(i) }), "subgroupBroadcast"},
	} {
		got, note := checkSubgroups(wg, c.u)
		require.Zero(t, got, c.name)
		require.Contains(t, note, c.want, c.name)
	}
}
