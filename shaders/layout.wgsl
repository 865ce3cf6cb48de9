// layout.wgsl: data movement. Entry points are chosen by one
// define each:
//   COPY      row copy dst[r·dst_stride + j] = src[r·src_stride + j]: one
//             Concat part per dispatch, or a Slice
//   UPSAMPLE  nearest 2× of NHWC x [B, H, W, C]
//   EMBED     rows of an F32 table, or an F16 one (F16=1: two halves per u32);
//             the table may be bound a window of rows at a time (a table
//             larger than a storage binding): each dispatch writes the
//             output rows whose ids fall in its window
//   CONVERT   f32 ↔ f16 with round to nearest even (SRC16 / DST16 say which
//             side is f16; f16 output is written a u32 word at a time)
// f16 bits are converted by hand: WGSL's pack2x16float leaves the rounding
// to the implementation, and some GPUs flush subnormal halves.
#include "common.wgsl"

// binary16 bits (low 16 bits of h) to f32, exactly.
fn f16_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    let v = f32(m) * 5.9604644775390625e-8; // subnormal: m·2^-24
    return select(v, -v, sign != 0u);
  }
  if (e == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
  }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

// f32 to binary16 bits, round to nearest even; overflow gives ±inf, NaN
// stays NaN (as github.com/x448/float16 converts, which the CPU uses).
fn f32_to_f16(f: f32) -> u32 {
  let u = bitcast<u32>(f);
  let sign = (u >> 16u) & 0x8000u;
  let e = (u >> 23u) & 0xffu;
  let m = u & 0x7fffffu;
  if (e == 0xffu) {
    return sign | 0x7c00u | select(0u, 0x200u | (m >> 13u), m != 0u);
  }
  let he = i32(e) - 112; // biased f16 exponent
  if (he >= 31) {
    return sign | 0x7c00u;
  }
  if (he <= 0) {
    if (he < -10) {
      return sign; // below half the smallest subnormal
    }
    let mm = m | 0x800000u;
    let sh = u32(14 - he);
    var h = mm >> sh;
    let rem = mm & ((1u << sh) - 1u);
    let halfway = 1u << (sh - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) {
      h += 1u;
    }
    return sign | h;
  }
  var h = (u32(he) << 10u) | (m >> 13u);
  let rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
    h += 1u; // a carry into the exponent is still correct, up to inf
  }
  return sign | h;
}

#if COPY
struct Params {
  n: u32,          // elements per row
  total: u32,      // elements to copy: rows·n
  src_off: u32,    // elements: first source element within its binding
  src_stride: u32, // elements between source rows
  dst_off: u32,    // elements: first destination element within its binding
  dst_stride: u32, // elements between destination rows
  _pad0: u32,
  _pad1: u32,
}

// Words, not floats: a copy moves bits (f16 weight pairs included) without
// any chance of a NaN being quietened on the way.
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn copy_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.total) {
      return;
    }
    let r = i / p.n;
    let j = i - r * p.n;
    dst[p.dst_off + r * p.dst_stride + j] = src[p.src_off + r * p.src_stride + j];
  }
}
#endif

#if CONCAT2
struct Params {
  n1: u32,      // words per row from a
  n2: u32,      // words per row from b
  total: u32,   // output words: rows·(n1 + n2)
  a_off: u32,   // words: a within its binding
  b_off: u32,   // words: b within its binding
  dst_off: u32, // words: the output within its binding
  _pad0: u32,
  _pad1: u32,
}

// Two parts side by side in one dispatch (the UNet's skip concatenations:
// one fewer dispatch per up-block resnet than a copy per part).
@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn concat2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  let row = p.n1 + p.n2;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.total) {
      return;
    }
    let r = i / row;
    let j = i - r * row;
    if (j < p.n1) {
      dst[p.dst_off + i] = a[p.a_off + r * p.n1 + j];
    } else {
      dst[p.dst_off + i] = b[p.b_off + r * p.n2 + (j - p.n1)];
    }
  }
}
#endif

#if UPSAMPLE
struct Params {
  n: u32,       // output elements: B·2H·2W·C
  c: u32,       // channels
  h: u32,       // input height
  w: u32,       // input width
  x_off: u32,   // elements: x within its binding
  out_off: u32, // elements: out within its binding
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn upsample2x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    let q = i / p.c;
    let ch = i - q * p.c;
    let ox = q % (2u * p.w);
    let q2 = q / (2u * p.w);
    let oy = q2 % (2u * p.h);
    let b = q2 / (2u * p.h);
    out[p.out_off + i] = x[p.x_off + ((b * p.h + oy / 2u) * p.w + ox / 2u) * p.c + ch];
  }
}
#endif

#if EMBED
struct Params {
  n: u32,       // output elements: len(ids)·D
  d: u32,       // row width D
  t_off: u32,   // elements (halves for F16): the table within its binding
  ids_off: u32, // elements: the ids within their binding
  out_off: u32, // elements: out within its binding
  v0: u32,      // first table row the binding holds
  vn: u32,      // table rows the binding holds
  _pad0: u32,
}

#if F16
@group(0) @binding(0) var<storage, read> table: array<u32>;
fn table_at(e: u32) -> f32 {
  return f16_to_f32(table[e >> 1u] >> ((e & 1u) * 16u));
}
#else
@group(0) @binding(0) var<storage, read> table: array<f32>;
fn table_at(e: u32) -> f32 {
  return table[e];
}
#endif
@group(0) @binding(1) var<storage, read> ids: array<u32>; // checked < V on the host
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    let r = i / p.d;
    let j = i - r * p.d;
    let row = ids[p.ids_off + r] - p.v0; // wraps past vn below the window
    if (row < p.vn) {
      out[p.out_off + i] = table_at(p.t_off + row * p.d + j);
    }
  }
}
#endif

#if CONVERT
struct Params {
  n: u32,       // elements
  x_off: u32,   // elements (halves for f16): x within its binding
  out_off: u32, // elements, or u32 words for f16 output: out within its binding
  _pad0: u32,
}

#if SRC16
@group(0) @binding(0) var<storage, read> x: array<u32>;
fn half_at(e: u32) -> u32 {
  return (x[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
}
fn f32_at(e: u32) -> f32 {
  return f16_to_f32(half_at(e));
}
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
fn half_at(e: u32) -> u32 {
  return f32_to_f16(x[e]);
}
fn f32_at(e: u32) -> f32 {
  return x[e];
}
#endif

#if DST16
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

// One thread per output word: halves 2w and 2w + 1 (zero past the end).
@compute @workgroup_size(256)
fn convert(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let w = base + k * 256u;
    let e = 2u * w;
    if (e >= p.n) {
      return;
    }
    var hi = 0u;
    if (e + 1u < p.n) {
      hi = half_at(p.x_off + e + 1u);
    }
    out[p.out_off + w] = half_at(p.x_off + e) | (hi << 16u);
  }
}
#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn convert(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    out[p.out_off + i] = f32_at(p.x_off + i);
  }
}
#endif
#endif
