// act.wgsl: accurate f32 exp, erf, erfc, sin/cos and the activations of
// tensor.Act, pasted in with `#include "act.wgsl"`; never
// compiled on its own. Any kernel that applies an activation includes it and
// calls act_NAME(x), NAME one of none, silu, gelu, quick_gelu, leaky_relu
// (elementwise.wgsl picks NAME with its ACT define).
//
// Why not the builtins: WGSL only promises exp to 3 + 2·|x| ULP, sin/cos to
// an absolute 2^-11 on [-π, π], and has no erf at all; GPUs differ widely in
// what they deliver. These versions cost a few more ALU operations in kernels
// that are memory bound, and give the same answer everywhere:
//   act_exp   ≤ 1e-7 relative on [-87, 88] (clamped outside: e^x saturates
//             at about 1.6e-38 and 1.7e38 instead of 0 and +inf, which keeps
//             ldexp's exponent inside the normal range)
//   act_erf   ≤ 1e-7 relative; act_erfc ≤ 2.5e-7 relative on [0, 9]
//   sin/cos   ≤ 1e-7 absolute for |x| ≤ π (callers reduce larger arguments)
// (measured against math.Exp/Erf/Erfc/Sin/Cos, see act_test.go).

// e^x: Cody–Waite reduction by ln 2 (the high part has 9 bits, so n·hi is
// exact) and the Cephes expf minimax polynomial on |r| ≤ ln(2)/2.
fn act_exp(x: f32) -> f32 {
  let xc = clamp(x, -87.0, 88.0);
  let n = round(xc * 1.44269504088896341);
  var r = xc - n * 0.693359375;
  r = r - n * -2.12194440e-4;
  let z = r * r;
  var q = 1.9875691500e-4;
  q = q * r + 1.3981999507e-3;
  q = q * r + 8.3334519073e-3;
  q = q * r + 4.1665795894e-2;
  q = q * r + 1.6666665459e-1;
  q = q * r + 5.0000001201e-1;
  return ldexp(q * z + r + 1.0, i32(n));
}

// The error function in f32, after the float version of fdlibm's s_erf.c
// (Sun Microsystems, freely distributable) as refitted in FreeBSD msun: a
// rational approximation per range, and for |x| ≥ 1.25 the erfc tail
// exp(-x² - 0.5625 + R(1/x²)/S(1/x²))/x with x² split so that its rounding
// does not reach the exponent.
const ERF_ERX: f32 = 8.42697144e-01; // erf(1) rounded to 17 bits

fn erf_small_ratio(x: f32) -> f32 { // (erf(x) - x)/x on |x| < 0.84375
  let z = x * x;
  let r = 1.28379166e-01 + z * (-3.36030394e-01 + z * -1.86261395e-03);
  let s = 1.0 + z * (3.12324315e-01 + z * (2.16070414e-02 + z * -1.98859372e-03));
  return r / s;
}

fn erf_mid(a: f32) -> f32 { // erf(a) - erx on 0.84375 ≤ a < 1.25
  let s = a - 1.0;
  let pn = 3.65041046e-06 + s * (4.15109307e-01 + s * (-2.09395722e-01 + s * 8.67677554e-02));
  let qd = 1.0 + s * (4.95560974e-01 + s * (3.71248513e-01 + s * 3.92478965e-02));
  return pn / qd;
}

// erfc(a) on 1.25 ≤ a < 10, where a = √h·u with h a power of two (1 for
// erfc itself, 1/2 for GELU's x/√2 with u = |x|): the exponent -a² is taken
// as -h·u², with u split so that h·z² is exact and the rounding of a itself
// does not reach the exponent (it would cost a²·6e-8 relative).
fn erfc_tail(a: f32, u: f32, h: f32) -> f32 {
  let s = 1.0 / (a * a);
  var r: f32;
  var q: f32;
  if (a < 2.857143) {
    r = -9.88156721e-03 + s * (-5.43658376e-01 + s * (-1.66828310e+00 + s * -6.91554189e-01));
    q = 1.0 + s * (4.48581553e+00 + s * (4.10799170e+00 + s * 5.53855181e-01));
  } else {
    r = -9.86496918e-03 + s * (-5.48049808e-01 + s * -1.84115684e+00);
    q = 1.0 + s * (4.87132740e+00 + s * (3.04982710e+00 + s * -7.61900663e-01));
  }
  // z keeps the top 11 bits of u, so z·z is exact.
  let z = bitcast<f32>(bitcast<u32>(u) & 0xffffe000u);
  return act_exp(-h * z * z - 0.5625) * act_exp(h * (z - u) * (z + u) + r / q) / a;
}

fn act_erf(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.84375) {
    return x + x * erf_small_ratio(x);
  }
  var r = 1.0;
  if (a < 1.25) {
    r = ERF_ERX + erf_mid(a);
  } else if (a < 4.0) {
    r = 1.0 - erfc_tail(a, a, 1.0);
  }
  return select(r, -r, x < 0.0);
}

// erfc(a) for a = √h·u ≥ 0 (see erfc_tail) with relative accuracy: no
// 1 - erf cancellation in the tail.
fn erfc_pos(a: f32, u: f32, h: f32) -> f32 {
  if (a < 0.84375) {
    let y = erf_small_ratio(a);
    if (a < 0.25) {
      return 1.0 - (a + a * y);
    }
    return 0.5 - ((a - 0.5) + a * y);
  }
  if (a < 1.25) {
    return (1.0 - ERF_ERX) - erf_mid(a);
  }
  if (a < 10.0) {
    return erfc_tail(a, u, h);
  }
  return 0.0;
}

fn act_erfc(a: f32) -> f32 {
  return erfc_pos(a, a, 1.0);
}

fn act_none(x: f32) -> f32 {
  return x;
}

// x·σ(x); for x ≪ 0 the saturated exp gives ≈ -1e-37 instead of ≈ 0.
fn act_silu(x: f32) -> f32 {
  return x / (1.0 + act_exp(-x));
}

// PyTorch's LeakyReLU with its default slope 0.01 (ELITE's mappers).
fn act_leaky_relu(x: f32) -> f32 {
  return select(0.01 * x, x, x >= 0.0);
}

// x·σ(1.702·x), CLIP's quick GELU.
fn act_quick_gelu(x: f32) -> f32 {
  return x / (1.0 + act_exp(-1.702 * x));
}

// Exact GELU x·Φ(x) = 0.5·x·(1 + erf(x/√2)), through one erfc of |x|/√2
// for both signs: Φ(x) = 1 - erfc/2 for x ≥ 0, erfc/2 below (no
// cancellation, and one set of branches where lanes diverge).
fn act_gelu(x: f32) -> f32 {
  let u = abs(x);
  let c = 0.5 * erfc_pos(u * 0.707106781186547524, u, 0.5);
  return x * select(c, 1.0 - c, x >= 0.0);
}

// sin and cos of x for |x| ≤ π (larger |x| lose accuracy slowly: 1e-7 up to
// 1e4, 1e-6 at 1e5): Cody–Waite reduction by π/2 in three parts (the first
// two short enough that k·part is exact) and the Cephes sinf/cosf
// polynomials on |r| ≤ π/4. Returns vec2(sin, cos).
fn act_sincos(x: f32) -> vec2<f32> {
  let k = round(x * 0.636619772367581343);
  var r = x - k * 1.5703125;
  r = r - k * 4.837512969970703125e-4;
  r = r - k * 7.54978995489188216e-8;
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (i32(k) & 3) {
    case 0: { return vec2<f32>(s, c); }
    case 1: { return vec2<f32>(c, -s); }
    case 2: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

// One side of act_sincos (for tests through the elementwise kernel).
fn act_sin(x: f32) -> f32 {
  return act_sincos(x).x;
}

fn act_cos(x: f32) -> f32 {
  return act_sincos(x).y;
}
