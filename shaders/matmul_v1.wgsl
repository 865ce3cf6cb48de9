// matmul_v1.wgsl: the first Linear kernel, kept as the reference variant of
// BenchmarkLinearVariants (llm.c style); the engine runs matmul.wgsl. Loops
// over register arrays that Mesa's NIR must unroll (it stops doing so past
// 8×8 blocks), f16 weights read as vec2<u32>. No SPLIT or GEGLU forms.
//
// Linear with its fused epilogue (engine/cpu Linear is the reference):
//
//   out[m, n] = Act(Σ_k x[m, k]·w[n, k] + bias[n]) + res[m, n]
//
// x [M, K] f32, w [N, K] f32 or f16 (PyTorch's [out, in]), bias [N],
// res and out [M, N]. Each tensor starts at an element offset inside its
// binding (views); the offsets travel in Params.
//
// Design, for CPU-emulated adapters first (lavapipe, SwiftShader): there a
// storage-buffer load is emulated lane by lane (Mesa 22's llvmpipe loops over
// the SIMD lanes with a bounds check each: ~100 cycles for an 8-lane vec4),
// a barrier is a coroutine switch, and registers are cheap. So no workgroup
// memory and no barriers: a workgroup of WGM×WGN threads covers a
// (WGM·TM)×(WGN·TN) output tile, each thread keeps a TM×TN block of f32
// accumulators in registers and walks K four elements at a time: TM+TN vec4
// loads feed TM·TN four-element dot products. The loops over register arrays
// run exactly as many times as the arrays are long, which Mesa's NIR always
// unrolls (up to 32), so the arrays stay in registers; the epilogue's row
// loop is bounded at run time and always reads row 0 while the rows shift
// down. On real GPUs this is a plain register-blocked GEMM whose operands
// come from cache.
//
// Defines (compile-time facts; shapes are in Params):
//   TM, TN, WGM, WGN  register block per thread and thread grid (WGM·WGN threads)
//   VEC               1: x and w rows are read as vec4 (K % 4 == 0 and both
//                     element offsets multiples of 4); else scalars plus a
//                     K % 4 tail
//   F16               w holds binary16 pairs in u32 words, widened with
//                     unpack2x16float (any element offset, odd ones included)
//   F16N              w is array<f16> (needs shader-f16; values are widened to
//                     f32 on load: the accumulation stays f32)
//   BIAS, RES         read bias / res
//   ACT_*             activation (epilogue.wgsl)
//   VOUT              res and out are read / written as vec4 (N % 4 == 0 and
//                     their offsets multiples of 4)
//   TN4               TN / 4 (TN is a multiple of 4)
#if F16N
enable f16;
#endif
#include "common.wgsl"
#include "epilogue.wgsl"

struct Params {
  M: u32,       // rows of x and out
  N: u32,       // output features (rows of w)
  K: u32,       // input features
  tiles_n: u32, // workgroup tiles along N: ⌈N / (WGN·TN)⌉
  tiles: u32,   // tiles in all; workgroups past it (grid folding) exit
  x_off: u32,   // element offset of x in its binding (a multiple of 4 with VEC)
  w_off: u32,   // element offset of w, in w's elements (f32 or f16)
  b_off: u32,   // element offset of bias
  r_off: u32,   // element offset of res
  o_off: u32,   // element offset of out
  _pad0: u32,
  _pad1: u32,
}

#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
#if F16
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
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
// Row bases are vec4 indices; q counts groups of four along K.
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

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg_linear(wid, nwg);
  if (t >= p.tiles) {
    return;
  }
  let m0 = (t / p.tiles_n) * (${WGM}u * TM) + (lid / WGN) * TM;
  let n0 = (t % p.tiles_n) * (WGN * TN) + (lid % WGN) * TN;

  // Rows past M / N read row M−1 / N−1 (in bounds, results dropped), so the
  // inner loop has no branches.
#if VEC
  let k4 = p.K / 4u;
  let xs = p.K / 4u;
  let xo = p.x_off / 4u;
  let wo = p.w_off / 4u;
#else
  let k4 = p.K / 4u;
  let xs = p.K;
  let xo = p.x_off;
  let wo = p.w_off;
#endif
  var xb: array<u32, ${TM}>;
  var wb: array<u32, ${TN}>;
  for (var i = 0u; i < TM; i++) {
    xb[i] = xo + min(m0 + i, p.M - 1u) * xs;
  }
  for (var j = 0u; j < TN; j++) {
    wb[j] = wo + min(n0 + j, p.N - 1u) * xs;
  }

  // acc[i][jq]: row m0+i, columns n0+4·jq … n0+4·jq+3.
  var acc: array<array<vec4<f32>, ${TN4}>, ${TM}>;
  for (var q = 0u; q < k4; q++) {
    var a: array<vec4<f32>, ${TM}>;
    var b: array<vec4<f32>, ${TN}>;
    for (var i = 0u; i < TM; i++) {
      a[i] = ldx(xb[i], q);
    }
    for (var j = 0u; j < TN; j++) {
      b[j] = ldw(wb[j], q);
    }
    for (var i = 0u; i < TM; i++) {
      for (var jq = 0u; jq < ${TN4}u; jq++) {
        acc[i][jq] += vec4<f32>(dot(a[i], b[4u * jq]), dot(a[i], b[4u * jq + 1u]),
                                dot(a[i], b[4u * jq + 2u]), dot(a[i], b[4u * jq + 3u]));
      }
    }
  }
#if !VEC
  for (var k = 4u * k4; k < p.K; k++) {
    for (var i = 0u; i < TM; i++) {
      let a = x[xb[i] + k];
      for (var jq = 0u; jq < ${TN4}u; jq++) {
        let j = 4u * jq;
        acc[i][jq] += a * vec4<f32>(w1(wb[j] + k), w1(wb[j + 1u] + k), w1(wb[j + 2u] + k), w1(wb[j + 3u] + k));
      }
    }
  }
#endif

  // Epilogue, four columns at a time (see act4 for why).
  var bv: array<vec4<f32>, ${TN4}>;
#if BIAS
  for (var jq = 0u; jq < ${TN4}u; jq++) {
    let n = n0 + 4u * jq;
    let last = p.N - 1u;
    bv[jq] = vec4<f32>(bias[p.b_off + min(n, last)], bias[p.b_off + min(n + 1u, last)],
                       bias[p.b_off + min(n + 2u, last)], bias[p.b_off + min(n + 3u, last)]);
  }
#endif
  // Row i is always acc[0]: the rows shift down after each one, so the loop
  // over rows (bounded at run time: never unrolled) keeps constant indices
  // into acc. Unrolled, the activation copied TM times outgrew what the
  // compiler keeps in registers (GELU halved the throughput on lavapipe).
  let rows = select(0u, min(TM, p.M - m0), m0 < p.M);
  for (var i = 0u; i < rows; i++) {
    let m = m0 + i;
    for (var jq = 0u; jq < ${TN4}u; jq++) {
      let n = n0 + 4u * jq;
      var v = act4(acc[0][jq] + bv[jq]);
#if VOUT
      // N % 4 == 0: the quad is inside the row or past it as a whole.
      if (n < p.N) {
#if RES
        v += res[(p.r_off + m * p.N + n) / 4u];
#endif
        out[(p.o_off + m * p.N + n) / 4u] = v;
      }
#else
      for (var c = 0u; c < 4u; c++) {
        if (n + c < p.N) {
          var o = v[c];
#if RES
          o += res[p.r_off + m * p.N + n + c];
#endif
          out[p.o_off + m * p.N + n + c] = o;
        }
      }
#endif
    }
    for (var r = 0u; r + 1u < TM; r++) {
      acc[r] = acc[r + 1u];
    }
  }
}
