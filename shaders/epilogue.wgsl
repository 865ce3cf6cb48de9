// epilogue.wgsl: what the dense kernels (matmul.wgsl, conv2d.wgsl) share:
// where a thread's output block lies (block_origin, from their tiling
// defines TM, TN, WGM, WGN and SG), and the activations fused into their
// epilogues (tensor.Act), chosen at compile time by one of the defines
// ACT_SILU, ACT_GELU, ACT_QGELU, ACT_LEAKY (none: identity), four outputs at a time.
// Pasted in with `#include "epilogue.wgsl"`; never compiled on its own.

// The first row and column of invocation lid's TM×TN output block in
// workgroup tile t (tiles_n tiles across). The workgroup's WGM×WGN threads
// run along the columns, or with SG down the rows (WGM a multiple of SG),
// so that a subgroup's consecutive invocations share one column block.
fn block_origin(t: u32, tiles_n: u32, lid: u32) -> vec2<u32> {
#if SG
  let r = lid % ${WGM}u;
  let c = lid / ${WGM}u;
#else
  let r = lid / ${WGN}u;
  let c = lid % ${WGN}u;
#endif
  return vec2<u32>((t / tiles_n) * (${WGM}u * ${TM}u) + r * ${TM}u, (t % tiles_n) * (${WGN}u * ${TN}u) + c * ${TN}u);
}

// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), four at a time: WGSL
// has no erf, and diffusers' GELU is the exact one, 0.5·x·(1 + erf(x/√2)).
fn erf4(x: vec4<f32>) -> vec4<f32> {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let y = 1.0 - poly * exp(-a * a);
  return select(y, -y, x < vec4<f32>(0.0));
}

// σ(x) written so that exp never overflows into inf/inf.
fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(x));
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, x >= vec4<f32>(0.0));
}

// Exact GELU 0.5·x·(1 + erf(x/√2)) of four values (GEGLU's gate).
fn gelu4(v: vec4<f32>) -> vec4<f32> {
  return 0.5 * v * (1.0 + erf4(v * 0.70710678118654752));
}

// The activation of four outputs. Vector-wide on purpose: the epilogue of a
// register-blocked kernel must stay small enough for the shader compiler to
// unroll, or the accumulators leave the registers.
fn act4(v: vec4<f32>) -> vec4<f32> {
#if ACT_SILU
  return v * sigmoid4(v);
#endif
#if ACT_GELU
  return gelu4(v);
#endif
#if ACT_QGELU
  return v * sigmoid4(1.702 * v);
#endif
#if ACT_LEAKY
  return select(0.01 * v, v, v >= vec4<f32>(0.0));
#endif
#if !ACT_SILU
#if !ACT_GELU
#if !ACT_QGELU
#if !ACT_LEAKY
  return v;
#endif
#endif
#endif
#endif
}
