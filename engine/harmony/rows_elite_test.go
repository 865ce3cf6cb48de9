package harmony

import (
	"slices"
	"testing"
)

// TestClassifyInjectedRows covers elite.md B.4.2's rule: T excludes BOS,
// EOS and padding, the injected row, and other occurrences of the
// placeholder; class rows only when a class word is given.
func TestClassifyInjectedRows(t *testing.T) {
	const a, s, wearing, red, hat, dog, and = 320, 338, 3309, 736, 3801, 1929, 537
	pad := func(ids ...int32) []int32 {
		out := append([]int32{CLIPBOS}, ids...)
		out = append(out, CLIPEOS)
		for len(out) < 12 {
			out = append(out, CLIPEOS)
		}
		return out
	}
	for _, c := range []struct {
		name                  string
		ids                   []int32
		index                 int
		class                 []int32
		text, cls, pseudo, sp []int
	}{
		{"a S wearing a red hat", pad(a, s, wearing, a, red, hat), 2, nil,
			[]int{1, 3, 4, 5, 6}, nil, nil, []int{0, 7, 8, 9, 10, 11}},
		{"class word given", pad(a, s, dog, wearing, a, red, hat), 2, []int32{dog},
			[]int{1, 4, 5, 6, 7}, []int{3}, nil, []int{0, 8, 9, 10, 11}},
		{"class word absent from the prompt", pad(a, s, wearing, a, red, hat), 2, []int32{dog},
			[]int{1, 3, 4, 5, 6}, nil, nil, []int{0, 7, 8, 9, 10, 11}},
		{"S and S: the last one is injected", pad(a, s, and, s), 4, nil,
			[]int{1, 3}, nil, []int{2}, []int{0, 5, 6, 7, 8, 9, 10, 11}},
	} {
		r, err := ClassifyInjectedRows(c.ids, c.index, []int32{s}, c.class, CLIPBOS, CLIPEOS)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Visual, []int{c.index}) || !slices.Equal(r.Text, c.text) || !slices.Equal(r.Class, c.cls) ||
			!slices.Equal(r.Pseudo, c.pseudo) || !slices.Equal(r.Special, c.sp) {
			t.Errorf("%s: got %+v", c.name, r)
		}
	}
	ids := pad(a, s)
	for _, bad := range []int{0, -1, len(ids)} {
		if _, err := ClassifyInjectedRows(ids, bad, []int32{s}, nil, CLIPBOS, CLIPEOS); err == nil {
			t.Errorf("index %d: no error", bad)
		}
	}
}
