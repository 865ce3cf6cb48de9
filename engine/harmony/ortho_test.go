package harmony

import (
	"math"
	"slices"
	"strings"
	"testing"

	"harmony/loader/golden"
)

func TestClassifyRowsGolden(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	sum := loadSummary(t)
	for _, c := range []struct{ prefix string }{{""}, {"reps1."}} {
		r, err := ClassifyRows(ints32(t, f, c.prefix+"ids61"), sum.ClassIDs, BLIPLayout)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct {
			name string
			got  []int
		}{{"visual", r.Visual}, {"special", r.Special}, {"class", r.Class}, {"text", r.Text}} {
			if want := ints(t, f, c.prefix+"rows."+k.name); !slices.Equal(k.got, want) {
				t.Errorf("%srows.%s = %v, want %v", c.prefix, k.name, k.got, want)
			}
		}
	}
	// The visual-only process's "a dog".
	run := sum.Runs["swap_kv"]
	r, err := ClassifyRows(ints32(t, f, "ids61_vis"), sum.ClassIDs, BLIPLayout)
	if err != nil {
		t.Fatal(err)
	}
	want := run.RowsVis
	if !slices.Equal(r.Visual, want.Visual) || !slices.Equal(r.Special, want.Special) || !slices.Equal(r.Class, want.Klass) || !slices.Equal(r.Text, want.Text) {
		t.Errorf("visual-only rows %+v, want %+v", r, want)
	}
	if !slices.Equal(ints32(t, f, "ids61_vis"), run.IDs61Vis) {
		t.Error("ids61_vis differs between ortho.safetensors and summary.json")
	}
}

func TestClassifyRows(t *testing.T) {
	const B, E = CLIPBOS, CLIPEOS
	l := Layout{CtxBegin: 2, NumCtx: 3, BOS: B, EOS: E}
	dog := []int32{1929}
	golden := []int32{700, 701} // a two-token class ("golden retriever")
	cases := []struct {
		name                 string
		ids, class           []int32
		special, klass, text []int // rows (token j ↦ j for j < 2, else j + 3)
	}{
		{"single", []int32{B, 320, 1929, 9, E, E}, dog, []int{0, 7, 8}, []int{5}, []int{1, 6}},
		// "dogs" is one different token: never a class row.
		{"dogs", []int32{B, 320, 1929, 3255, 1929, E}, dog, []int{0, 8}, []int{5, 7}, []int{1, 6}},
		{"two-token", []int32{B, 700, 701, 9, 700, 9, 701, E}, golden, []int{0, 10}, []int{1, 5}, []int{6, 7, 8, 9}},
		// Truncated right before the final EOS: the prefix counts.
		{"truncated", []int32{B, 700, 701, 9, 700, E}, golden, []int{0, 8}, []int{1, 5, 7}, []int{6}},
		// The same prefix followed by padding was not truncated.
		{"padded", []int32{B, 700, 701, 9, 700, E, E}, golden, []int{0, 8, 9}, []int{1, 5}, []int{6, 7}},
		// A prefix anywhere else is text.
		{"prefix-mid", []int32{B, 9, 700, 9, 701, E}, golden, []int{0, 8}, nil, []int{1, 5, 6, 7}},
		{"no-class", []int32{B, 9, 9, E}, dog, []int{0, 6}, nil, []int{1, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ClassifyRows(c.ids, c.class, l)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Visual, []int{2, 3, 4}) || !slices.Equal(r.Special, c.special) || !slices.Equal(r.Class, c.klass) || !slices.Equal(r.Text, c.text) {
				t.Errorf("rows %+v, want special %v class %v text %v", r, c.special, c.klass, c.text)
			}
			if n := len(r.Visual) + len(r.Special) + len(r.Class) + len(r.Text); n != l.NumRows(len(c.ids)) {
				t.Errorf("%d rows classified, want %d", n, l.NumRows(len(c.ids)))
			}
		})
	}
	if _, err := ClassifyRows([]int32{B}, dog, l); err == nil {
		t.Error("ctx_begin_pos past the ids: no error")
	}
	if _, err := ClassifyRows([]int32{B, 9, E}, nil, l); err == nil {
		t.Error("empty class: no error")
	}
}

func TestParseMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"full", Mode{Kind: ModeFull}, true},
		{"mean", Mode{Kind: ModeMean}, true},
		{"0.5", Mode{Kind: ModeLambda, Lambda: 0.5}, true},
		{"0", Mode{Kind: ModeLambda}, true},
		{"1", Mode{Kind: ModeLambda, Lambda: 1}, true},
		{"1.5", Mode{}, false},
		{"-0.1", Mode{}, false},
		{"NaN", Mode{}, false},
		{"half", Mode{}, false},
	} {
		got, err := ParseMode(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseMode(%q) = %v, %v", c.in, got, err)
		}
	}
}

// orthoCase is one golden orchestration case of ortho.safetensors.
type orthoCase struct {
	prefix string
	rows   func(t *testing.T, f *golden.File) Rows
}

func orthoCases(sum *summary) []orthoCase {
	fromIDs := func(prefix string) func(t *testing.T, f *golden.File) Rows {
		return func(t *testing.T, f *golden.File) Rows {
			r, err := ClassifyRows(ints32(t, f, prefix+"ids61"), sum.ClassIDs, BLIPLayout)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	return []orthoCase{
		{"", fromIDs("")},
		{"reps1.", fromIDs("reps1.")},
		// The constructed case has no ids: its rows are given.
		{"synth.", func(t *testing.T, f *golden.File) Rows {
			return Rows{Visual: ints(t, f, "synth.rows.visual"), Text: ints(t, f, "synth.rows.text_used")}
		}},
	}
}

func TestOrthogonalizeGolden(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	sum := loadSummary(t)
	modes := []struct {
		name string
		mode Mode
	}{{"full", Mode{Kind: ModeFull}}, {"mean", Mode{Kind: ModeMean}}, {"lambda0.5", Mode{Kind: ModeLambda, Lambda: 0.5}}}
	for _, c := range orthoCases(sum) {
		E, shape := f.MustF32(t, c.prefix+"E")
		D := shape[1]
		rows := c.rows(t, f)
		if want := ints(t, f, c.prefix+"rows.text_used"); !slices.Equal(rows.Text, want) {
			t.Errorf("%stext rows %v, want %v", c.prefix, rows.Text, want)
		}
		wantRank := ints(t, f, c.prefix+"rank")[0]
		wantPiv, _, err := f.F64(c.prefix + "pivots")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range modes {
			opt := DefaultOrthoOptions()
			opt.Mode = m.mode
			res, err := Orthogonalize(E, D, rows, opt)
			if err != nil {
				t.Fatal(err)
			}
			name := c.prefix + "E_perp." + m.name
			want, _ := f.MustF32(t, name)
			golden.Close(t, name, res.E, want, 1e-6, 0)
			if b := res.Basis; b.Rank != wantRank {
				t.Errorf("%s: rank %d, want %d", name, b.Rank, wantRank)
			}
			if (res.Warning != "") != (m.mode.Kind == ModeFull && res.Basis.Rank == D) {
				t.Errorf("%s: warning %q with rank %d of %d", name, res.Warning, res.Basis.Rank, D)
			}
			checkOtherRowsIdentical(t, name, E, res.E, D, rows.Visual)
			if m.mode.Kind == ModeFull {
				checkOrthogonal(t, name, res, E, D, rows.Visual)
			}
		}
		// Pivots: |R_kk| in pivot order. Those below the rank are defined by
		// the data; the ones after the cut are rounding noise (≈1e-16·|R_00|).
		b, err := TextBasis(E, D, rows.Text, DefaultRankRTol)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Pivots) != len(wantPiv) {
			t.Fatalf("%spivots: %d, want %d", c.prefix, len(b.Pivots), len(wantPiv))
		}
		worst, exact := 0.0, 0
		for k, w := range wantPiv {
			got := b.Pivots[k]
			if float32(got) == float32(w) {
				exact++
			}
			tol := 1e-6*w + 1e-13*wantPiv[0]
			if math.Abs(got-w) > tol {
				t.Errorf("%spivot %d = %.9g, want %.9g", c.prefix, k, got, w)
			}
			if k < b.Rank {
				worst = max(worst, math.Abs(got-w)/w)
			}
		}
		t.Logf("%spivots: rank %d, %d/%d equal as float32, max relative deviation within the rank %.3g", c.prefix, b.Rank, exact, len(wantPiv), worst)
	}
}

// The synthetic case's pivot order (summary.json) up to the last pivot that
// is not rounding noise.
func TestPivotOrderSynth(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	want := loadSummary(t).Ortho.Synthetic.PivotOrderRows
	E, shape := f.MustF32(t, "synth.E")
	b, err := TextBasis(E, shape[1], ints(t, f, "synth.rows.text_used"), DefaultRankRTol)
	if err != nil {
		t.Fatal(err)
	}
	n := b.Rank + 1 // the 1e-8-scaled row, dropped by the rank rule, is still a real pivot
	if len(want) < n || !slices.Equal(b.Order[:n], want[:n]) {
		t.Errorf("pivot order %v, want %v (first %d)", b.Order, want, n)
	}
}

func checkOtherRowsIdentical(t *testing.T, name string, E, got []float32, D int, visual []int) {
	t.Helper()
	isVis := map[int]bool{}
	for _, r := range visual {
		isVis[r] = true
	}
	for r := range len(E) / D {
		if isVis[r] {
			continue
		}
		for i := range D {
			if math.Float32bits(E[r*D+i]) != math.Float32bits(got[r*D+i]) {
				t.Fatalf("%s: non-visual row %d changed", name, r)
			}
		}
	}
}

// checkOrthogonal is the method's orthogonality check: max_k |q_kᵀ·v⊥| ≤ 1e-5·|v|
// after the cast to f32.
func checkOrthogonal(t *testing.T, name string, res *OrthoResult, E []float32, D int, visual []int) {
	t.Helper()
	b := res.Basis
	worst := 0.0
	for _, r := range visual {
		v := E[r*D : (r+1)*D]
		vp := res.E[r*D : (r+1)*D]
		nv := 0.0
		for _, x := range v {
			nv += float64(x) * float64(x)
		}
		nv = math.Sqrt(nv)
		for k := range b.Rank {
			d := 0.0
			for i := range D {
				d += b.Q[k*D+i] * float64(vp[i])
			}
			worst = max(worst, math.Abs(d)/nv)
		}
	}
	if worst > 1e-5 {
		t.Errorf("%s: max |q_kᵀ·v⊥|/|v| = %.3g > 1e-5", name, worst)
	} else {
		t.Logf("%s: max |q_kᵀ·v⊥|/|v| = %.3g", name, worst)
	}
}

func TestOrthogonalizeEmptyText(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	E, shape := f.MustF32(t, "E")
	rows := Rows{Visual: seqInts(2, 18)}
	for _, mode := range []ModeKind{ModeFull, ModeMean} {
		res, err := Orthogonalize(E, shape[1], rows, OrthoOptions{Mode: Mode{Kind: mode}, ExcludeClass: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Basis.Rank != 0 || res.Lambda != 0 || res.Warning != "" {
			t.Errorf("empty T: rank %d λ %v warning %q", res.Basis.Rank, res.Lambda, res.Warning)
		}
		for i := range E {
			if math.Float32bits(E[i]) != math.Float32bits(res.E[i]) {
				t.Fatalf("empty T changed value %d", i)
			}
		}
	}
}

// With ortho-exclude-class off, the class rows join T.
func TestOrthogonalizeIncludeClass(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	sum := loadSummary(t)
	E, shape := f.MustF32(t, "reps1.E")
	D := shape[1]
	rows, err := ClassifyRows(ints32(t, f, "reps1.ids61"), sum.ClassIDs, BLIPLayout)
	if err != nil {
		t.Fatal(err)
	}
	opt := DefaultOrthoOptions()
	opt.ExcludeClass = false
	res, err := Orthogonalize(E, D, rows, opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 18, 19, 20}; !slices.Equal(res.Text, want) || res.Basis.Rank != 4 {
		t.Errorf("text rows %v rank %d, want %v rank 4", res.Text, res.Basis.Rank, want)
	}
	checkOrthogonal(t, "include-class", res, E, D, rows.Visual)
	// The class row is now in the span: projecting it leaves ~0.
	cls := E[18*D : 19*D]
	p := res.Basis.Project(cls, 1)
	for i, x := range p {
		if math.Abs(float64(x)) > 1e-5*float64(maxAbs(cls)) {
			t.Fatalf("class row not in span: component %d = %v", i, x)
		}
	}
}

// TestMGSCrossCheck compares the Householder projector with modified
// Gram–Schmidt (rows in order, re-orthogonalized, kept when the residual is
// ≥ rtol × the largest row norm): the two must agree.
func TestMGSCrossCheck(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	sum := loadSummary(t)
	for _, c := range orthoCases(sum) {
		E, shape := f.MustF32(t, c.prefix+"E")
		D := shape[1]
		rows := c.rows(t, f)
		b, err := TextBasis(E, D, rows.Text, DefaultRankRTol)
		if err != nil {
			t.Fatal(err)
		}
		mgs := mgsBasis(E, D, rows.Text, DefaultRankRTol)
		if len(mgs)/D != b.Rank {
			t.Errorf("%s: MGS rank %d, Householder %d", c.prefix, len(mgs)/D, b.Rank)
			continue
		}
		mb := &Basis{D: D, Rank: len(mgs) / D, Q: mgs}
		worst := 0.0
		for _, r := range rows.Visual {
			v := E[r*D : (r+1)*D]
			ph := projF64(b, v)
			pm := projF64(mb, v)
			for i := range ph {
				worst = max(worst, math.Abs(ph[i]-pm[i]))
			}
		}
		t.Logf("%s: rank %d, max |P_householder·v − P_mgs·v| = %.3g", c.prefix, b.Rank, worst)
		if worst > 1e-10 {
			t.Errorf("%s: MGS and Householder projections differ by %.3g", c.prefix, worst)
		}
	}
}

func mgsBasis(E []float32, D int, rows []int, rtol float64) []float64 {
	largest := 0.0
	for _, r := range rows {
		n := 0.0
		for i := range D {
			n += float64(E[r*D+i]) * float64(E[r*D+i])
		}
		largest = max(largest, math.Sqrt(n))
	}
	var Q []float64
	for _, r := range rows {
		w := make([]float64, D)
		for i := range D {
			w[i] = float64(E[r*D+i])
		}
		for range 2 { // re-orthogonalize
			for k := 0; k < len(Q)/D; k++ {
				q := Q[k*D : (k+1)*D]
				d := 0.0
				for i := range D {
					d += q[i] * w[i]
				}
				for i := range D {
					w[i] -= d * q[i]
				}
			}
		}
		n := 0.0
		for _, x := range w {
			n += x * x
		}
		n = math.Sqrt(n)
		if n >= rtol*largest && n > 0 && len(Q)/D < D {
			for i := range w {
				w[i] /= n
			}
			Q = append(Q, w...)
		}
	}
	return Q
}

func projF64(b *Basis, v []float32) []float64 {
	D := b.D
	p := make([]float64, D)
	for k := range b.Rank {
		q := b.Q[k*D : (k+1)*D]
		c := 0.0
		for i := range D {
			c += q[i] * float64(v[i])
		}
		for i := range D {
			p[i] += c * q[i]
		}
	}
	return p
}

func TestOrthogonalizeErrors(t *testing.T) {
	E := make([]float32, 10*4)
	if _, err := Orthogonalize(E, 3, Rows{}, DefaultOrthoOptions()); err == nil {
		t.Error("width not dividing E: no error")
	}
	if _, err := Orthogonalize(E, 4, Rows{Text: []int{10}}, DefaultOrthoOptions()); err == nil {
		t.Error("text row out of range: no error")
	}
	E[0] = 1
	if _, err := Orthogonalize(E, 4, Rows{Text: []int{0}, Visual: []int{12}}, DefaultOrthoOptions()); err == nil || !strings.Contains(err.Error(), "visual row") {
		t.Errorf("visual row out of range: %v", err)
	}
}

func seqInts(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func maxAbs(v []float32) float32 {
	m := float32(0)
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return m
}

// The runs' conditional embeddings are what Orthogonalize gives: cond-main
// is E⊥ (or E without ortho) and cond-visual is E_vis, never orthogonalized.
func TestOrthoMatchesRuns(t *testing.T) {
	f := golden.Open(t, "harmony", "ortho.safetensors")
	sum := loadSummary(t)
	cases := []struct {
		run, prefix, mode string
	}{
		{"baseline", "", ""},
		{"ortho_full", "", "full"},
		{"ortho_mean", "", "mean"},
		{"ortho_lambda0.5", "", "0.5"},
		{"reps1_ortho_full", "reps1.", "full"},
		{"ortho_swap_kv", "", "full"},
		{"reps1_ortho_swap_kv", "reps1.", "full"},
		{"swap_kv", "", ""},
	}
	for _, c := range cases {
		rf := golden.Open(t, "harmony", "runs", c.run+".safetensors")
		te, shape := rf.MustF32(t, "text_embeddings")
		per := shape[1] * shape[2]
		cond := 1 // batch [uncond, cond] or [uncond-main, uncond-vis, cond-main, cond-vis]
		if shape[0] == 4 {
			cond = 2
		}
		E, es := f.MustF32(t, c.prefix+"E")
		want := E
		if c.mode != "" {
			mode, err := ParseMode(c.mode)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := ClassifyRows(ints32(t, f, c.prefix+"ids61"), sum.ClassIDs, BLIPLayout)
			if err != nil {
				t.Fatal(err)
			}
			opt := DefaultOrthoOptions()
			opt.Mode = mode
			res, err := Orthogonalize(E, es[1], rows, opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Basis.Rank != sum.Runs[c.run].OrthoRank || res.Lambda != sum.Runs[c.run].OrthoLambda || len(res.Text) != sum.Runs[c.run].NTextRows {
				t.Errorf("%s: rank %d λ %v text rows %d; summary %d %v %d", c.run, res.Basis.Rank, res.Lambda, len(res.Text),
					sum.Runs[c.run].OrthoRank, sum.Runs[c.run].OrthoLambda, sum.Runs[c.run].NTextRows)
			}
			want = res.E
		}
		golden.Close(t, c.run+" cond-main", te[cond*per:(cond+1)*per], want, 1e-6, 0)
		if shape[0] == 4 {
			ev, _ := f.MustF32(t, "E_vis")
			golden.Close(t, c.run+" cond-visual", te[3*per:4*per], ev, 0, 0)
		}
	}
}
