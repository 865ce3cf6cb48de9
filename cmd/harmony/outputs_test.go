// outputs_test.go: generate's output set is one run's: runs committing
// into one folder at once never mix their pictures, a set member a run
// did not produce is removed, and the folder checks name the option.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/harmony"
	"harmony/engine/pipeline"
)

// flatResult is a Result whose pictures are all of one grey level.
func flatResult(level uint8, swap bool) *pipeline.Result {
	im := func() *pipeline.Image {
		return &pipeline.Image{W: 8, H: 8, Pix: bytes.Repeat([]byte{level}, 3*64)}
	}
	res := &pipeline.Result{Main: pipeline.Output{Image: im()}, Baseline: &pipeline.Output{Image: im()}}
	if swap {
		res.Visual = &pipeline.Output{Image: im()}
		res.MaskHeat = im()
		res.Mask = &harmony.Map{W: 1, H: 1, V: []float32{1}}
	}
	return res
}

func TestOutputSetsDoNotMix(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for run := 0; run < 4; run++ {
		wg.Add(1)
		go func(run int) {
			defer wg.Done()
			g := &generateFlags{outDir: dir, opts: pipeline.DefaultOptions()}
			for i := 0; i < 3; i++ {
				if err := writeOutputs(g, flatResult(uint8(10*run+i), true)); err != nil {
					errs <- err
				}
			}
		}(run)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want []byte
	for _, name := range harmonySet {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		if want == nil {
			want = got
		}
		require.Equal(t, want, got, "%s is another run's", name)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, len(harmonySet), "temporaries or the lock left behind")

	// A run without the swap writes no visual.png or mask.png: the older
	// run's must not stay beside its harmony.png.
	g := &generateFlags{outDir: dir, opts: pipeline.DefaultOptions()}
	require.NoError(t, writeOutputs(g, flatResult(200, false)))
	for _, name := range []string{"visual.png", "mask.png"} {
		_, err := os.Stat(filepath.Join(dir, name))
		require.True(t, os.IsNotExist(err), "%s of an older run kept", name)
	}
}

func TestCheckOutputsNamesTheOption(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, c := range []struct {
		g    generateFlags
		want string
	}{
		{generateFlags{outDir: file}, "--out-dir"},
		{generateFlags{outDir: filepath.Join(file, "x", "y")}, "--out-dir"},
		{generateFlags{out: filepath.Join(file, "x.png")}, "--out"},
		{generateFlags{out: dir}, "--out"},
		{generateFlags{dump: filepath.Join(file, "d.safetensors")}, "--dump"},
	} {
		err := checkOutputs(&c.g)
		require.Error(t, err, fmt.Sprint(c.g))
		require.Contains(t, err.Error(), c.want)
	}
	require.NoError(t, checkOutputs(&generateFlags{outDir: filepath.Join(dir, "new", "folder"), dump: filepath.Join(dir, "d.safetensors")}))
	_, err := os.Stat(filepath.Join(dir, "new"))
	require.True(t, os.IsNotExist(err), "the check created the folder")
}
