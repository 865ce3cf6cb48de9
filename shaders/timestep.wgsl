// timestep.wgsl: the sinusoidal timestep embedding of diffusers'
// get_timestep_embedding: out[r, i] = sin(arg[r, i]) and
// out[r, half + i] = cos(arg[r, i]) (swapped when p.flip), a zero last column
// when dim is odd.
//
// The host computes arg = t·f_i exactly as the reference does in f32 (f_i
// needs a correctly rounded exp, which no GPU promises) and reduces it by
// multiples of 2π in float64 before upload, so |arg| ≤ π here; act_sincos
// then does the rest with its own polynomials (WGSL's sin/cos are only
// promised to 2^-11). Whatever t is, the error stays near 2e-7: the f32
// rounding of the reduced argument plus the polynomials'.
#include "common.wgsl"
#include "act.wgsl"

struct Params {
  n: u32,       // output elements: rows·dim
  dim: u32,     // embedding width
  nfreq: u32,   // frequencies per row: dim/2
  flip: u32,    // 1: [cos, sin]; 0: [sin, cos]
  arg_off: u32, // elements: the reduced arguments [rows, half] within their binding
  out_off: u32, // elements: out within its binding
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> args: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn timestep(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * 256u + lid;
  if (i >= p.n) {
    return;
  }
  let r = i / p.dim;
  let j = i - r * p.dim;
  var v = 0.0;
  if (j < 2u * p.nfreq) {
    let second = j >= p.nfreq;
    let sc = act_sincos(args[p.arg_off + r * p.nfreq + select(j, j - p.nfreq, second)]);
    // sin in the first half unless flipped.
    v = select(sc.x, sc.y, second != (p.flip != 0u));
  }
  out[p.out_off + i] = v;
}
