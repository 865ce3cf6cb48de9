package kernels

import (
	"context"
	"math"
	"testing"
)

// TestPeak: the ceiling kernel computes what its chains say (so the
// compiler cannot have dropped the work it is timed on), odd thread count,
// sentinel-guarded output.
func TestPeak(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	const threads = 131
	got := p.g.Peak(threads)
	v, err := p.g.Read(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	const m = float32(0.999)
	defer p.g.Free(got)
	for i := range threads {
		c := float32(i%97)*1e-3 + 1
		var sum [4]float32
		for a := range 8 {
			for j := range 4 {
				x := float32(a + 1 + j)
				for range 64 * 4 {
					x = x*m + c
				}
				sum[j] += x
			}
		}
		for j := range 4 {
			if g := v[4*i+j]; math.Abs(float64(g-sum[j])) > 1e-4*math.Abs(float64(sum[j])) {
				t.Fatalf("thread %d lane %d: %v, want %v", i, j, g, sum[j])
			}
		}
	}
	if err := p.g.checkGuards(context.Background(), got); err != nil {
		t.Fatal(err)
	}
}

// TestLoads: the load kernel sums what it is said to read (odd thread
// count, more threads than rows, a source view at an offset).
func TestLoads(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	const rows, threads = 3, 67
	src := p.rand("src", 8, 1, rows, LoadBytes/4)
	got := p.g.Loads(src.g, threads)
	v, err := p.g.Read(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	defer p.g.Free(got)
	sv, err := p.c.Read(context.Background(), src.c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range threads {
		var want float64
		for _, x := range sv[(i%rows)*LoadBytes/4 : (i%rows+1)*LoadBytes/4] {
			want += float64(x)
		}
		if math.Abs(float64(v[i])-want) > 1e-3 {
			t.Fatalf("thread %d: %v, want %v", i, v[i], want)
		}
	}
	if err := p.g.checkGuards(context.Background(), got); err != nil {
		t.Fatal(err)
	}
}
