package gpu_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

// TestProfile checks the per-kernel profile: every dispatch of a profiled
// device is counted with its workgroups and a positive time, results stay
// right (each dispatch is submitted and waited for on its own), ResetProfile
// clears it, and a device opened without the option keeps no profile.
func TestProfile(t *testing.T) {
	d := gputest.Open(t, gpu.Options{Profile: true})
	d.ResetProfile()
	run(t, d, 1000) // 16 workgroups of 64
	run(t, d, 100)  // 2
	rows := d.Profile()
	require.Len(t, rows, 1)
	require.Equal(t, selftest.String(), rows[0].Kernel)
	require.Equal(t, 2, rows[0].Calls)
	require.Equal(t, int64(18), rows[0].Workgroups)
	require.Positive(t, rows[0].Total)
	d.ResetProfile()
	require.Empty(t, d.Profile())

	plain := gputest.Default(t)
	run(t, plain, 100)
	require.Empty(t, plain.Profile())
}
