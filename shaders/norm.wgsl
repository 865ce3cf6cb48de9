// norm.wgsl: GroupNorm and LayerNorm, statistics in f32.
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
// Groups of up to a few hundred thousand elements (the whole SD UNet at
// 512²) take one kernel instead, GN_FUSED: one workgroup per (batch entry,
// group) sums, sums the squared deviations and applies, reading the group
// three times; on CPU-emulated adapters a dispatch costs more than the reads.
// LayerNorm (LN) is one kernel: a row per 2^k threads, a two-pass mean and
// variance with tree sums in workgroup memory; or (LN_ROW) a row per thread
// with no workgroup memory and no barrier, for CPU adapters and narrow rows.
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

#if GN_FUSED
struct Params {
  s: u32,       // positions per batch entry (H·W)
  c: u32,       // channels
  cg: u32,      // channels per group
  groups: u32,  // groups G
  bg: u32,      // workgroups with work: B·G
  nc: u32,      // thread columns: min(cg, GNF_WG), or cg/4 quads with VEC
  rows: u32,    // thread rows: ⌊GNF_WG/nc⌋
  x_off: u32,   // elements: x within its binding (a multiple of 4 with VEC)
  g_off: u32,   // elements: gamma within its binding
  b_off: u32,   // elements: beta within its binding
  out_off: u32, // elements: out within its binding (a multiple of 4 with VEC)
  eps: f32,     // added to the variance
}

// VEC (cg % 4 == 0, aligned offsets): a thread column reads a quad of
// channels.
#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
#if VEC
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif
@group(0) @binding(4) var<uniform> p: Params;

#if VEC
alias V = vec4<f32>;
const W = 4u;
fn hsum(v: V) -> f32 {
  return v.x + v.y + v.z + v.w;
}
#else
alias V = f32;
const W = 1u;
fn hsum(v: V) -> f32 {
  return v;
}
#endif

// Partial sums of the workgroup's threads, four to a vec4.
var<workgroup> part: array<vec4<f32>, ${GNF_WG4}>;

// Sums v over the workgroup. One barrier to publish the partials, every
// thread adds them all up (GNF_WG/4 vector reads, broadcast on a GPU), and
// one barrier before part is written again: on lavapipe a barrier costs
// far more than the reads, so no tree.
fn wg_sum(lid: u32, v: f32) -> f32 {
  part[lid / 4u][lid % 4u] = v;
  workgroupBarrier();
  var t = vec4<f32>(0.0);
  for (var i = 0u; i < ${GNF_WG4}u; i++) {
    t += part[i];
  }
  workgroupBarrier();
  return t.x + t.y + t.z + t.w;
}

@compute @workgroup_size(${GNF_WG})
fn gn_fused(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let t = wg_linear(wid, nwg);
  // Surplus workgroups of a folded grid exit as a whole: no barrier is
  // skipped by part of a workgroup.
  if (t >= p.bg) {
    return;
  }
  let b = t / p.groups;
  let g = t % p.groups;
  let col = lid % p.nc;
  let row = lid / p.nc;
  let live = row < p.rows;
  let ncg = p.cg / W;            // units of a group's row
  let cs = p.c / W;              // units between positions
  let base = (p.x_off + (b * p.s * p.c + g * p.cg)) / W;
  // Shift by the group's first element (see the top of the file).
#if VEC
  let k = x[base].x;
#else
  let k = x[base];
#endif
  var s = V(0.0);
  if (live) {
    for (var pos = row; pos < p.s; pos += p.rows) {
      for (var ch = col; ch < ncg; ch += p.nc) {
        s += x[base + pos * cs + ch] - k;
      }
    }
  }
  let n = f32(p.s * p.cg);
  let mean = wg_sum(lid, hsum(s)) / n; // of x − k
  var q = V(0.0);
  if (live) {
    for (var pos = row; pos < p.s; pos += p.rows) {
      for (var ch = col; ch < ncg; ch += p.nc) {
        let d = (x[base + pos * cs + ch] - k) - mean;
        q += d * d;
      }
    }
  }
  // The reference's biased variance.
  let rstd = inverseSqrt(wg_sum(lid, hsum(q)) / n + p.eps);
  if (!live) {
    return;
  }
  let obase = (p.out_off + (b * p.s * p.c + g * p.cg)) / W;
  for (var ch = col; ch < ncg; ch += p.nc) {
    let c0 = g * p.cg + ch * W;
#if VEC
    let ga = vec4<f32>(gamma[p.g_off + c0], gamma[p.g_off + c0 + 1u], gamma[p.g_off + c0 + 2u], gamma[p.g_off + c0 + 3u]) * rstd;
    let be = vec4<f32>(beta[p.b_off + c0], beta[p.b_off + c0 + 1u], beta[p.b_off + c0 + 2u], beta[p.b_off + c0 + 3u]);
#else
    let ga = gamma[p.g_off + c0] * rstd;
    let be = beta[p.b_off + c0];
#endif
    for (var pos = row; pos < p.s; pos += p.rows) {
      var y = ((x[base + pos * cs + ch] - k) - mean) * ga + be;
#if SILU
#if VEC
      y = vec4<f32>(act_silu(y.x), act_silu(y.y), act_silu(y.z), act_silu(y.w));
#else
      y = act_silu(y);
#endif
#endif
      out[obase + pos * cs + ch] = y;
    }
  }
}
#endif

#if LN_ROW
struct Params {
  rows: u32,    // rows (product of all dims but the last)
  c: u32,       // row width
  tpr: u32,     // unused (LN's layout)
  x_off: u32,   // elements: x within its binding (a multiple of 4 with VEC)
  g_off: u32,   // elements: gamma within its binding
  b_off: u32,   // elements: beta within its binding
  out_off: u32, // elements: out within its binding (a multiple of 4 with VEC)
  eps: f32,     // added to the variance
}

// VEC: c % 4 == 0 and x, out aligned: quads along the row.
#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
alias V = vec4<f32>;
const W = 4u;
fn hsum(v: V) -> f32 {
  return v.x + v.y + v.z + v.w;
}
fn ldg(j: u32) -> V {
  let i = p.g_off + 4u * j;
  return vec4<f32>(gamma[i], gamma[i + 1u], gamma[i + 2u], gamma[i + 3u]);
}
fn ldb(j: u32) -> V {
  let i = p.b_off + 4u * j;
  return vec4<f32>(beta[i], beta[i + 1u], beta[i + 2u], beta[i + 3u]);
}
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
alias V = f32;
const W = 1u;
fn hsum(v: V) -> f32 {
  return v;
}
fn ldg(j: u32) -> V {
  return gamma[p.g_off + j];
}
fn ldb(j: u32) -> V {
  return beta[p.b_off + j];
}
#endif
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn ln_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let row = wg_linear(wid, nwg) * 64u + lid;
  if (row >= p.rows) {
    return;
  }
  let n = p.c / W;
  let xb = (p.x_off + row * p.c) / W;
#if VEC
  let k = x[xb].x;
#else
  let k = x[xb];
#endif
  // Four running sums with VEC: a shorter chain of rounding errors.
  var s = V(0.0);
  for (var j = 0u; j < n; j++) {
    s += x[xb + j] - k;
  }
  let mean = hsum(s) / f32(p.c); // of x − k
  var q = V(0.0);
  for (var j = 0u; j < n; j++) {
    let d = (x[xb + j] - k) - mean;
    q += d * d;
  }
  let rstd = inverseSqrt(hsum(q) / f32(p.c) + p.eps);
  let ob = (p.out_off + row * p.c) / W;
  for (var j = 0u; j < n; j++) {
    out[ob + j] = ((x[xb + j] - k) - mean) * rstd * ldg(j) + ldb(j);
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
