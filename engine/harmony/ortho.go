// ortho.go implements the second half of the contextual embedding
// orchestration (after the rows are classified): an orthonormal basis of the text rows by
// column-pivoted Householder QR in float64, the rank rule, and the
// projection of the visual rows off that span.
package harmony

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultRankRTol is the rank rule's relative threshold: pivots with
// |R_kk| ≥ 1e-6·|R_00| count.
const DefaultRankRTol = 1e-6

// pivotTie is the relative gap below which two remaining column norms count
// as equal when choosing a pivot (far above float64 rounding, far below
// any real difference between embedding rows).
const pivotTie = 1e-9

// ModeKind selects λ in v⊥ = v − λ·Q·Qᵀ·v (knob ortho-mode).
type ModeKind uint8

const (
	ModeFull   ModeKind = iota // λ = 1: the paper's formula (default)
	ModeMean                   // λ = 1/r: the gentler variant of the authors' code
	ModeLambda                 // a given λ in [0, 1]
)

// Mode is a parsed ortho-mode knob.
type Mode struct {
	Kind   ModeKind // full, mean or a number
	Lambda float64  // λ for ModeLambda
}

// ParseMode reads "full", "mean" or a number in [0, 1].
func ParseMode(s string) (Mode, error) {
	switch strings.TrimSpace(s) {
	case "full", "":
		return Mode{Kind: ModeFull}, nil
	case "mean":
		return Mode{Kind: ModeMean}, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v >= 0 && v <= 1) {
		return Mode{}, fmt.Errorf("harmony: ortho-mode %q: want full, mean or a number in [0, 1]", s)
	}
	return Mode{Kind: ModeLambda, Lambda: v}, nil
}

func (m Mode) String() string {
	switch m.Kind {
	case ModeFull:
		return "full"
	case ModeMean:
		return "mean"
	}
	return strconv.FormatFloat(m.Lambda, 'g', -1, 64)
}

// lambda returns λ for rank r (0 when there is nothing to project on).
func (m Mode) lambda(r int) float64 {
	if r == 0 {
		return 0
	}
	switch m.Kind {
	case ModeFull:
		return 1
	case ModeMean:
		return 1 / float64(r)
	}
	return m.Lambda
}

// OrthoOptions are the orchestration knobs.
type OrthoOptions struct {
	Mode         Mode    // ortho-mode (default full)
	ExcludeClass bool    // ortho-exclude-class: class rows are not text rows (default on)
	RankRTol     float64 // rank rule threshold relative to |R_00|; 0 means DefaultRankRTol
}

// DefaultOrthoOptions are the method's defaults.
func DefaultOrthoOptions() OrthoOptions {
	return OrthoOptions{Mode: Mode{Kind: ModeFull}, ExcludeClass: true, RankRTol: DefaultRankRTol}
}

// Basis is an orthonormal basis of the span of the text rows.
type Basis struct {
	D      int       // embedding width
	Rank   int       // r: length of the leading run of pivots ≥ rtol·|R_00|
	Q      []float64 // r columns of length D, column-major: q_k = Q[k·D : (k+1)·D]
	Pivots []float64 // |R_kk| for k < min(D, n), in pivot order
	Order  []int     // the text rows (rows of E) in pivot order, min(D, n) of them
}

// TextBasis computes the basis of the rows textRows of E (numRows × D, f32,
// row-major) by column-pivoted Householder QR of Tᵀ (D × n) in float64:
// at step k the remaining column with the largest remaining norm (the
// earliest of textRows among norms within 1e-9 relative of it) is swapped
// in, and a Householder reflector (LAPACK dlarfg convention,
// R_kk = −sign(x₀)·‖x‖) zeroes it below the diagonal.
func TextBasis(E []float32, D int, textRows []int, rtol float64) (*Basis, error) {
	if D <= 0 || len(E)%D != 0 {
		return nil, fmt.Errorf("harmony: embedding of %d values is not a multiple of width %d", len(E), D)
	}
	numRows := len(E) / D
	if rtol <= 0 {
		rtol = DefaultRankRTol
	}
	n := len(textRows)
	// A = Tᵀ, stored column-major: column j is text row textRows[j].
	A := make([]float64, D*n)
	for j, row := range textRows {
		if row < 0 || row >= numRows {
			return nil, fmt.Errorf("harmony: text row %d outside [0, %d)", row, numRows)
		}
		for i := range D {
			A[j*D+i] = float64(E[row*D+i])
		}
	}
	order := append([]int(nil), textRows...)
	pos := make([]int, n) // each column's position in textRows, for ties
	for j := range pos {
		pos[j] = j
	}
	steps := min(D, n)
	taus := make([]float64, steps)
	b := &Basis{D: D}
	for k := range steps {
		// Pivot: the largest norm of the remaining part A[k:, j]
		// (recomputed, not downdated). Norms within pivotTie of the largest
		// are ties, resolved to the earliest text row: rows that differ by
		// combinations of earlier pivots tie exactly in exact arithmetic,
		// and rounding must not pick among them.
		norms := make([]float64, n)
		maxNorm := 0.0
		for j := k; j < n; j++ {
			norms[j] = norm(A[j*D+k : (j+1)*D])
			maxNorm = max(maxNorm, norms[j])
		}
		best := k
		for j := k; j < n; j++ {
			if norms[j] >= (1-pivotTie)*maxNorm && (norms[best] < (1-pivotTie)*maxNorm || pos[j] < pos[best]) {
				best = j
			}
		}
		if best != k {
			swapCols(A, D, k, best)
			order[k], order[best] = order[best], order[k]
			pos[k], pos[best] = pos[best], pos[k]
		}
		col := A[k*D : (k+1)*D]
		beta, tau := householder(col[k:])
		taus[k] = tau
		col[k] = beta
		// Apply H = I − τ·v·vᵀ (v = [1, col[k+1:]]) to the columns right of k.
		for j := k + 1; j < n; j++ {
			c := A[j*D : (j+1)*D]
			s := c[k]
			for i := k + 1; i < D; i++ {
				s += col[i] * c[i]
			}
			s *= tau
			c[k] -= s
			for i := k + 1; i < D; i++ {
				c[i] -= s * col[i]
			}
		}
		b.Pivots = append(b.Pivots, math.Abs(beta))
	}
	b.Order = order[:steps]
	if steps > 0 && b.Pivots[0] > 0 {
		for b.Rank < steps && b.Pivots[b.Rank] >= rtol*b.Pivots[0] {
			b.Rank++
		}
	}
	// Q's first r columns: apply H_0 ⋯ H_{r−1} to the unit vectors e_0..e_{r−1}
	// (LAPACK dorg2r order: last reflector first).
	r := b.Rank
	b.Q = make([]float64, D*r)
	for c := range r {
		q := b.Q[c*D : (c+1)*D]
		q[c] = 1
		for k := r - 1; k >= 0; k-- {
			v := A[k*D : (k+1)*D]
			s := q[k]
			for i := k + 1; i < D; i++ {
				s += v[i] * q[i]
			}
			s *= taus[k]
			q[k] -= s
			for i := k + 1; i < D; i++ {
				q[i] -= s * v[i]
			}
		}
	}
	return b, nil
}

// householder turns x in place into the reflector's tail v[1:] (v₀ = 1
// implied) and returns β (the new x₀) and τ, so that (I − τ·v·vᵀ)·x = β·e₀.
// LAPACK dlarfg: β = −sign(x₀)·‖x‖, τ = (β − x₀)/β, v = x/(x₀ − β).
func householder(x []float64) (beta, tau float64) {
	alpha := x[0]
	xnorm := norm(x[1:])
	if xnorm == 0 {
		return alpha, 0
	}
	beta = -math.Copysign(math.Hypot(alpha, xnorm), alpha)
	tau = (beta - alpha) / beta
	scale := 1 / (alpha - beta)
	for i := 1; i < len(x); i++ {
		x[i] *= scale
	}
	return beta, tau
}

func norm(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

func swapCols(A []float64, D, a, b int) {
	for i := range D {
		A[a*D+i], A[b*D+i] = A[b*D+i], A[a*D+i]
	}
}

// Project returns v − λ·Q·Qᵀ·v computed in float64 and cast to float32.
func (b *Basis) Project(v []float32, lambda float64) []float32 {
	D, r := b.D, b.Rank
	x := make([]float64, D)
	for i, f := range v {
		x[i] = float64(f)
	}
	p := make([]float64, D) // Q·Qᵀ·v
	for k := range r {
		q := b.Q[k*D : (k+1)*D]
		c := 0.0
		for i := range D {
			c += q[i] * x[i]
		}
		for i := range D {
			p[i] += q[i] * c
		}
	}
	out := make([]float32, D)
	for i := range D {
		out[i] = float32(x[i] - lambda*p[i])
	}
	return out
}

// OrthoResult is the orchestrated embedding and what led to it.
type OrthoResult struct {
	E       []float32 // the new embedding: a copy of E with the visual rows projected
	Text    []int     // the rows that formed T (ascending)
	Basis   *Basis    // the basis of span(T)
	Lambda  float64   // λ used (0 when T is empty)
	Warning string    // non-empty when full mode removed the visual rows entirely (r = D)
}

// Orthogonalize replaces each visual row v of E (numRows × D, row-major) by
// v − λ·Q·Qᵀ·v, where Q spans the text rows (Rows.Text, plus Rows.Class
// unless opt.ExcludeClass). Every other row is copied bit for bit; E itself
// is not modified. With no text rows the embedding is returned unchanged.
func Orthogonalize(E []float32, D int, rows Rows, opt OrthoOptions) (*OrthoResult, error) {
	text := append([]int(nil), rows.Text...)
	if !opt.ExcludeClass {
		text = mergeSorted(text, rows.Class)
	}
	basis, err := TextBasis(E, D, text, opt.RankRTol)
	if err != nil {
		return nil, err
	}
	numRows := len(E) / D
	res := &OrthoResult{E: append([]float32(nil), E...), Text: text, Basis: basis, Lambda: opt.Mode.lambda(basis.Rank)}
	if basis.Rank == 0 {
		return res, nil
	}
	if basis.Rank == D && res.Lambda == 1 {
		res.Warning = fmt.Sprintf("harmony: the %d text rows span the whole %d-dimensional embedding space; full orthogonalization zeroes the visual rows", len(text), D)
	}
	for _, row := range rows.Visual {
		if row < 0 || row >= numRows {
			return nil, fmt.Errorf("harmony: visual row %d outside [0, %d)", row, numRows)
		}
		copy(res.E[row*D:(row+1)*D], basis.Project(E[row*D:(row+1)*D], res.Lambda))
	}
	return res, nil
}

// mergeSorted merges two ascending row lists.
func mergeSorted(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j >= len(b) || (i < len(a) && a[i] < b[j]) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}
