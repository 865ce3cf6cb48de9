package harmony

// Fuzz targets for the two knob parsers (--swap-start, --ortho-mode): a
// value that parses must mean something sane, and a mode must survive a
// round trip through its String form.

import (
	"math"
	"testing"
)

func FuzzParseSwapStart(f *testing.F) {
	for _, s := range []string{"0.1", "5", " 1e-1 ", "1.0", "-1", "0", "1e400", "NaN", "+3", "0x10", "1_000", "1e308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ss, err := ParseSwapStart(s)
		if err != nil {
			return
		}
		if ss.IsCall && ss.Call < 0 || !ss.IsCall && !(ss.Fraction >= 0 && !math.IsInf(ss.Fraction, 0)) {
			t.Fatalf("%q: %+v", s, ss)
		}
		for _, n := range []int{1, 25, 50, 1000} {
			if i := ss.Index(n); i < 0 {
				t.Fatalf("%q: index %d for %d steps", s, i, n)
			}
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"full", "mean", "", "0.5", "1", "0", "-0", "1.0000001", "NaN", " mean ", "Full"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		if m.Kind == ModeLambda && !(m.Lambda >= 0 && m.Lambda <= 1) {
			t.Fatalf("%q: λ %v", s, m.Lambda)
		}
		back, err := ParseMode(m.String())
		if err != nil || back != m {
			t.Fatalf("%q: %+v prints as %q, which parses as %+v (%v)", s, m, m.String(), back, err)
		}
		for _, r := range []int{0, 1, 7} {
			if l := m.lambda(r); !(l >= 0 && l <= 1) {
				t.Fatalf("%q: λ(%d) = %v", s, r, l)
			}
		}
	})
}
