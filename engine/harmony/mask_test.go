package harmony

import (
	"math"
	"slices"
	"testing"

	"harmony/loader/golden"
)

// maskRuns are the golden runs that compute masks.
var maskRuns = []string{"swap_kv", "ortho_swap_kv", "ortho_swap_map", "reps1_ortho_swap_kv"}

// TestMaskGoldenRuns recomputes each call's soft and binary masks from the
// reference's layer-averaged raw map, and the used-mask schedule. The binary
// masks must be identical. The soft maps agree to a few float32 ulp but not
// bit for bit: no float32 or float64 formula of (m − min)/(max − min) on the
// stored float32 raw map reproduces mask_norm exactly, so the reference
// normalized a raw map that was not exactly the stored float32 one (most
// likely kept at higher precision).
func TestMaskGoldenRuns(t *testing.T) {
	sum := loadSummary(t)
	N := sum.Args.NumInferenceSteps
	for _, run := range maskRuns {
		info, ok := sum.Runs[run]
		if !ok {
			t.Fatalf("summary.json has no run %q", run)
		}
		f := golden.Open(t, "harmony", "runs", run+".safetensors")
		start := SwapStart{Fraction: info.Options.SwapStart}.Index(N)
		if start != info.SwapStartIndex {
			t.Errorf("%s: swap start index %d, want %d", run, start, info.SwapStartIndex)
		}
		active, _ := f.MustInts(t, "swap_active")
		sched := NewMaskSchedule(start)
		procs := []string{"main", "vis"}
		masks := map[string][]Mask{}
		minMargin := math.Inf(1)
		maxSoft, exact, total := 0.0, 0, 0
		for _, proc := range procs {
			raw, shape := f.MustF32(t, "mask_raw_"+proc)
			wantNorm, _ := f.MustF32(t, "mask_norm_"+proc)
			wantMask, _ := f.MustInts(t, "mask_"+proc)
			calls, h, w := shape[0], shape[1], shape[2]
			if [2]int{h, w} != info.MaskGrid {
				t.Errorf("%s: mask grid %d×%d, summary %v", run, h, w, info.MaskGrid)
			}
			pixels := info.MaskPixelsMain
			if proc == "vis" {
				pixels = info.MaskPixelsVis
			}
			for i := range calls {
				lo, hi := i*h*w, (i+1)*h*w
				soft := Normalize(Map{H: h, W: w, V: raw[lo:hi]})
				for j, v := range soft.V {
					d := math.Abs(float64(v) - float64(wantNorm[lo+j]))
					if d == 0 {
						exact++
					}
					total++
					maxSoft = max(maxSoft, d)
					if d > 1e-6 {
						t.Errorf("%s %s call %d: normalized value %d = %v, mask_norm %v", run, proc, i, j, v, wantNorm[lo+j])
					}
					minMargin = min(minMargin, math.Abs(float64(v)-DefaultThreshold))
				}
				m := Threshold(soft, info.Options.MaskThreshold)
				for j, v := range m.V {
					if int64(v) != wantMask[lo+j] {
						t.Fatalf("%s %s call %d: mask differs at %d", run, proc, i, j)
					}
				}
				if m.Count() != pixels[i] {
					t.Errorf("%s %s call %d: %d mask pixels, summary %d", run, proc, i, m.Count(), pixels[i])
				}
				masks[proc] = append(masks[proc], m)
			}
		}
		// The schedule: call i uses the masks of call i − 1 when it swaps.
		usedMain, _ := f.MustInts(t, "mask_used_main")
		usedVis, _ := f.MustInts(t, "mask_used_vis")
		for i := range len(active) {
			on, mm, mv, err := sched.Begin(i)
			if err != nil {
				t.Fatal(err)
			}
			if on != (active[i] == 1) || on != (info.SwapActive[i] == 1) {
				t.Errorf("%s call %d: active %v, golden %d", run, i, on, active[i])
			}
			n := len(masks["main"][i].V)
			for j := range n {
				var gm, gv int64
				if on {
					gm, gv = int64(mm.V[j]), int64(mv.V[j])
				}
				if gm != usedMain[i*n+j] || gv != usedVis[i*n+j] {
					t.Fatalf("%s call %d: used mask differs at %d", run, i, j)
				}
			}
			sched.Record(masks["main"][i], masks["vis"][i])
		}
		t.Logf("%s: %d calls × 2 processes: binary masks identical, schedule identical (start %d); soft masks max |Δ| %.3g (%d/%d bit-identical); min |m − τ| %.3g", run, len(active), start, maxSoft, exact, total, minMargin)
	}
}

func TestNormalizeThreshold(t *testing.T) {
	in := []float32{2, 4, 3, 2.6}
	m := Normalize(Map{H: 1, W: 4, V: in})
	// float32 arithmetic: (2.6f − 2)/2 is 0.29999995, not 0.3.
	if want := []float32{0, 1, 0.5, (in[3] - in[0]) / (in[1] - in[0])}; !slices.Equal(m.V, want) || want[3] >= 0.3 {
		t.Errorf("Normalize = %v, want %v", m.V, want)
	}
	// Strict: a value equal to float32(τ) is outside.
	b := Threshold(Map{H: 1, W: 3, V: []float32{0.3, 0.30000004, 1}}, 0.3)
	if !slices.Equal(b.V, []uint8{0, 1, 1}) {
		t.Errorf("Threshold = %v", b.V)
	}
	// A constant map normalizes to zeros: an empty mask.
	c := Normalize(Map{H: 2, W: 2, V: []float32{0.7, 0.7, 0.7, 0.7}})
	if Threshold(c, 0.3).Count() != 0 || c.V[0] != 0 {
		t.Errorf("constant map: %v", c.V)
	}
}

func TestHalveToGrid(t *testing.T) {
	m := Map{H: 2, W: 4, V: []float32{1, 2, 3, 4, 5, 6, 7, 8}}
	h, err := Halve(m)
	if err != nil {
		t.Fatal(err)
	}
	if h.H != 1 || h.W != 2 || !slices.Equal(h.V, []float32{(1 + 2 + 5 + 6) / 4.0, (3 + 4 + 7 + 8) / 4.0}) {
		t.Errorf("Halve = %+v", h)
	}
	// Odd sizes: ⌈·/2⌉ output, adaptive-average bins (overlapping centre).
	o, _ := Halve(Map{H: 3, W: 1, V: []float32{1, 2, 4}})
	if o.H != 2 || !slices.Equal(o.V, []float32{1.5, 3}) {
		t.Errorf("odd Halve = %+v", o)
	}
	// Two levels = two 2×2 means.
	big := Map{H: 4, W: 4, V: make([]float32, 16)}
	for i := range big.V {
		big.V[i] = float32(i)
	}
	g, err := ToGrid(big, 1, 1)
	if err != nil || g.V[0] != 7.5 {
		t.Errorf("ToGrid 4×4 → 1×1 = %v, %v", g.V, err)
	}
	if same, _ := ToGrid(big, 4, 4); &same.V[0] != &big.V[0] {
		t.Error("ToGrid at the grid size copied")
	}
	if _, err := ToGrid(big, 3, 3); err == nil {
		t.Error("4×4 → 3×3: no error")
	}
	if _, err := ToGrid(Map{H: 2, W: 2, V: []float32{1}}, 1, 1); err == nil {
		t.Error("short map: no error")
	}
}

func TestSubjectMapAndAverageColumns(t *testing.T) {
	// 2 heads, 2 positions, 3 keys; subject columns 0 and 2.
	p := []float32{
		0.1, 0.5, 0.4 /* h0 pos0 */, 0.2, 0.2, 0.6, /* h0 pos1 */
		0.3, 0.3, 0.4 /* h1 pos0 */, 0.0, 0.5, 0.5, /* h1 pos1 */
	}
	got, err := SubjectMap(p, 2, 2, 3, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{float32((0.25 + 0.35) / 2), float32((0.4 + 0.25) / 2)}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-7 {
			t.Errorf("SubjectMap = %v, want %v", got, want)
		}
	}
	avg, err := AverageColumns(p[:6], 2, 3, []int{1})
	if err != nil || !slices.Equal(avg, []float32{0.5, 0.2}) {
		t.Errorf("AverageColumns = %v, %v", avg, err)
	}
	if _, err := SubjectMap(p, 2, 2, 3, []int{3}); err == nil {
		t.Error("column out of range: no error")
	}
	if _, err := AverageColumns(p, 2, 3, nil); err == nil {
		t.Error("no columns: no error")
	}
}

func TestSubjectMask(t *testing.T) {
	// Two layers at 4×4 and one at 2×2, grid 2×2.
	fine := Map{H: 4, W: 4, V: make([]float32, 16)}
	fine.V[0], fine.V[1], fine.V[4], fine.V[5] = 4, 4, 4, 4 // top-left cell mean 4
	coarse := Map{H: 2, W: 2, V: []float32{1, 0, 0, 0}}
	raw, soft, mask, err := SubjectMask([]Map{fine, fine, coarse}, 2, 2, DefaultThreshold)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw.V, []float32{3, 0, 0, 0}) || !slices.Equal(soft.V, []float32{1, 0, 0, 0}) || !slices.Equal(mask.V, []uint8{1, 0, 0, 0}) {
		t.Errorf("SubjectMask raw %v soft %v mask %v", raw.V, soft.V, mask.V)
	}
	if _, _, _, err := SubjectMask(nil, 2, 2, 0.3); err == nil {
		t.Error("no layers: no error")
	}
}

func TestResizeNearest(t *testing.T) {
	m := Mask{H: 2, W: 3, V: []uint8{1, 0, 1, 0, 1, 0}}
	up := ResizeNearest(m, 4, 6)
	for y := range 4 {
		for x := range 6 {
			if up.V[y*6+x] != m.V[(y/2)*3+x/2] {
				t.Fatalf("upsample (%d,%d)", y, x)
			}
		}
	}
	// Non-integer ratio: out[y][x] = in[⌊y·Hin/Hout⌋][⌊x·Win/Wout⌋].
	odd := ResizeNearest(Mask{H: 3, W: 3, V: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}}, 2, 5)
	if want := []uint8{1, 1, 2, 2, 3, 4, 4, 5, 5, 6}; !slices.Equal(odd.V, want) {
		t.Errorf("3×3 → 2×5 = %v, want %v", odd.V, want)
	}
	if same := ResizeNearest(m, 2, 3); !slices.Equal(same.V, m.V) {
		t.Error("identity resize changed the mask")
	}
}

func TestSwapStart(t *testing.T) {
	for _, c := range []struct {
		in    string
		n     int
		index int
		ok    bool
	}{
		{"0.1", 50, 5, true},
		{"0.1", 8, 0, true},
		{"0.29", 100, 29, true}, // 0.29·100 = 28.999999999999996 in float64
		{"0.7", 10, 7, true},
		{"1.0", 50, 50, true},
		{"5", 50, 5, true},
		{"0", 50, 0, true},
		{"1e-1", 50, 5, true},
		{"-1", 50, 0, false},
		{"-0.1", 50, 0, false},
		{"x", 50, 0, false},
		{"Inf", 50, 0, false},
	} {
		s, err := ParseSwapStart(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseSwapStart(%q): %v", c.in, err)
			continue
		}
		if c.ok && s.Index(c.n) != c.index {
			t.Errorf("swap-start %q with N = %d: index %d, want %d", c.in, c.n, s.Index(c.n), c.index)
		}
	}
	if DefaultSwapStart.Index(50) != 5 {
		t.Error("default swap start for N = 50 is not call 5")
	}
	for _, c := range []struct {
		call, start int
		want        bool
	}{{0, 0, false}, {1, 0, true}, {4, 5, false}, {5, 5, true}, {51, 51, true}, {50, 51, false}} {
		if SwapActive(c.call, c.start) != c.want {
			t.Errorf("SwapActive(%d, %d) != %v", c.call, c.start, c.want)
		}
	}
}

func TestMaskScheduleErrors(t *testing.T) {
	s := NewMaskSchedule(0)
	if _, _, _, err := s.Begin(1); err == nil {
		t.Error("out-of-order call: no error")
	}
	if on, _, _, err := s.Begin(0); on || err != nil {
		t.Errorf("call 0: active %v, %v", on, err)
	}
	if _, _, _, err := s.Begin(1); err == nil {
		t.Error("swap without recorded masks: no error")
	}
}
