package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/selftest"
	"harmony/loader/golden"
)

// TestSelftestQuick: `harmony selftest --quick` passes on the adapter at
// hand, runs the three tiny parts and writes a report that says so.
func TestSelftestQuick(t *testing.T) {
	needGPU(t)
	out := filepath.Join(t.TempDir(), "selftest.json")
	code := run(context.Background(), []string{"selftest", "--quick", "-q", "--testdata", golden.Dir(t), "--json", out})
	require.Equal(t, 0, code)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var rep selftest.Report
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Zero(t, rep.Failed)
	require.True(t, rep.Quick)
	var names []string
	for _, p := range rep.Parts {
		names = append(names, p.Name)
		require.NotZero(t, p.Checks, p.Name)
	}
	require.Equal(t, []string{"selfcheck", "parity", "goldens"}, names)
	variants := map[string]bool{}
	for _, c := range rep.Checks {
		variants[c.Part+"/"+c.Variant] = true
	}
	for _, v := range []string{"parity/f32", "parity/fp16-weight", "goldens/f32", "goldens/f16"} {
		require.True(t, variants[v], "no %s checks (%v)", v, variants)
	}
}

// TestSelftestFails: a failing check makes the command fail (and the
// report says which); an unknown part is a usage error; a folder without
// test data is refused.
func TestSelftestFails(t *testing.T) {
	needGPU(t)
	selftest.Register(selftest.Part{Name: "always-fails", Summary: "a check that fails", FullSize: true,
		Run: func(ctx context.Context, env *selftest.Env, add func(selftest.Check)) {
			add(selftest.Check{Name: "ok"})
			add(selftest.Check{Name: "broken", Err: errors.New("wrong on purpose")})
		}})
	out := filepath.Join(t.TempDir(), "selftest.json")
	require.Equal(t, 1, run(context.Background(), []string{"selftest", "-q", "--parts", "always-fails", "--testdata", golden.Dir(t), "--json", out}))
	var rep selftest.Report
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Equal(t, 1, rep.Failed)
	require.Equal(t, "wrong on purpose", rep.Checks[1].Error)
	// Full-size parts are refused with --quick; unknown parts are usage errors.
	require.Equal(t, 1, run(context.Background(), []string{"selftest", "-q", "--quick", "--parts", "always-fails", "--testdata", golden.Dir(t)}))
	require.Equal(t, 2, run(context.Background(), []string{"selftest", "-q", "--parts", "nosuch", "--testdata", golden.Dir(t)}))
	require.Equal(t, 1, run(context.Background(), []string{"selftest", "-q", "--testdata", t.TempDir()}))
}
