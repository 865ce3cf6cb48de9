// elementary.go holds the exactly specified ln, sin and cos of doc.go
// ("Elementary functions, exactly specified"). Every product that feeds an
// addition is wrapped in float64(), which the Go specification defines to
// round, so no compiler may fuse it into a multiply-add: the bits are the
// same on amd64, arm64 and wasm.
package rng

import "math"

// fdlibm's split of ln 2: the low 21 bits of ln2Hi are zero, so e·ln2Hi is
// exact for the exponents met here (|e| ≤ 53).
const (
	ln2Hi = 6.93147180369123816490e-01 // 0x3fe62e42fee00000
	ln2Lo = 1.90821492927058770002e-10 // 0x3dea39ef35793c76
	sqrt2 = 1.4142135623730951         // float64 nearest √2
)

// lnCoef are 2/3, 2/5, …, 2/23: ln m = 2s + s·z·P(z), the series of
// 2·atanh(s) with s = (m−1)/(m+1) and z = s².
var lnCoef = [...]float64{2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21, 2.0 / 23}

// sinCoef are −1/3!, 1/5!, …, −1/19!: sin x = x + x·z·S(z).
var sinCoef = [...]float64{
	-1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800,
	1.0 / 6227020800, -1.0 / 1307674368000, 1.0 / 355687428096000, -1.0 / 121645100408832000,
}

// cosCoef are −1/2!, 1/4!, …, 1/20!: cos x = 1 + z·C(z).
var cosCoef = [...]float64{
	-1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800,
	1.0 / 479001600, -1.0 / 87178291200, 1.0 / 20922789888000, -1.0 / 6402373705728000,
	1.0 / 2432902008176640000,
}

// horner returns c[0] + z·(c[1] + z·(… + z·c[n−1])), each product rounded.
func horner(c []float64, z float64) float64 {
	p := c[len(c)-1]
	for i := len(c) - 2; i >= 0; i-- {
		p = c[i] + float64(z*p)
	}
	return p
}

// lnUnit returns ln u for u in (0, 1] (normal numbers; Box–Muller's u1 is
// at least 2⁻⁵³).
func lnUnit(u float64) float64 {
	bits := math.Float64bits(u)
	e := int(bits>>52&0x7ff) - 1023
	m := math.Float64frombits(bits&(1<<52-1) | 1023<<52) // [1, 2)
	if m > sqrt2 {
		m /= 2 // exact
		e++
	}
	f := m - 1 // exact (Sterbenz)
	s := f / (m + 1)
	z := float64(s * s)
	lnm := float64(2*s) + float64(float64(s*z)*horner(lnCoef[:], z))
	fe := float64(e)
	return float64(fe*ln2Hi) + (float64(fe*ln2Lo) + lnm)
}

// quarterStep is π/2 · 2⁻⁵¹: the angle of one unit of the 51-bit fraction
// of a quarter turn (one float64 constant).
const quarterStep = math.Pi / 2 / (1 << 51)

// sinCosTurn returns sin θ and cos θ for θ = 2π·j·2⁻⁵³, j < 2⁵³.
func sinCosTurn(j uint64) (sin, cos float64) {
	q := j >> 51 // quadrant
	f := j & (1<<51 - 1)
	swap := f > 1<<50
	if swap {
		f = 1<<51 - f
	}
	x := float64(float64(f) * quarterStep) // [0, π/4]; rounded here, or arm64 fuses it into s below
	z := float64(x * x)
	s := x + float64(float64(x*z)*horner(sinCoef[:], z))
	c := 1 + float64(z*horner(cosCoef[:], z))
	if swap {
		s, c = c, s
	}
	switch q {
	case 0:
		return s, c
	case 1:
		return c, -s
	case 2:
		return -s, -c
	default:
		return -c, s
	}
}
