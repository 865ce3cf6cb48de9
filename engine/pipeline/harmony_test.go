package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/loader/golden"
)

// testHarmonyRuns reproduces every run of harmony/runs on model m.
func testHarmonyRuns(t *testing.T, m *Model, only map[string]bool) {
	dir := golden.Dir(t)
	runs, err := GoldenRuns(dir)
	require.NoError(t, err)
	for _, run := range runs {
		name := run.Name
		if only != nil && !only[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			o, err := GoldenRunOptions(dir, run)
			require.NoError(t, err)
			res, err := Generate(context.Background(), m, o)
			require.NoError(t, err)
			reportGolden(t, CheckGoldenRun(dir, run, res))
			t.Logf("%s: %d calls of batch %d, denoise %v", name, res.Timings.Calls, res.Timings.Batch, res.Timings.Denoise)
		})
	}
}
