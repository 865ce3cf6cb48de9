// attention.wgsl: fused multi-head attention with an online softmax
// (flash-style: the Nq×Nk scores never exist), engine/cpu Attention being the
// reference. For batch entry b, head h, query row i:
//
//   s_j = scale·q[b,i,h]·k[b,j,h] + keybias[b,j]     (masked: j > i when CAUSAL)
//   out[b,i,h] = Σ_j softmax(s)_j · v[b,j,h]
//
// q [B, Nq, H·dk], k [B, Nk, H·dk], v [B, Nk, H·dv], out [B, Nq, H·dv]
// (head h owns columns h·d … h·d+d−1), every tensor at an element offset in
// its binding. With SWAP (the Harmony self-attention swap, tensor.Swap), a row
// i of entry b with partner p ≥ 0 and rowmask[b,i] ≠ 0 instead uses
//   SWAP_KV:  keys and values of p, restricted to keymask[p, j] ≠ 0
//   SWAP_MAP: queries and keys of p, its own values
// (key bias follows the entry that supplies the keys).
//
// Entry main: one thread owns four consecutive query rows of one (b, h) and
// a chunk of DVC value columns (a head wider than the chunk limit is split,
// each chunk recomputing q·k); a workgroup of WG threads covers 4·WG rows. It
// walks the keys in blocks of KB: the 4×KB scores of a block live in
// registers, each row keeps its running max m and sum l, and the 4×DVC output
// accumulators are rescaled by exp(m_old − m_new) once per block. Every key
// and value quad loaded feeds all four rows; no workgroup memory, no barriers
// (see matmul.wgsl for why). The four rows travel as the components of a
// vec4 or the columns of a mat4x4; the keys of a block and the value quads
// are written out with #for (named registers, no arrays). Mesa's NIR
// unrolled the earlier loops over arrays anyway (same speed on lavapipe, the
// cold compile ~20 % shorter), but SwiftShader kept those arrays in memory:
// straight-line it runs 1.4–2.5× faster there. The final per-row loop is
// bounded at run time and rotates the state instead.
// Rows whose keys come from two entries (a swap)
// run two key passes, each masking the rows it does not serve; a thread skips
// a pass none of its rows need. With STATS the final (m, l) of every row go
// to `stats` for the probs entry.
//
// Entry probs_main (PROBS_PASS): the head-averaged probabilities of key
// columns [c0, c0+nc): one thread per (b, i, PC columns) recomputes each
// head's scores for its columns and normalizes them with main's (m, l).
//
// Naga (as bundled) sets a `var` declared inside a loop to its initial value
// only once, not on every iteration, so such variables are assigned
// explicitly before use.
//
// Defines: KB, WG, DVC (multiple of 4) and DVC4 = DVC/4, PC (probs columns
// per thread), VEC (dk, dv and all q/k/v offsets multiples of 4: vec4 loads),
// VOUT (dv and out's offset multiples of 4: vec4 stores),
// CAUSAL, KEYBIAS, SWAP, SWAP_KV, SWAP_MAP, STATS, PROBS_PASS.
#include "common.wgsl"

struct Params {
  B: u32,        // batch entries
  nq: u32,       // query rows per entry
  nk: u32,       // key rows per entry
  H: u32,        // heads
  dk: u32,       // head dim of q and k
  dv: u32,       // head dim of v and out
  vchunks: u32,  // value-column chunks of DVC per head
  qblocks: u32,  // workgroups along the query rows (main) / threads-blocks (probs)
  scale: f32,    // multiplies q·k
  tiles: u32,    // workgroups doing work; the rest (grid folding) exit
  c0: u32,       // first probability column
  nc: u32,       // probability columns
  q_off: u32,    // element offsets in the bindings: q
  k_off: u32,    // k
  v_off: u32,    // v
  kb_off: u32,   // keybias
  rm_off: u32,   // swap rowmask
  km_off: u32,   // swap keymask
  o_off: u32,    // out
  s_off: u32,    // stats (m, l) pairs, [B, H, nq, 2]
  p_off: u32,    // probs [B, nq, nc]
  cchunks: u32,  // probs: column chunks of PC per row
  _pad0: u32,
  _pad1: u32,
  partner: array<vec4<i32>, 4>, // swap partner of entry b in partner[b/4][b%4], −1 for none
}

#if VEC
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
#else
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
#endif
#if PROBS_PASS
@group(0) @binding(2) var<storage, read> keybias: array<f32>;
@group(0) @binding(3) var<storage, read> rowmask: array<f32>;
@group(0) @binding(4) var<storage, read> keymask: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> probs: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;
#else
#if VEC
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> v: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> keybias: array<f32>;
@group(0) @binding(4) var<storage, read> rowmask: array<f32>;
@group(0) @binding(5) var<storage, read> keymask: array<f32>;
#if VOUT
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
#endif
#if STATS
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
#else
@group(0) @binding(7) var<uniform> p: Params;
#endif
#endif

// Stands in for −∞: finite, so that m − m_new never computes ∞ − ∞.
const NEG = -3.0e38;

fn partner_of(b: u32) -> i32 {
  return p.partner[b / 4u][b % 4u];
}

// Quad d4 (elements 4·d4 … 4·d4+3) of a q / k row starting at element `row`
// of a head of width `dim`; components past dim read the row's last element
// (in bounds) and are zeroed for q, so they add nothing to q·k.
#if VEC
fn ldq(row: u32, d4: u32, dim: u32) -> vec4<f32> {
  return q[row / 4u + d4];
}
fn ldk(row: u32, d4: u32, dim: u32) -> vec4<f32> {
  return k[row / 4u + d4];
}
#else
fn ldq(row: u32, d4: u32, dim: u32) -> vec4<f32> {
  let d = 4u * d4;
  let last = dim - 1u;
  let r = vec4<f32>(q[row + min(d, last)], q[row + min(d + 1u, last)], q[row + min(d + 2u, last)], q[row + min(d + 3u, last)]);
  return select(vec4<f32>(0.0), r, vec4<u32>(d, d + 1u, d + 2u, d + 3u) < vec4<u32>(dim));
}
fn ldk(row: u32, d4: u32, dim: u32) -> vec4<f32> {
  let d = 4u * d4;
  let last = dim - 1u;
  return vec4<f32>(k[row + min(d, last)], k[row + min(d + 1u, last)], k[row + min(d + 2u, last)], k[row + min(d + 3u, last)]);
}
#endif

// Whether row i of entry b is swapped.
fn swapped(b: u32, i: u32) -> bool {
#if SWAP
  return partner_of(b) >= 0 && rowmask[p.rm_off + b * p.nq + i] != 0.0;
#else
  return false;
#endif
}

#if !PROBS_PASS
#if VEC
fn ldv(row: u32, c4: u32) -> vec4<f32> {
  return v[row / 4u + c4];
}
#else
fn ldv(row: u32, c4: u32) -> vec4<f32> {
  // row is the element index of this thread's first value column; columns
  // past the head's end read its last element (results are not stored).
  let c = 4u * c4;
  let last = p.dv - 1u;
  return vec4<f32>(v[row + min(c, last)], v[row + min(c + 1u, last)], v[row + min(c + 2u, last)], v[row + min(c + 3u, last)]);
}
#endif

// A thread's four query rows travel together as the four components of a
// vec4 (scores, max, sum) or the four columns of a mat4x4 (a quad of q or of
// the output per row), so every per-row quantity has a constant index and
// stays in registers whatever the compiler unrolls.

// Running softmax state: per row max m and sum l; acc<C4>[r] is quad C4 of
// row r's unnormalized output.
var<private> m: vec4<f32>;
var<private> l: vec4<f32>;
#for C4 in 0..${DVC4}
var<private> acc${C4}: mat4x4<f32>;
#endfor
// First element of each row's query (of the entry that supplies it).
var<private> qrow: vec4<u32>;

fn ldq4(d4: u32) -> mat4x4<f32> {
  return mat4x4<f32>(ldq(qrow.x, d4, p.dk), ldq(qrow.y, d4, p.dk), ldq(qrow.z, d4, p.dk), ldq(qrow.w, d4, p.dk));
}

// One pass over the keys of entry kb (values of entry vb) for the rows whose
// component of `serve` is set; key j is also skipped where keymask[km, j] = 0
// (km ≥ 0).
fn key_pass(h: u32, i0: u32, serve: vec4<bool>, kb: u32, vb: u32, km: i32, col0: u32) {
  let dq = p.H * p.dk;
  let dvw = p.H * p.dv;
  let nd4 = (p.dk + 3u) / 4u;
  let rows = vec4<u32>(i0, i0 + 1u, i0 + 2u, i0 + 3u);
#if CAUSAL
  let kend = min(p.nk, i0 + 4u);
#else
  let kend = p.nk;
#endif
  for (var j0 = 0u; j0 < kend; j0 += ${KB}u) {
    // Scores s<J> of key j0+J for the four rows.
#for J in 0..${KB}
    let krow${J} = p.k_off + (kb * p.nk + min(j0 + ${J}u, p.nk - 1u)) * dq + h * p.dk;
    var s${J} = vec4<f32>(0.0);
#endfor
    for (var d4 = 0u; d4 < nd4; d4++) {
      let q4 = ldq4(d4);
#for J in 0..${KB}
      s${J} += ldk(krow${J}, d4, p.dk) * q4;
#endfor
    }
    // Scale, key bias and masks; the block's max per row.
    var bm = vec4<f32>(NEG);
#for J in 0..${KB}
    {
      let j = min(j0 + ${J}u, p.nk - 1u);
#if KEYBIAS
      let bias = keybias[p.kb_off + kb * p.nk + j];
#else
      let bias = 0.0;
#endif
      var key_ok = j0 + ${J}u < p.nk;
      if (km >= 0) {
        key_ok = key_ok && keymask[p.km_off + u32(km) * p.nk + j] != 0.0;
      }
      var live = serve & vec4<bool>(key_ok);
#if CAUSAL
      live = live & (vec4<u32>(j0 + ${J}u) <= rows);
#endif
      s${J} = select(vec4<f32>(NEG), s${J} * p.scale + bias, live);
      bm = max(bm, s${J});
    }
#endfor
    let mn = max(m, bm);
    let corr = exp(m - mn);
    var sum = vec4<f32>(0.0);
#for J in 0..${KB}
    let e${J} = select(vec4<f32>(0.0), exp(s${J} - mn), s${J} != vec4<f32>(NEG));
    sum += e${J};
    let vrow${J} = p.v_off + (vb * p.nk + min(j0 + ${J}u, p.nk - 1u)) * dvw + h * p.dv + col0;
#endfor
    m = mn;
    l = l * corr + sum;
#for C4 in 0..${DVC4}
    {
      var a = acc${C4};
      a[0] *= corr.x;
      a[1] *= corr.y;
      a[2] *= corr.z;
      a[3] *= corr.w;
#for J in 0..${KB}
      {
        let vv = ldv(vrow${J}, ${C4}u);
        a[0] += e${J}.x * vv;
        a[1] += e${J}.y * vv;
        a[2] += e${J}.z * vv;
        a[3] += e${J}.w * vv;
      }
#endfor
      acc${C4} = a;
    }
#endfor
  }
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg_linear(wid, nwg);
  if (t >= p.tiles) {
    return;
  }
  // t = ((b·H + h)·vchunks + vc)·qblocks + qb
  let qb = t % p.qblocks;
  let vc = (t / p.qblocks) % p.vchunks;
  let h = (t / (p.qblocks * p.vchunks)) % p.H;
  let b = t / (p.qblocks * p.vchunks * p.H);
  let i0 = (qb * ${WG}u + lid) * 4u;
  if (i0 >= p.nq) {
    return;
  }
  let col0 = vc * ${DVC}u;
  let dq = p.H * p.dk;

  var swp: vec4<bool>;
  for (var r = 0u; r < 4u; r++) {
    let i = min(i0 + r, p.nq - 1u);
    let sw = swapped(b, i);
    swp[r] = sw;
    var qb_src = b;
#if SWAP_MAP
    if (sw) {
      qb_src = u32(partner_of(b));
    }
#endif
    qrow[r] = p.q_off + (qb_src * p.nq + i) * dq + h * p.dk;
  }
  m = vec4<f32>(NEG);
  l = vec4<f32>(0.0);
  if (!all(swp)) {
    key_pass(h, i0, !swp, b, b, -1, col0);
  }
#if SWAP
  if (any(swp)) {
    let pb = u32(partner_of(b));
#if SWAP_KV
    key_pass(h, i0, swp, pb, pb, i32(pb), col0);
#else
    key_pass(h, i0, swp, pb, b, -1, col0);
#endif
  }
#endif

  // Row i0+r is always component / column 0: the state rotates after each
  // row, so the run-time bounded row loop (not unrolled: it would copy the
  // whole output loop four times) keeps constant register indices.
  let dvw = p.H * p.dv;
  var inv = select(vec4<f32>(0.0), 1.0 / l, l > vec4<f32>(0.0));
  let nrows = min(4u, p.nq - i0);
  for (var r = 0u; r < nrows; r++) {
    let i = i0 + r;
    let base = p.o_off + (b * p.nq + i) * dvw + h * p.dv + col0;
#for C4 in 0..${DVC4}
    {
      let o = acc${C4}[0] * inv.x;
#if VOUT
      if (col0 + ${C4*4}u < p.dv) {
        out[(base + ${C4*4}u) / 4u] = o;
      }
#else
      for (var c = 0u; c < 4u; c++) {
        if (col0 + ${C4*4}u + c < p.dv) {
          out[base + ${C4*4}u + c] = o[c];
        }
      }
#endif
      acc${C4} = mat4x4<f32>(acc${C4}[1], acc${C4}[2], acc${C4}[3], acc${C4}[0]);
    }
#endfor
#if STATS
    if (vc == 0u) {
      let si = p.s_off + ((b * p.H + h) * p.nq + i) * 2u;
      stats[si] = m.x;
      stats[si + 1u] = l.x;
    }
#endif
    inv = inv.yzwx;
    m = m.yzwx;
    l = l.yzwx;
  }
}
#endif

#if PROBS_PASS
// One thread: row i of entry b, probability columns c0 + cc·PC … +PC−1.
@compute @workgroup_size(${WG})
fn probs_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let g = wg_linear(wid, nwg) * ${WG}u + lid;
  if (g >= p.B * p.nq * p.cchunks) {
    return;
  }
  let cc = g % p.cchunks;
  let i = (g / p.cchunks) % p.nq;
  let b = g / (p.cchunks * p.nq);
  let sw = swapped(b, i);
  var qb_src = b;
  var kb = b;
  var km = -1;
  if (sw) {
    kb = u32(partner_of(b));
#if SWAP_MAP
    qb_src = kb;
#endif
#if SWAP_KV
    km = i32(kb);
#endif
  }
  let dq = p.H * p.dk;
  let nd4 = (p.dk + 3u) / 4u;
  let cbeg = cc * ${PC}u;
  // Key-side masks and bias of this thread's columns (same for every head).
  var kadd: array<f32, ${PC}>;
  var kcol: array<u32, ${PC}>;
  for (var c = 0u; c < ${PC}u; c++) {
    let j = p.c0 + min(cbeg + c, p.nc - 1u);
    kcol[c] = j;
#if KEYBIAS
    let bias = keybias[p.kb_off + kb * p.nk + j];
#else
    let bias = 0.0;
#endif
    var live = km < 0 || keymask[p.km_off + u32(max(km, 0)) * p.nk + j] != 0.0;
#if CAUSAL
    live = live && j <= i;
#endif
    kadd[c] = select(NEG, bias, live);
  }
  var pr: array<f32, ${PC}>;
  for (var h = 0u; h < p.H; h++) {
    let qrow = p.q_off + (qb_src * p.nq + i) * dq + h * p.dk;
    var s: array<f32, ${PC}>;
    for (var c = 0u; c < ${PC}u; c++) {
      s[c] = 0.0;
    }
    for (var d4 = 0u; d4 < nd4; d4++) {
      let qv = ldq(qrow, d4, p.dk);
      for (var c = 0u; c < ${PC}u; c++) {
        s[c] += dot(qv, ldk(p.k_off + (kb * p.nk + kcol[c]) * dq + h * p.dk, d4, p.dk));
      }
    }
    let si = p.s_off + ((b * p.H + h) * p.nq + i) * 2u;
    let mh = stats[si];
    let inv = select(0.0, 1.0 / stats[si + 1u], stats[si + 1u] > 0.0);
    for (var c = 0u; c < ${PC}u; c++) {
      pr[c] += select(0.0, exp(s[c] * p.scale + kadd[c] - mh) * inv, kadd[c] != NEG);
    }
  }
  let base = p.p_off + (b * p.nq + i) * p.nc;
  for (var c = 0u; c < ${PC}u; c++) {
    if (cbeg + c < p.nc) {
      probs[base + cbeg + c] = pr[c] / f32(p.H);
    }
  }
}
#endif
