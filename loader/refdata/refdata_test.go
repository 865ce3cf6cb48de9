package refdata

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestCompare(t *testing.T) {
	d := Compare([]float32{1, 2.5, -3}, []float32{1, 2, -4})
	if d.MaxAbs != 1 || d.MaxRef != 4 || d.At != 2 || d.Rel() != 0.25 {
		t.Fatalf("Compare: %+v", d)
	}
	if !d.Within(0.25, 0) || d.Within(0.2, 0.1) {
		t.Errorf("Within(%v): wrong verdicts", d)
	}
	for _, got := range [][]float32{{1, float32(math.NaN())}, {1, float32(math.Inf(1))}, {1}} {
		if d := Compare(got, []float32{1, 2}); !math.IsInf(d.MaxAbs, 1) || d.Within(1e9, 1e9) {
			t.Errorf("Compare(%v): %v, want +Inf and never within", got, d)
		}
	}
}

func TestIsDir(t *testing.T) {
	d := t.TempDir()
	if IsDir(d) {
		t.Errorf("%s without README.md taken for test data", d)
	}
	if err := os.WriteFile(filepath.Join(d, "README.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsDir(d) {
		t.Errorf("%s with README.md not taken for test data", d)
	}
	if Find() == "" || !IsDir(Find()) {
		t.Errorf("Find() = %q: the module's testdata/ not found", Find())
	}
}
