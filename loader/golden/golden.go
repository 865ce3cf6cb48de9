// Package golden finds and reads the test data (testdata/ at the module
// root: the tiny random models, the inputs and the reference tensors
// computed by the PyTorch reference implementation), derives the files the
// folder does not store (fp16 variants, the torch .bin folder), and compares
// engine outputs with the references under the stated tolerances.
//
// The folder (loader/refdata) is $HARMONY_GOLDEN when set, else testdata/ in the module root
// (the first folder at or above the working directory that holds go.mod).
// Without it a test skips, unless HARMONY_REQUIRE_GOLDEN=1 or
// HARMONY_REQUIRE_GPU=1 (CI), where it fails.
package golden

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"harmony/loader"
	"harmony/loader/refdata"
)

// Find returns the test-data folder, or "" when there is none.
func Find() string { return refdata.Find() }

// Required reports whether missing goldens must fail tests.
func Required() bool {
	return os.Getenv("HARMONY_REQUIRE_GOLDEN") == "1" || os.Getenv("HARMONY_REQUIRE_GPU") == "1"
}

// Dir returns the golden folder or stops the test (skip, or fail in CI).
func Dir(t testing.TB) string {
	t.Helper()
	d := Find()
	if d == "" {
		if Required() {
			t.Fatal("golden: test data not found: no testdata/README.md at the module root, and HARMONY_GOLDEN is not set")
		}
		t.Skip("golden: test data not found (testdata/ at the module root, or $HARMONY_GOLDEN)")
	}
	return d
}

// Path joins parts below the golden folder. An fp16 variant file
// (*.fp16.safetensors) that the folder does not store is derived from its
// fp32 sibling into the test's temporary folder (see Variant), and that
// path is returned.
func Path(t testing.TB, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, parts...)...)
	if isVariant(p) {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return Variant(t, p)
		}
	}
	return p
}

// File is an opened golden safetensors file, read fully into memory.
type File struct {
	Path string
	*loader.SafetensorsData
}

// Load reads a safetensors file.
func Load(path string) (*File, error) {
	d, err := loader.ReadSafetensorsFile(path)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, SafetensorsData: d}, nil
}

// Open reads a safetensors file below the golden folder.
func Open(t testing.TB, parts ...string) *File {
	t.Helper()
	f, err := Load(Path(t, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Names lists the tensors.
func (f *File) Names() []string {
	var out []string
	for _, ti := range f.Tensors {
		out = append(out, ti.Name)
	}
	return out
}

// Has reports whether a tensor exists.
func (f *File) Has(name string) bool { return f.Find(name) != nil }

// Info returns a tensor's record.
func (f *File) Info(name string) (*loader.TensorInfo, error) {
	_, ti, err := f.Raw(name)
	return ti, err
}

// F32 returns a float tensor as float32 and its shape.
func (f *File) F32(name string) ([]float32, []int, error) {
	v, err := f.Float32(name)
	if err != nil {
		return nil, nil, err
	}
	ti, _ := f.Info(name)
	return v, ti.Shape, nil
}

// F64 returns a float tensor as float64 (exactly, for F64 on disk).
func (f *File) F64(name string) ([]float64, []int, error) {
	b, ti, err := f.Raw(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float64, ti.Numel())
	if ti.DType == loader.F64 {
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, ti.Shape, nil
	}
	v, err := f.Float32(name)
	if err != nil {
		return nil, nil, err
	}
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, ti.Shape, nil
}

// Ints returns an integer or bool tensor as int64 and its shape.
func (f *File) Ints(name string) ([]int64, []int, error) {
	v, err := f.Int64s(name)
	if err != nil {
		return nil, nil, err
	}
	ti, _ := f.Info(name)
	return v, ti.Shape, nil
}

// MustF32 is F32 that fails the test on error.
func (f *File) MustF32(t testing.TB, name string) ([]float32, []int) {
	t.Helper()
	v, s, err := f.F32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// MustInts is Ints that fails the test on error.
func (f *File) MustInts(t testing.TB, name string) ([]int64, []int) {
	t.Helper()
	v, s, err := f.Ints(name)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// Diff is the outcome of a comparison.
type Diff = refdata.Diff

// Compare measures got against want. A NaN or length mismatch gives +Inf.
func Compare(got, want []float32) Diff { return refdata.Compare(got, want) }

// Close fails the test unless max|got − want| ≤ rel·max|want| + abs.
func Close(t testing.TB, what string, got, want []float32, rel, abs float64) Diff {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	d := Compare(got, want)
	if !(d.MaxAbs <= rel*d.MaxRef+abs) {
		t.Errorf("%s: %v exceeds %.3g·max|ref| + %.3g (got %v, want %v at %d)", what, d, rel, abs, got[d.At], want[d.At], d.At)
	} else {
		t.Logf("%s: %v", what, d)
	}
	return d
}
