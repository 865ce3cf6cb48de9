// norm.wgsl: GroupNorm and LayerNorm (issue 2 §3), statistics in f32.
//
// GroupNorm over NHWC x [B, S, C] runs as three kernels so that it scales
// from 4×4 maps to the VAE's 512×512×128 (a million elements per group):
//   GN_STATS  one workgroup per (batch entry, block of groups, chunk of
//             positions) reads the chunk's rows of the block's channels
//             (contiguous, so reads coalesce) and leaves one Welford partial
//             (count, mean, M2) per group and chunk; a tensor larger than a
//             storage binding is read in windows of whole chunks, one
//             dispatch each, into the same partials;
//   GN_MERGE  one workgroup per (batch entry, group) merges the chunks'
//             partials with Chan's formula and writes the statistics;
//   GN_APPLY  elementwise (x − mean)·rstd·γ + β, then SiLU when SILU.
// LayerNorm (LN) is one kernel: a row per 2^k threads, a two-pass mean and
// variance with tree sums in workgroup memory.
//
// Both work on x − K, K being the group's (row's) first element: when the
// mean dwarfs the spread (x in [1000, 1001)), the f32 mean itself is off by
// half an ulp of 1000 and every x − mean with it; shifted, the mean of
// x − K is small and exact to ~1e-7 of the spread, and x − K is exact.
// Entry points are chosen by one define each (their bindings differ).
#include "common.wgsl"
#include "act.wgsl"

// Welford state: count, mean, sum of squared deviations.
struct Stat {
  n: f32,
  m: f32,
  q: f32,
}

// Chan et al.'s merge of two Welford states.
fn stat_merge(a: Stat, b: Stat) -> Stat {
  if (b.n == 0.0) {
    return a;
  }
  if (a.n == 0.0) {
    return b;
  }
  let n = a.n + b.n;
  let d = b.m - a.m;
  let f = b.n / n;
  return Stat(n, a.m + d * f, a.q + b.q + d * d * a.n * f);
}

// Welford states of GN_STATS and GN_MERGE (3 KiB).
var<workgroup> sh_n: array<f32, 256>;
var<workgroup> sh_m: array<f32, 256>;
var<workgroup> sh_q: array<f32, 256>;

fn sh_load(i: u32) -> Stat {
  return Stat(sh_n[i], sh_m[i], sh_q[i]);
}

fn sh_store(i: u32, s: Stat) {
  sh_n[i] = s.n;
  sh_m[i] = s.m;
  sh_q[i] = s.q;
}

#if GN_STATS
struct Params {
  s: u32,        // positions per batch entry (H·W)
  c: u32,        // channels
  cg: u32,       // channels per group
  groups: u32,   // groups G
  gb: u32,       // groups per block (read side by side by one workgroup)
  blocks: u32,   // blocks per batch entry, ⌈G/gb⌉
  chunk: u32,    // positions per workgroup
  chunks: u32,   // chunks per batch entry, ⌈S/chunk⌉
  nc: u32,       // thread columns (channels read side by side), ≤ 256
  rows: u32,     // thread rows, ⌊256/nc⌋
  rows_p2: u32,  // rows rounded up to a power of two
  w: u32,        // thread columns per group, min(cg, nc)
  w_p2: u32,     // w rounded up to a power of two
  total: u32,    // workgroups: B·blocks·chunks
  x_off: u32,    // elements: x within its binding
  part_off: u32, // vec4s: the partials within their binding
  part_stride: u32, // partials per (batch entry, group): the chunks of the whole tensor
  chunk0: u32,   // index of this dispatch's first chunk among them (windows of a big tensor)
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<vec4<f32>>; // [B, G, part_stride] (n, mean, M2, K)
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn gn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let wg = wg_linear(wid, nwg);
  if (wg >= p.total) {
    return;
  }
  let chunk = wg % p.chunks;
  let rest = wg / p.chunks;
  let blk = rest % p.blocks;
  let b = rest / p.blocks;
  let g0 = blk * p.gb;
  let ng = min(p.gb, p.groups - g0);
  let span = ng * p.cg;
  let col = lid % p.nc;
  let row = lid / p.nc;
  let p0 = chunk * p.chunk;
  let p1 = min(p0 + p.chunk, p.s);
  // Each thread keeps one Welford state: its channels col, col + nc, …
  // all lie in one group (nc < span only when a block is one group), whose
  // shift K is at position 0, first channel.
  let base = p.x_off + b * p.s * p.c + g0 * p.cg;
  let j = col / p.w;
  let k = x[base + min(j, ng - 1u) * p.cg];
  var st = Stat(0.0, 0.0, 0.0);
  if (row < p.rows) {
    for (var pos = p0 + row; pos < p1; pos += p.rows) {
      let rb = base + pos * p.c;
      for (var ch = col; ch < span; ch += p.nc) {
        let v = x[rb + ch] - k;
        st.n += 1.0;
        let d = v - st.m;
        st.m += d / st.n;
        st.q += d * (v - st.m);
      }
    }
  }
  sh_store(lid, st);
  workgroupBarrier();
  // Fold the rows of each column into row 0.
  for (var h = p.rows_p2 / 2u; h > 0u; h /= 2u) {
    if (row < h && row + h < p.rows) {
      sh_store(lid, stat_merge(sh_load(lid), sh_load(lid + h * p.nc)));
    }
    workgroupBarrier();
  }
  // Fold the w columns of each group into its first column.
  let lane = col % p.w;
  for (var h = p.w_p2 / 2u; h > 0u; h /= 2u) {
    if (row == 0u && lane < h && lane + h < p.w && col + h < p.nc) {
      sh_store(lid, stat_merge(sh_load(lid), sh_load(lid + h)));
    }
    workgroupBarrier();
  }
  if (row == 0u && lane == 0u && j < ng) {
    let r = sh_load(lid);
    part[p.part_off + (b * p.groups + g0 + j) * p.part_stride + p.chunk0 + chunk] = vec4<f32>(r.n, r.m, r.q, k);
  }
}
#endif

#if GN_MERGE
struct Params {
  bg: u32,        // (batch entry, group) pairs: B·G
  chunks: u32,    // partials per pair
  part_off: u32,  // vec4s: the partials within their binding
  stats_off: u32, // vec4s: the statistics within their binding
  eps: f32,       // added to the variance
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> stats: array<vec4<f32>>; // [B, G] (K, mean of x − K, rstd, 0)
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn gn_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let bg = wg_linear(wid, nwg);
  if (bg >= p.bg) {
    return;
  }
  var st = Stat(0.0, 0.0, 0.0);
  let base = p.part_off + bg * p.chunks;
  // Partials computed in different windows of a tensor larger than a
  // binding carry different shifts K (each window's first row): re-express
  // each mean against the first partial's K0. K − K0 is exact whenever the
  // two are within a factor of two (Sterbenz), which covers the far-mean
  // case the shift exists for; within one window K = K0 and nothing changes.
  let k0 = part[base].w;
  for (var j = lid; j < p.chunks; j += 256u) {
    let v = part[base + j];
    st = stat_merge(st, Stat(v.x, v.y + (v.w - k0), v.z));
  }
  sh_store(lid, st);
  workgroupBarrier();
  for (var h = 128u; h > 0u; h /= 2u) {
    if (lid < h) {
      sh_store(lid, stat_merge(sh_load(lid), sh_load(lid + h)));
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let r = sh_load(0u);
    // The reference's biased variance: M2 / n.
    stats[p.stats_off + bg] = vec4<f32>(part[base].w, r.m, inverseSqrt(r.q / r.n + p.eps), 0.0);
  }
}
#endif

#if GN_APPLY
struct Params {
  n: u32,         // elements of x: B·S·C
  c: u32,         // channels
  s: u32,         // positions per batch entry
  cg: u32,        // channels per group
  groups: u32,    // groups G
  x_off: u32,     // elements: x within its binding
  g_off: u32,     // elements: gamma within its binding
  b_off: u32,     // elements: beta within its binding
  stats_off: u32, // vec4s: the statistics within their binding
  out_off: u32,   // elements: out within its binding
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec4<f32>>; // (K, mean of x − K, rstd, 0)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

// Four elements per thread, 256 apart, so reads and writes stay coalesced.
@compute @workgroup_size(256)
fn gn_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let base = wg_linear(wid, nwg) * 1024u + lid;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k * 256u;
    if (i >= p.n) {
      return;
    }
    let pc = i / p.c;
    let ch = i - pc * p.c;
    let st = stats[p.stats_off + (pc / p.s) * p.groups + ch / p.cg];
    var y = ((x[p.x_off + i] - st.x) - st.y) * st.z * gamma[p.g_off + ch] + beta[p.b_off + ch];
#if SILU
    y = act_silu(y);
#endif
    out[p.out_off + i] = y;
  }
}
#endif

#if LN
struct Params {
  rows: u32,    // rows (product of all dims but the last)
  c: u32,       // row width
  tpr: u32,     // threads per row, a power of two ≤ 256
  x_off: u32,   // elements: x within its binding
  g_off: u32,   // elements: gamma within its binding
  b_off: u32,   // elements: beta within its binding
  out_off: u32, // elements: out within its binding
  eps: f32,     // added to the variance
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> sh: array<f32, 256>;

// Sums sh over each row's tpr threads; every thread gets its row's total.
fn row_sum(lid: u32, lane: u32, v: f32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var h = p.tpr / 2u; h > 0u; h /= 2u) {
    if (lane < h) {
      sh[lid] += sh[lid + h];
    }
    workgroupBarrier();
  }
  let r = sh[lid - lane];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(256)
fn ln_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = wg_linear(wid, nwg) * (256u / p.tpr) + lid / p.tpr;
  let lane = lid % p.tpr;
  // Rows past the end (and surplus workgroups of a folded grid) still take
  // part in the barriers, contributing nothing.
  let live = row < p.rows;
  let xb = p.x_off + row * p.c;
  var k = 0.0;
  var s = 0.0;
  if (live) {
    k = x[xb];
    for (var j = lane; j < p.c; j += p.tpr) {
      s += x[xb + j] - k;
    }
  }
  let mean = row_sum(lid, lane, s) / f32(p.c); // of x − k
  var q = 0.0;
  if (live) {
    for (var j = lane; j < p.c; j += p.tpr) {
      let d = (x[xb + j] - k) - mean;
      q += d * d;
    }
  }
  let rstd = inverseSqrt(row_sum(lid, lane, q) / f32(p.c) + p.eps);
  if (live) {
    let ob = p.out_off + row * p.c;
    for (var j = lane; j < p.c; j += p.tpr) {
      out[ob + j] = ((x[xb + j] - k) - mean) * rstd * gamma[p.g_off + j] + beta[p.b_off + j];
    }
  }
}
#endif
