// selftest.wgsl: the device layer's own probe kernel. out[i] = a[i] * p.scale + f32(i)
// over a folded grid; it proves upload, dispatch, grid folding, uniform
// params and read-back before any real kernel runs.
#include "common.wgsl"

struct Params {
  n: u32,       // elements to write
  scale: f32,   // multiplier applied to a
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) {
    return;
  }
  out[i] = a[i] * p.scale + f32(i);
}
