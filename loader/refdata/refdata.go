// Package refdata finds the test-data folder (testdata/ at the module root:
// the tiny random models, the inputs and the reference tensors the PyTorch
// reference computed) and measures engine outputs against its tensors,
// without the testing package, so that a shipped binary (`harmony
// selftest`) can run the same golden comparisons as the tests.
// loader/golden wraps it for tests.
//
// The folder is $HARMONY_GOLDEN when set, else testdata/ in the module root
// (the first folder at or above the working directory that holds go.mod).
package refdata

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
)

var (
	dirOnce sync.Once
	dir     string
)

// Find returns the test-data folder, or "" when there is none.
func Find() string {
	dirOnce.Do(func() {
		if d := os.Getenv("HARMONY_GOLDEN"); d != "" {
			dir = d
			return
		}
		dir = findIn(moduleRoot())
	})
	return dir
}

// moduleRoot returns the first folder at or above the working directory
// that holds go.mod, or "" when there is none.
func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !st.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// findIn returns root/testdata when it holds the test data (its README.md),
// else "".
func findIn(root string) string {
	if root == "" {
		return ""
	}
	d := filepath.Join(root, "testdata")
	if !IsDir(d) {
		return ""
	}
	return d
}

// IsDir reports whether d looks like a test-data folder (it holds
// README.md).
func IsDir(d string) bool {
	st, err := os.Stat(filepath.Join(d, "README.md"))
	return err == nil && !st.IsDir()
}

// Diff is the outcome of a comparison.
type Diff struct {
	MaxAbs float64 // max |got − want|
	MaxRef float64 // max |want|
	At     int     // index of MaxAbs
}

// Rel is MaxAbs / MaxRef.
func (d Diff) Rel() float64 {
	if d.MaxRef == 0 {
		return d.MaxAbs
	}
	return d.MaxAbs / d.MaxRef
}

func (d Diff) String() string {
	return fmt.Sprintf("max|Δ| %.3g at %d (max|ref| %.3g, rel %.3g)", d.MaxAbs, d.At, d.MaxRef, d.Rel())
}

// Within reports whether max|got − want| ≤ rel·max|want| + abs.
func (d Diff) Within(rel, abs float64) bool { return d.MaxAbs <= rel*d.MaxRef+abs }

// Compare measures got against want. A NaN or length mismatch gives +Inf.
func Compare(got, want []float32) Diff {
	var d Diff
	if len(got) != len(want) {
		d.MaxAbs = math.Inf(1)
		return d
	}
	for i := range want {
		w := math.Abs(float64(want[i]))
		d.MaxRef = max(d.MaxRef, w)
		e := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(e) || math.IsInf(float64(got[i]), 0) {
			e = math.Inf(1)
		}
		if e > d.MaxAbs {
			d.MaxAbs, d.At = e, i
		}
	}
	return d
}
