// matmul.wgsl: Linear with its fused epilogue (engine/cpu Linear is the
// reference):
//
//   out[m, n] = Act(Σ_k x[m, k]·w[n, k] + bias[n]) + res[m, n]
//
// x [M, K] f32, w [N, K] f32 or f16 (PyTorch's [out, in]), bias [N],
// res and out [M, N]. Each tensor starts at an element offset inside its
// binding (views); the offsets travel in Params. Two output forms:
//   SPLIT  out is [N/split, M, split]: column n of row m goes to slab
//          n / split (one fused q/k/v projection yields three contiguous
//          tensors)
//   GEGLU  w is [2N, K], value rows then gate rows; out[m, n] =
//          (value + bias[n])·GELU(gate + bias[N + n]) (diffusers' GEGLU
//          feed-forward, no [M, 2N] intermediate)
//
// Design, for CPU-emulated adapters first (lavapipe, SwiftShader): there a
// storage-buffer load is emulated lane by lane (Mesa 22's llvmpipe loops over
// the 8 SIMD lanes with an exec-mask test and a bounds check per component:
// ~50 instructions per lane for a vec4, against one vector instruction per
// 8-lane FMA), a barrier is a coroutine switch, and registers are cheap. So
// no workgroup memory and no barriers: a workgroup of WGM×WGN threads covers
// a (WGM·TM)×(WGN·TN) output tile, each thread keeps a TM×TN block of f32
// accumulators and walks K a quad (or, F16 with W8, an octet) at a time:
// TM + TN loads feed TM·TN four- (eight-) element dot products. The block is
// written out straight-line with #for (named registers, no arrays): Mesa's
// loop unroller gives up on big bodies, and an array it does not unroll
// leaves the registers for scratch memory. W8 reads f16 weights as
// vec4<u32>, eight halves per load: the most values one emulated load
// brings. The epilogue's row loop is bounded at run time and always writes
// row 0 while the rows shift down (unrolled, the activation copied TM times
// outgrew what the compiler keeps in registers). On real GPUs this is a
// plain register-blocked GEMM whose operands come from cache. With
// subgroups (SG) the threads of a subgroup share one column block: each lane
// loads and widens 1/SG of its weight rows and subgroupBroadcast hands them
// to the others, so a thread's weight loads drop SG-fold (SwiftShader,
// subgroups of 4: the widest Linear 1.4×, the medium UNet 1.2–1.4×).
//
// Defines (compile-time facts; shapes are in Params):
//   TM, TN, WGM, WGN  register block per thread and thread grid (WGM·WGN
//                     threads); TN4 = TN/4 (TN a multiple of 4)
//   VEC               1: x and w rows are read as vec4 (K % 4 == 0 and both
//                     element offsets multiples of 4); else scalars plus a
//                     K % 4 tail
//   W8                with F16 and VEC: w read as vec4<u32> (K % 8 == 0, w's
//                     offset a multiple of 8), x as pairs of vec4
//   F16               w holds binary16 pairs in u32 words, widened with
//                     unpack2x16float (any element offset, odd ones included)
//   F16N              w is array<f16> (needs shader-f16; values are widened to
//                     f32 on load: the accumulation stays f32)
//   BIAS, RES         read bias / res
//   ACT_*             activation (epilogue.wgsl)
//   VOUT              res and out are read / written as vec4 (N % 4 == 0, and
//                     split % 4 == 0 with SPLIT, offsets multiples of 4)
//   SPLIT, GEGLU      output forms (above)
//   SG, SGL           subgroups of SG lanes (VEC only; engine/gpu's probe
//                     vouched for SG consecutive invocations per subgroup):
//                     the threads of a subgroup hold the same columns and
//                     different rows, so each lane loads SGL = ⌈TN/SG⌉ of
//                     the TN weight rows and subgroupBroadcast hands them
//                     round: TN/SG loads per lane instead of TN
#if F16N
enable f16;
#endif
#if SG
enable subgroups;
#endif
#include "common.wgsl"
#include "epilogue.wgsl"

struct Params {
  M: u32,       // rows of x and out
  N: u32,       // output features (rows of w; with GEGLU half of them)
  K: u32,       // input features
  tiles_n: u32, // workgroup tiles along N: ⌈N / (WGN·TN)⌉
  tiles: u32,   // tiles in all; workgroups past it (grid folding) exit
  x_off: u32,   // element offset of x in its binding (a multiple of 4 with VEC)
  w_off: u32,   // element offset of w, in w's elements (f32 or f16)
  b_off: u32,   // element offset of bias
  r_off: u32,   // element offset of res
  o_off: u32,   // element offset of out
  split: u32,   // SPLIT: output columns per slab
  _pad0: u32,
}

#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
#if F16
#if W8
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
#else
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
#endif
#endif
#if F16N
@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;
#endif
#if !F16
#if !F16N
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
#endif
#endif
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
#if F16
@group(0) @binding(1) var<storage, read> w: array<u32>;
#endif
#if F16N
@group(0) @binding(1) var<storage, read> w: array<f16>;
#endif
#if !F16
#if !F16N
@group(0) @binding(1) var<storage, read> w: array<f32>;
#endif
#endif
#endif
@group(0) @binding(2) var<storage, read> bias: array<f32>;
#if VOUT
@group(0) @binding(3) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#endif
@group(0) @binding(5) var<uniform> p: Params;

const TM = ${TM}u;
const TN = ${TN}u;
const WGN = ${WGN}u;

#if VEC
// Row bases are in load units (vec4; vec4<u32> octets of w with W8); q
// counts quads along K.
fn ldx(base: u32, q: u32) -> vec4<f32> {
  return x[base + q];
}
fn ldw(base: u32, q: u32) -> vec4<f32> {
#if F16
  let h = w[base + q];
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
#endif
#if F16N
  return vec4<f32>(w[base + q]);
#endif
#if !F16
#if !F16N
  return w[base + q];
#endif
#endif
}
#else
// Row bases are element indices.
fn ldx(base: u32, q: u32) -> vec4<f32> {
  let e = base + 4u * q;
  return vec4<f32>(x[e], x[e + 1u], x[e + 2u], x[e + 3u]);
}
fn w1(e: u32) -> f32 {
#if F16
  return unpack2x16float(w[e >> 1u])[e & 1u];
#endif
#if F16N
  return f32(w[e]);
#endif
#if !F16
#if !F16N
  return w[e];
#endif
#endif
}
fn ldw(base: u32, q: u32) -> vec4<f32> {
  let e = base + 4u * q;
  return vec4<f32>(w1(e), w1(e + 1u), w1(e + 2u), w1(e + 3u));
}
#endif

// Element index of out[m, n] (and of res with the plain layout).
fn out_index(m: u32, n: u32) -> u32 {
#if SPLIT
  return p.o_off + (n / p.split) * (p.M * p.split) + m * p.split + n % p.split;
#else
  return p.o_off + m * p.N + n;
#endif
}

// Writes four outputs of row m from column n on.
fn store4(m: u32, n: u32, v: vec4<f32>) {
#if VOUT
  // N % 4 == 0: the quad is inside the row or past it as a whole.
  if (n < p.N) {
#if RES
    out[out_index(m, n) / 4u] = v + res[(p.r_off + m * p.N + n) / 4u];
#else
    out[out_index(m, n) / 4u] = v;
#endif
  }
#else
  for (var c = 0u; c < 4u; c++) {
    if (n + c < p.N) {
      var o = v[c];
#if RES
      o += res[p.r_off + m * p.N + n + c];
#endif
      out[out_index(m, n + c)] = o;
    }
  }
#endif
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
#if SG
        @builtin(subgroup_invocation_id) lane: u32,
#endif
        @builtin(local_invocation_index) lid: u32) {
  // The early return is uniform across the workgroup (subgroupBroadcast
  // below needs every lane).
  let t = wg_linear(wid, nwg);
  if (t >= p.tiles) {
    return;
  }
  let origin = block_origin(t, p.tiles_n, lid);
  let m0 = origin.x;
  let n0 = origin.y;

  // Row strides and offsets in load units. Rows past M / N read row M−1 /
  // N−1 (in bounds, results dropped), so the inner loop has no branches.
#if VEC
  let xs = p.K / 4u;
  let xo = p.x_off / 4u;
#if W8
  let ws = p.K / 8u;
  let wo = p.w_off / 8u;
#else
  let ws = p.K / 4u;
  let wo = p.w_off / 4u;
#endif
#else
  let xs = p.K;
  let xo = p.x_off;
  let ws = p.K;
  let wo = p.w_off;
#endif
#for I in 0..${TM}
  let xb${I} = xo + min(m0 + ${I}u, p.M - 1u) * xs;
#endfor
  // Column 4·Q + C of the block is w's row wb<Q>_<C> (gate row gb<Q>_<C>).
#for Q in 0..${TN4}
#for C in 0..4
  let wb${Q}_${C} = wo + min(n0 + ${Q*4}u + ${C}u, p.N - 1u) * ws;
#if GEGLU
  let gb${Q}_${C} = wb${Q}_${C} + p.N * ws;
#endif
#endfor
#endfor
#if SG
  // This lane's share of the block's columns: column L·SG + lane (clamped
  // into the block when SG > TN; the copy is never broadcast).
#for L in 0..${SGL}
  let sb${L} = wo + min(n0 + min(${L*SG}u + lane, TN - 1u), p.N - 1u) * ws;
#if GEGLU
  let sg${L} = sb${L} + p.N * ws;
#endif
#endfor
#endif

  // acc<I>_<Q>: row m0+I, columns n0+4Q … n0+4Q+3 (gac: the gate's).
#for I in 0..${TM}
#for Q in 0..${TN4}
  var acc${I}_${Q} = vec4<f32>(0.0);
#if GEGLU
  var gac${I}_${Q} = vec4<f32>(0.0);
#endif
#endfor
#endfor

#if W8
  for (var o = 0u; o < p.K / 8u; o++) {
#for I in 0..${TM}
    let al${I} = x[xb${I} + 2u * o];
    let ah${I} = x[xb${I} + 2u * o + 1u];
#endfor
#if SG
    // Each lane widens its own octets, then hands them round widened: the
    // unpacking is shared as well as the load.
#for L in 0..${SGL}
    let own${L} = w[sb${L} + o];
    let ol${L} = vec4<f32>(unpack2x16float(own${L}.x), unpack2x16float(own${L}.y));
    let oh${L} = vec4<f32>(unpack2x16float(own${L}.z), unpack2x16float(own${L}.w));
#if GEGLU
    let owg${L} = w[sg${L} + o];
    let ogl${L} = vec4<f32>(unpack2x16float(owg${L}.x), unpack2x16float(owg${L}.y));
    let ogh${L} = vec4<f32>(unpack2x16float(owg${L}.z), unpack2x16float(owg${L}.w));
#endif
#endfor
#for Q in 0..${TN4}
#for C in 0..4
    let bl${Q}_${C} = subgroupBroadcast(ol${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
    let bh${Q}_${C} = subgroupBroadcast(oh${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
#if GEGLU
    let gl${Q}_${C} = subgroupBroadcast(ogl${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
    let gh${Q}_${C} = subgroupBroadcast(ogh${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
#endif
#endfor
#endfor
#else
#for Q in 0..${TN4}
#for C in 0..4
    let u${Q}_${C} = w[wb${Q}_${C} + o];
    let bl${Q}_${C} = vec4<f32>(unpack2x16float(u${Q}_${C}.x), unpack2x16float(u${Q}_${C}.y));
    let bh${Q}_${C} = vec4<f32>(unpack2x16float(u${Q}_${C}.z), unpack2x16float(u${Q}_${C}.w));
#if GEGLU
    let v${Q}_${C} = w[gb${Q}_${C} + o];
    let gl${Q}_${C} = vec4<f32>(unpack2x16float(v${Q}_${C}.x), unpack2x16float(v${Q}_${C}.y));
    let gh${Q}_${C} = vec4<f32>(unpack2x16float(v${Q}_${C}.z), unpack2x16float(v${Q}_${C}.w));
#endif
#endfor
#endfor
#endif
#for I in 0..${TM}
#for Q in 0..${TN4}
    acc${I}_${Q} += vec4<f32>(dot(al${I}, bl${Q}_0) + dot(ah${I}, bh${Q}_0), dot(al${I}, bl${Q}_1) + dot(ah${I}, bh${Q}_1),
                              dot(al${I}, bl${Q}_2) + dot(ah${I}, bh${Q}_2), dot(al${I}, bl${Q}_3) + dot(ah${I}, bh${Q}_3));
#if GEGLU
    gac${I}_${Q} += vec4<f32>(dot(al${I}, gl${Q}_0) + dot(ah${I}, gh${Q}_0), dot(al${I}, gl${Q}_1) + dot(ah${I}, gh${Q}_1),
                              dot(al${I}, gl${Q}_2) + dot(ah${I}, gh${Q}_2), dot(al${I}, gl${Q}_3) + dot(ah${I}, gh${Q}_3));
#endif
#endfor
#endfor
  }
#else
  for (var q = 0u; q < p.K / 4u; q++) {
#for I in 0..${TM}
    let a${I} = ldx(xb${I}, q);
#endfor
#if SG
#for L in 0..${SGL}
    let own${L} = ldw(sb${L}, q);
#if GEGLU
    let owg${L} = ldw(sg${L}, q);
#endif
#endfor
#endif
#for Q in 0..${TN4}
#for C in 0..4
#if SG
    let b${Q}_${C} = subgroupBroadcast(own${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
#if GEGLU
    let g${Q}_${C} = subgroupBroadcast(owg${(Q*4+C)/SG}, ${(Q*4+C)%SG}u);
#endif
#else
    let b${Q}_${C} = ldw(wb${Q}_${C}, q);
#if GEGLU
    let g${Q}_${C} = ldw(gb${Q}_${C}, q);
#endif
#endif
#endfor
#endfor
#for I in 0..${TM}
#for Q in 0..${TN4}
    acc${I}_${Q} += vec4<f32>(dot(a${I}, b${Q}_0), dot(a${I}, b${Q}_1), dot(a${I}, b${Q}_2), dot(a${I}, b${Q}_3));
#if GEGLU
    gac${I}_${Q} += vec4<f32>(dot(a${I}, g${Q}_0), dot(a${I}, g${Q}_1), dot(a${I}, g${Q}_2), dot(a${I}, g${Q}_3));
#endif
#endfor
#endfor
  }
#endif
#if !VEC
  // The K % 4 tail, one element at a time.
  for (var k = 4u * (p.K / 4u); k < p.K; k++) {
#for I in 0..${TM}
    let a${I} = x[xb${I} + k];
#endfor
#for Q in 0..${TN4}
    let b${Q} = vec4<f32>(w1(wb${Q}_0 + k), w1(wb${Q}_1 + k), w1(wb${Q}_2 + k), w1(wb${Q}_3 + k));
#if GEGLU
    let g${Q} = vec4<f32>(w1(gb${Q}_0 + k), w1(gb${Q}_1 + k), w1(gb${Q}_2 + k), w1(gb${Q}_3 + k));
#endif
#endfor
#for I in 0..${TM}
#for Q in 0..${TN4}
    acc${I}_${Q} += a${I} * b${Q};
#if GEGLU
    gac${I}_${Q} += a${I} * g${Q};
#endif
#endfor
#endfor
  }
#endif

  // Epilogue, four columns at a time (see act4 for why).
#for Q in 0..${TN4}
#if BIAS
  let bv${Q} = vec4<f32>(bias[p.b_off + min(n0 + ${Q*4}u, p.N - 1u)], bias[p.b_off + min(n0 + ${Q*4}u + 1u, p.N - 1u)],
                         bias[p.b_off + min(n0 + ${Q*4}u + 2u, p.N - 1u)], bias[p.b_off + min(n0 + ${Q*4}u + 3u, p.N - 1u)]);
#if GEGLU
  let bg${Q} = vec4<f32>(bias[p.b_off + p.N + min(n0 + ${Q*4}u, p.N - 1u)], bias[p.b_off + p.N + min(n0 + ${Q*4}u + 1u, p.N - 1u)],
                         bias[p.b_off + p.N + min(n0 + ${Q*4}u + 2u, p.N - 1u)], bias[p.b_off + p.N + min(n0 + ${Q*4}u + 3u, p.N - 1u)]);
#endif
#else
  let bv${Q} = vec4<f32>(0.0);
#if GEGLU
  let bg${Q} = vec4<f32>(0.0);
#endif
#endif
#endfor
  // Row i is always acc0_*: the rows shift down after each one, so the loop
  // over rows (bounded at run time: never unrolled) writes from constant
  // registers.
  let rows = select(0u, min(TM, p.M - m0), m0 < p.M);
  for (var i = 0u; i < rows; i++) {
    let m = m0 + i;
#for Q in 0..${TN4}
#if GEGLU
    store4(m, n0 + ${Q*4}u, (acc0_${Q} + bv${Q}) * gelu4(gac0_${Q} + bg${Q}));
#else
    store4(m, n0 + ${Q*4}u, act4(acc0_${Q} + bv${Q}));
#endif
#endfor
#for I in 1..${TM}
#for Q in 0..${TN4}
    acc${I-1}_${Q} = acc${I}_${Q};
#if GEGLU
    gac${I-1}_${Q} = gac${I}_${Q};
#endif
#endfor
#endfor
  }
}
