// elementwise.wgsl: activations, Scale, GEGLU and broadcasting Add/Mul.
// Entry points are chosen by one define each:
//   UNARY   out = act_ACT(x·scale + shift) (Activate: scale 1, shift 0;
//           Scale: ACT=none)
//   GEGLU   out[r, j] = x[r, j]·GELU(x[r, F + j])
//   BINARY  out = op_OP(a, b) with b broadcast through per-dim strides
// Every thread handles four elements 256 apart (coalesced), so a workgroup
// covers 1024 elements.
#include "common.wgsl"
#include "act.wgsl"

#if UNARY
struct Params {
  n: u32,       // elements
  x_off: u32,   // elements: x within its binding
  out_off: u32, // elements: out within its binding
  scale: f32,   // multiplies x before the activation
  shift: f32,   // added after scaling
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    out[p.out_off + i] = act_${ACT}(x[p.x_off + i] * p.scale + p.shift);
  }
}
#endif

#if GEGLU
struct Params {
  n: u32,       // output elements: rows·F
  f: u32,       // output width F (the input rows are 2F wide)
  x_off: u32,   // elements: x within its binding
  out_off: u32, // elements: out within its binding
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn geglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    let r = i / p.f;
    let xi = p.x_off + i + r * p.f; // row r starts at 2F·r = i − j + F·r
    out[p.out_off + i] = x[xi] * act_gelu(x[xi + p.f]);
  }
}
#endif

#if BINARY
struct Params {
  n: u32,       // elements of a and out
  rank: u32,    // dims after merging, 1…8
  a_off: u32,   // elements: a within its binding
  b_off: u32,   // elements: b within its binding
  out_off: u32, // elements: out within its binding
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  dims: array<vec4<u32>, 2>, // a's merged dims, outermost first
  bstr: array<vec4<u32>, 2>, // elements: b's stride per merged dim (0 = broadcast)
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn op_add(x: f32, y: f32) -> f32 {
  return x + y;
}

fn op_mul(x: f32, y: f32) -> f32 {
  return x * y;
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    // Walk the index from the innermost dim out, summing b's offset.
    var rem = i;
    var bo = 0u;
    for (var d = p.rank; d > 0u; d--) {
      let dd = d - 1u;
      let n = p.dims[dd / 4u][dd % 4u];
      let q = rem / n;
      bo += (rem - q * n) * p.bstr[dd / 4u][dd % 4u];
      rem = q;
    }
    out[p.out_off + i] = op_${OP}(a[p.a_off + i], b[p.b_off + bo]);
  }
}
#endif
