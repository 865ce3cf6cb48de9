// rng.go implements the Philox4x32-10 stream and the Box–Muller normals
// specified in doc.go.
package rng

import "math"

// Philox4x32-10 constants (Salmon et al. 2011; Random123 philox.h).
const (
	philoxM0 = 0xD2511F53 // multiplier of c0
	philoxM1 = 0xCD9E8D57 // multiplier of c2
	philoxW0 = 0x9E3779B9 // key bump of k0 (golden ratio)
	philoxW1 = 0xBB67AE85 // key bump of k1 (√3 − 1)
	rounds   = 10
)

// Philox4x32 returns the Philox4x32-10 block for a counter and key.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c0, c1, c2, c3 := ctr[0], ctr[1], ctr[2], ctr[3]
	k0, k1 := key[0], key[1]
	for r := range rounds {
		if r > 0 {
			k0 += philoxW0
			k1 += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(c0)
		p1 := uint64(philoxM1) * uint64(c2)
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
	}
	return [4]uint32{c0, c1, c2, c3}
}

// Normal returns the first n values of seed's stream 0: n standard normal
// float32 values (for latents [B, C, H, W], n = B·C·H·W in NCHW order).
func Normal(seed uint64, n int) []float32 {
	out := make([]float32, n)
	FillNormal(out, seed, 0, 0)
	return out
}

// FillNormal writes values offset, offset+1, … of the stream (seed, stream)
// into dst. Any range of the stream can be produced independently: the
// values do not depend on how the stream is cut into calls.
func FillNormal(dst []float32, seed, stream, offset uint64) {
	key := [2]uint32{uint32(seed), uint32(seed >> 32)}
	i := 0
	for i < len(dst) {
		k := offset + uint64(i)
		b := k / 2
		z0, z1 := boxMuller(Philox4x32([4]uint32{uint32(b), uint32(b >> 32), uint32(stream), uint32(stream >> 32)}, key))
		if k%2 == 0 {
			dst[i] = z0
			i++
			if i < len(dst) {
				dst[i] = z1
				i++
			}
		} else {
			dst[i] = z1
			i++
		}
	}
}

// boxMuller turns one Philox block into two normals (doc.go "Uniforms" and
// "Box–Muller").
func boxMuller(x [4]uint32) (float32, float32) {
	m1 := (uint64(x[0])<<32 | uint64(x[1])) >> 11
	u1 := float64(float64(m1+1) * 0x1p-53) // (0, 1], exact
	j := (uint64(x[2])<<32 | uint64(x[3])) >> 11
	r := math.Sqrt(-2 * lnUnit(u1)) // −2·ln is exact scaling; Sqrt is correctly rounded everywhere
	s, c := sinCosTurn(j)
	return float32(r * c), float32(r * s)
}
