package kernels

import (
	"context"
	"testing"

	"harmony/engine/gpu/gputest"
)

// TestSelfCheck: every check `harmony info` and the page run passes on the
// device's own kernels (subgroup forms included where it has them).
func TestSelfCheck(t *testing.T) {
	t.Parallel()
	g := New(gputest.Default(t))
	rs := SelfCheck(context.Background(), g)
	if len(rs) != len(selfChecks) {
		t.Fatalf("%d results for %d checks", len(rs), len(selfChecks))
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
	t.Logf("%d checks, subgroups %d", len(rs), g.Subgroup)
}
