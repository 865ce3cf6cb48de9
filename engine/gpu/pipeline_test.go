// pipeline_test.go: pipeline errors name their kernel, and the layout
// reader's view of a kernel's declarations.
package gpu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

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

// TestLayoutOf: storage bindings in order with their access, the Params
// uniform last, and the declarations the layout reader refuses.
func TestLayoutOf(t *testing.T) {
	k := gpu.Kernel{Shader: "t.wgsl", Entry: "main"}
	src := `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;`
	st, u, err := gpu.LayoutOf(k, src)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, st)
	require.Equal(t, 2, u)

	st, u, err = gpu.LayoutOf(k, `@group(0) @binding(0) var<storage, read_write> o: array<f32>;`)
	require.NoError(t, err)
	require.Equal(t, []bool{false}, st)
	require.Equal(t, -1, u)

	_, _, err = gpu.LayoutOf(k, `@group(0) @binding(1) var<storage, read> a: array<f32>;`)
	require.ErrorContains(t, err, "numbered 0, 1")
	_, _, err = gpu.LayoutOf(k, `@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;`)
	require.ErrorContains(t, err, "must be the last")
}
