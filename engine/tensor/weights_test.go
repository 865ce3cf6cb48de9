// weights_test.go checks ShortList, the one format of tensor-name lists
// in error messages.
package tensor

import "testing"

func TestShortList(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, c := range []struct {
		names []string
		total int
		want  string
	}{
		{names[:2], 2, `"a", "b"`},
		{names[:5], 5, `"a", "b", "c", "d", "e"`},
		{names, 7, `"a", "b", "c", "d", "e" … and 2 more`},
		{names[:3], 1000000, `"a", "b", "c" … and 999997 more`},
	} {
		if got := ShortList(c.names, c.total); got != c.want {
			t.Errorf("ShortList(%v, %d) = %s, want %s", c.names, c.total, got, c.want)
		}
	}
}
