// Package rng is Harmony's own seeded Gaussian noise, specified here
// precisely enough that any implementation (Go natively, Go in the browser
// through wasm, a shader, a script) produces the same float32 bits for the
// same seed. The reference pipeline's torch.randn cannot be reproduced
// outside torch, so parity tests pass latents explicitly instead; this
// generator is what makes "one seed, one picture" hold between our native
// and browser builds.
//
// # Stream
//
// Normal value k (k = 0, 1, 2, …) of seed s and stream id d comes from
// Philox4x32-10 block b = k / 2, component k mod 2:
//
//	key     = (lo32(s), hi32(s))
//	counter = (lo32(b), hi32(b), lo32(d), hi32(d))
//	(x0, x1, x2, x3) = Philox4x32-10(counter, key)
//
// Philox4x32-10 is the counter-based generator of Salmon et al. (SC'11,
// "Parallel random numbers: as easy as 1, 2, 3"; Random123): ten rounds of
//
//	(hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2          (32×32 → 64-bit products)
//	c = (hi1 ⊕ c1 ⊕ k0, lo1, hi0 ⊕ c3 ⊕ k1, lo0)
//	k = (k0 + W0, k1 + W1)                          (between rounds, mod 2³²)
//
// with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85.
// It matches Random123's known-answer vectors (see the tests).
//
// # Uniforms
//
//	u1 = ((x0·2³² + x1) >> 11) + 1) · 2⁻⁵³      in (0, 1]   (never 0: log is finite)
//	j  =  (x2·2³² + x3) >> 11                    53 bits; u2 = j · 2⁻⁵³ in [0, 1)
//
// # Box–Muller
//
//	r = √(−2·ln u1),  θ = 2π·u2
//	value 2b   = float32(r·cos θ)
//	value 2b+1 = float32(r·sin θ)
//
// (the product r·cos θ is rounded to float64, then to float32).
//
// # Elementary functions, exactly specified
//
// ln, sin and cos are not the math package's: those may use assembly on
// some architectures, and the Go compiler may fuse x·y + z into one FMA
// instruction on arm64 (and amd64 with GOAMD64=v3, ppc64, s390x, riscv64),
// which changes the rounding. Here every step is a single IEEE-754 binary64
// operation (+, −, ×, ÷, √, exact bit manipulation), each product wrapped in
// an explicit float64() conversion, which the Go specification defines to
// round and so forbids fusion. The results are therefore the same bits on
// every platform. The algorithms, evaluated left to right as written:
//
// ln(u), u in (0, 1] (lnUnit):
//
//	split u = m·2^e with m in [1, 2) from the bits; if m > √2 (the float64
//	constant 1.4142135623730951): m = m/2, e = e+1.
//	f = m − 1; s = f/(m + 1); z = s·s
//	P = Horner in z of the coefficients 2/3, 2/5, 2/7, …, 2/23 (innermost
//	    2/23): P = 2/3 + z·(2/5 + z·(… + z·(2/23)))
//	ln m = 2·s + (s·z)·P
//	ln u = e·LN2HI + (e·LN2LO + ln m)
//
// with LN2HI = 6.93147180369123816490e-01 and LN2LO =
// 1.90821492927058770002e-10 (fdlibm's split of ln 2; e·LN2HI is exact).
//
// sin and cos of 2π·j·2⁻⁵³ (sinCosTurn): the quadrant q = j >> 51 and
// f = j mod 2⁵¹ are exact. If f ≤ 2⁵⁰, g = f and no swap; else g = 2⁵¹ − f
// and the roles of sin and cos swap. x = g · (π/2 · 2⁻⁵¹) (one float64
// constant), so x is in [0, π/4]; z = x·x;
//
//	sin x = x + (x·z)·S,  S = −1/3! + z·(1/5! + z·(−1/7! + … + z·(−1/19!)))
//	cos x = 1 + z·C,      C = −1/2! + z·(1/4! + z·(−1/6! + … + z·(1/20!)))
//
// (all coefficients are float64 constants rounded once from the exact
// rationals). Then (sin ψ, cos ψ) = (sin x, cos x), or (cos x, sin x) when
// swapped, and the quadrant gives (sin θ, cos θ) = (sin ψ, cos ψ),
// (cos ψ, −sin ψ), (−sin ψ, −cos ψ), (−cos ψ, sin ψ) for q = 0, 1, 2, 3.
//
// Accuracy is about 1 ulp of float64 for ln and sin/cos, far below float32
// resolution; what matters is that every platform rounds identically.
//
// # Latents
//
// Initial latents of shape [B, C, H, W] are Normal(seed, B·C·H·W) in NCHW
// order: value k is element ((b·C + c)·H + y)·W + x, multiplied by the
// scheduler's init_noise_sigma (1 for PNDM and DDIM).
package rng
