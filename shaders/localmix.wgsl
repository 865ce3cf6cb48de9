// localmix.wgsl: LocalMix, the gated per-head term of ELITE's
// cross-attention. Entry points are chosen by one define each:
//   ROWMAX  one workgroup per batch entry b: s[b] = w[b] / max(gate[b]), or
//           0 when w[b] = 0 or the maximum is not positive
//   MIX     out[i] = o[i] + s[b]·gate[b, n, h]·x[i] for element i of
//           (b, n, h, c); four elements 256 apart per thread
#include "common.wgsl"

#if ROWMAX
struct Params {
  b: u32,      // batch entries
  m: u32,      // gate elements per entry: N·H
  g_off: u32,  // elements: gate within its binding
  w_off: u32,  // elements: w within its binding
  s_off: u32,  // elements: s within its binding
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> s: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn rowmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let bi = wg_linear(wid, nwg);
  if (bi >= p.b) {
    return; // uniform per workgroup: the barriers below stay uniform
  }
  let base = p.g_off + bi * p.m;
  var mx = gate[base]; // m ≥ 1
  for (var i = lid; i < p.m; i += 256u) {
    mx = max(mx, gate[base + i]);
  }
  red[lid] = mx;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) {
      red[lid] = max(red[lid], red[lid + k]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let wb = w[p.w_off + bi];
    var sb = 0.0;
    if (wb != 0.0 && red[0] > 0.0) {
      sb = wb / red[0];
    }
    s[p.s_off + bi] = sb;
  }
}
#endif

#if MIX
struct Params {
  n: u32,       // elements of o, x and out
  d: u32,       // head width
  per_b: u32,   // elements per batch entry: N·H·d
  o_off: u32,   // elements: o within its binding
  x_off: u32,   // elements: x within its binding
  g_off: u32,   // elements: gate within its binding
  s_off: u32,   // elements: s within its binding
  out_off: u32, // elements: out within its binding
}

@group(0) @binding(0) var<storage, read> o: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> s: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(256)
fn mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    let f = s[p.s_off + i / p.per_b] * gate[p.g_off + i / p.d];
    out[p.out_off + i] = o[p.o_off + i] + f * x[p.x_off + i];
  }
}
#endif
