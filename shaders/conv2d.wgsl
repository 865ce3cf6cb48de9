// conv2d.wgsl: 2-D convolution as an implicit GEMM, with its fused epilogue
// (engine/cpu Conv2D is the reference). For output pixel (b, oy, ox) and
// output channel o:
//
//   acc = Σ_{ky,kx,c} in(b, oy·s+ky−p, ox·s+kx−p, c) · w[o, c, ky, kx]
//   out[b, oy, ox, o] = Act(acc + bias[o] + chanbias[b, o]) + res[b, oy, ox, o]
//
// x [B, H, W, C] NHWC f32, w [O, C, KH, KW] (PyTorch layout) f32 or f16,
// out [B, OutH, OutW, O]. in() is zero outside the input and, with UPSAMPLE,
// reads the input through a nearest 2× upsampling (in(y, x) = x[y/2, x/2]).
//
// GEMM view: rows = output pixels, columns = output channels, inner =
// (ky, kx, c). Tiling as matmul.wgsl (registers only, no barriers): a
// workgroup of WGM×WGN threads covers (WGM·TM) pixels × (WGN·TN) channels and
// each thread keeps TM×TN accumulators. Two forms:
//
// TAPS (KH·KW = KK known at compile time, C % 4 == 0, w's offset a multiple
// of 4; the UNet's and VAE's 3×3 convolutions): the inner dimension is
// walked a channel quad at a time, all KK taps inside, written straight-line
// with #for. A quad's 4·KK weights of one output channel are contiguous in
// [O, C, KH, KW], so they arrive as KK vec4 (or vec2<u32> of halves) loads
// instead of 4·KK scalar ones; every pixel's input address per tap is worked
// out once. On lavapipe 1.2–1.5× the general form (BenchmarkConvVariants);
// on SwiftShader, which keeps looped-over arrays in memory, ~9× (the tiny
// UNet's convolutions).
//
// General (any kernel, odd channel counts, odd weight offsets): channel
// chunks of CC (outermost), kernel taps (ky, kx), channels: per tap a
// thread works out its TM input pixels once (and whether they fall in the
// padding), then takes the chunk's channels four at a time: one contiguous
// vec4 of NHWC input per pixel, four weights (stride KH·KW apart) per output
// channel. Chunking keeps a chunk's weights in cache across the taps (3×3,
// 320→320 channels on lavapipe: 3.2 → 4.8 GFLOP per CPU-second). Loops over
// register arrays that Mesa's NIR unrolls; written straight-line this form
// took SwiftShader tens of seconds per pipeline to compile.
//
// Defines: TM, TN, TN4 = TN/4, WGM, WGN, WG (tiling); VOUT (res and out as
// vec4: O % 4 == 0 and their offsets multiples of 4); VEC (C % 4 == 0 and x's
// offset a multiple of 4: input read as vec4); F16 / F16N (weight storage, as
// in matmul.wgsl); BIAS, CHANBIAS, RES, ACT_* (epilogue); UPSAMPLE; TAPS with
// KK (taps) and KW (kernel width); SG, SGL with TAPS (subgroups: as in
// matmul.wgsl, a subgroup's threads share their output channels, each lane
// loads and widens SGL = ⌈TN/SG⌉ channels' weights and subgroupBroadcast
// hands them round).
#if F16N
enable f16;
#endif
#if SG
enable subgroups;
#endif
#include "common.wgsl"
#include "epilogue.wgsl"

struct Params {
  M: u32,       // output pixels B·OutH·OutW (GEMM rows)
  N: u32,       // output channels O
  C: u32,       // input channels
  tiles_n: u32, // workgroup tiles along N
  tiles: u32,   // tiles in all; workgroups past it (grid folding) exit
  H: u32,       // stored input rows bound (a band's window, else the height)
  W: u32,       // stored input width
  in_h: u32,    // input height as the convolution sees it (2·height with UPSAMPLE)
  in_w: u32,    // input width likewise
  out_h: u32,   // output rows computed (a band's, else the output height)
  out_w: u32,   // output width
  oy0: u32,     // first output row computed (bands)
  y_lo: u32,    // first stored input row bound (bands)
  kh: u32,      // kernel height
  kw: u32,      // kernel width
  stride: u32,  // pixels between kernel applications
  pad: u32,     // zero padding on every side, pixels
  x_off: u32,   // element offset of x in its binding
  w_off: u32,   // element offset of w, in w's elements
  b_off: u32,   // element offset of bias
  cb_off: u32,  // element offset of chanbias [B, cb_stride], first column read
  r_off: u32,   // element offset of res
  o_off: u32,   // element offset of out
  cb_stride: u32, // elements between chanbias rows (O, or wider: one Linear for all resnets)
}

#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
#endif
#if TAPS
// TAPS: a quad of input channels holds 4·KK contiguous weights, read as KK
// vec4 (f32) or KK vec2<u32> (f16).
#if F16
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
#else
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
#endif
#else
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
@group(0) @binding(3) var<storage, read> chanbias: array<f32>;
#if VOUT
@group(0) @binding(4) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
#endif
@group(0) @binding(6) var<uniform> p: Params;

const TM = ${TM}u;
const TN = ${TN}u;
const WGN = ${WGN}u;
const CC = 32u;

#if VEC
// Pixel bases are vec4 indices.
fn ldx(base: u32, q: u32) -> vec4<f32> {
  return x[base + q];
}
#else
// Pixel bases are element indices.
fn ldx(base: u32, q: u32) -> vec4<f32> {
  let e = base + 4u * q;
  return vec4<f32>(x[e], x[e + 1u], x[e + 2u], x[e + 3u]);
}
#endif

#if TAPS
// Load i of the weights (four consecutive elements).
fn ldwv(i: u32) -> vec4<f32> {
#if F16
  let h = w[i];
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
#else
  return w[i];
#endif
}
#else
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

// Four weights of consecutive input channels: they sit kk = KH·KW apart.
fn ldw(e: u32, kk: u32) -> vec4<f32> {
  return vec4<f32>(w1(e), w1(e + kk), w1(e + 2u * kk), w1(e + 3u * kk));
}
#endif

// Adds the channel bias, activates and writes four outputs of pixel m from
// channel n on.
fn store4(m: u32, n: u32, hw: u32, acc: vec4<f32>) {
  var v = acc;
#if CHANBIAS
  let cb = p.cb_off + (m / hw) * p.cb_stride;
  let last = p.N - 1u;
  v += vec4<f32>(chanbias[cb + min(n, last)], chanbias[cb + min(n + 1u, last)],
                 chanbias[cb + min(n + 2u, last)], chanbias[cb + min(n + 3u, last)]);
#endif
  v = act4(v);
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

#if TAPS
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
#if SG
        @builtin(subgroup_invocation_id) lane: u32,
#endif
        @builtin(local_invocation_index) lid: u32) {
  let t = wg_linear(wid, nwg);
  if (t >= p.tiles) {
    return;
  }
  let origin = block_origin(t, p.tiles_n, lid);
  let m0 = origin.x;
  let n0 = origin.y;
  let hw = p.out_h * p.out_w;
  let kk = p.kh * p.kw;

  // Per output pixel I: start of its batch entry's image (rb) and its
  // top-left input coordinate (ry, rx). Pixels past M repeat pixel M−1
  // (results dropped).
#for I in 0..${TM}
  let r${I} = min(m0 + ${I}u, p.M - 1u);
  let rb${I} = (r${I} / hw) * p.H * p.W;
  let ry${I} = i32(((r${I} % hw) / p.out_w + p.oy0) * p.stride) - i32(p.pad);
  let rx${I} = i32((r${I} % p.out_w) * p.stride) - i32(p.pad);
#endfor
  let c4 = p.C / 4u;
  // acc<I>_<Q>: pixel m0+I, output channels n0+4Q … n0+4Q+3.
#for I in 0..${TM}
#for Q in 0..${TN4}
  var acc${I}_${Q} = vec4<f32>(0.0);
#endfor
#endfor

  // KK = KH·KW taps known at compile time (3×3: 9). Reading w in the order
  // it is stored: for a quad of input channels, the 4·KK weights of an
  // output channel are contiguous ([O, C, KH, KW]), KK wide loads instead of
  // 4·KK scalar ones; tap T of channel c sits at element c·KK + T of them.
  // Every pixel's input at every tap (load index, inside the image) is
  // worked out once, outside the channel loop.
#for Q in 0..${TN4}
#for C in 0..4
  let wt${Q}_${C} = (p.w_off + min(n0 + ${Q*4}u + ${C}u, p.N - 1u) * p.C * ${KK}u) / 4u;
#endfor
#endfor
#if SG
  // This lane's channels: L·SG + lane of the block.
#for L in 0..${SGL}
  let ws${L} = (p.w_off + min(n0 + min(${L*SG}u + lane, TN - 1u), p.N - 1u) * p.C * ${KK}u) / 4u;
#endfor
#endif
#for I in 0..${TM}
#for T in 0..${KK}
  let iy${I}_${T} = ry${I} + ${T/KW};
  let ix${I}_${T} = rx${I} + ${T%KW};
  let ok${I}_${T} = iy${I}_${T} >= 0 && iy${I}_${T} < i32(p.in_h) && ix${I}_${T} >= 0 && ix${I}_${T} < i32(p.in_w);
#if UPSAMPLE
  let sy${I}_${T} = max(iy${I}_${T}, 0) / 2;
  let sx${I}_${T} = max(ix${I}_${T}, 0) / 2;
#else
  let sy${I}_${T} = max(iy${I}_${T}, 0);
  let sx${I}_${T} = max(ix${I}_${T}, 0);
#endif
  let xt${I}_${T} = (p.x_off + (rb${I} + u32(clamp(sy${I}_${T} - i32(p.y_lo), 0, i32(p.H) - 1)) * p.W + u32(min(sx${I}_${T}, i32(p.W) - 1))) * p.C) / 4u;
#endfor
#endfor
  for (var q = 0u; q < c4; q++) {
#if SG
#for L in 0..${SGL}
#for K in 0..${KK}
    let ow${L}_${K} = ldwv(ws${L} + q * ${KK}u + ${K}u);
#endfor
#endfor
#for Q in 0..${TN4}
#for C in 0..4
#for K in 0..${KK}
    let v${Q}_${C}_${K} = subgroupBroadcast(ow${(Q*4+C)/SG}_${K}, ${(Q*4+C)%SG}u);
#endfor
#endfor
#endfor
#else
#for Q in 0..${TN4}
#for C in 0..4
#for K in 0..${KK}
    let v${Q}_${C}_${K} = ldwv(wt${Q}_${C} + q * ${KK}u + ${K}u);
#endfor
#endfor
#endfor
#endif
#for T in 0..${KK}
    {
#for I in 0..${TM}
      let a${I} = select(vec4<f32>(0.0), x[xt${I}_${T} + q], ok${I}_${T});
#endfor
#for Q in 0..${TN4}
#for C in 0..4
      let b${Q}_${C} = vec4<f32>(v${Q}_${C}_${T/4}[${T%4}], v${Q}_${C}_${(T+KK)/4}[${(T+KK)%4}],
                                 v${Q}_${C}_${(T+2*KK)/4}[${(T+2*KK)%4}], v${Q}_${C}_${(T+3*KK)/4}[${(T+3*KK)%4}]);
#endfor
#endfor
#for I in 0..${TM}
#for Q in 0..${TN4}
      acc${I}_${Q} += vec4<f32>(dot(a${I}, b${Q}_0), dot(a${I}, b${Q}_1), dot(a${I}, b${Q}_2), dot(a${I}, b${Q}_3));
#endfor
#endfor
    }
#endfor
  }

  // Epilogue, four channels at a time, row i always in acc0_* (see
  // matmul.wgsl).
#for Q in 0..${TN4}
#if BIAS
  let bv${Q} = vec4<f32>(bias[p.b_off + min(n0 + ${Q*4}u, p.N - 1u)], bias[p.b_off + min(n0 + ${Q*4}u + 1u, p.N - 1u)],
                         bias[p.b_off + min(n0 + ${Q*4}u + 2u, p.N - 1u)], bias[p.b_off + min(n0 + ${Q*4}u + 3u, p.N - 1u)]);
#else
  let bv${Q} = vec4<f32>(0.0);
#endif
#endfor
  let rows = select(0u, min(TM, p.M - m0), m0 < p.M);
  for (var i = 0u; i < rows; i++) {
    let m = m0 + i;
#for Q in 0..${TN4}
    store4(m, n0 + ${Q*4}u, hw, acc0_${Q} + bv${Q});
#endfor
#for I in 1..${TM}
#for Q in 0..${TN4}
    acc${I-1}_${Q} = acc${I}_${Q};
#endfor
#endfor
  }
}
#else
// The general form (any kernel size, channel counts not in quads): loops
// over register arrays, which Mesa's NIR unrolls; written straight-line it
// took SwiftShader tens of seconds per pipeline to compile.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg_linear(wid, nwg);
  if (t >= p.tiles) {
    return;
  }
  let origin = block_origin(t, p.tiles_n, lid);
  let m0 = origin.x;
  let n0 = origin.y;
  let hw = p.out_h * p.out_w;
  let kk = p.kh * p.kw;

  // Per output pixel: start of its batch entry's image and its top-left
  // input coordinate. Pixels past M repeat pixel M−1 (results dropped).
  var rb: array<u32, ${TM}>;
  var ry: array<i32, ${TM}>;
  var rx: array<i32, ${TM}>;
  for (var i = 0u; i < TM; i++) {
    let r = min(m0 + i, p.M - 1u);
    let bi = r / hw;
    let oy = (r % hw) / p.out_w + p.oy0;
    let ox = r % p.out_w;
    rb[i] = bi * p.H * p.W;
    ry[i] = i32(oy * p.stride) - i32(p.pad);
    rx[i] = i32(ox * p.stride) - i32(p.pad);
  }
  var wb: array<u32, ${TN}>;
  for (var j = 0u; j < TN; j++) {
    wb[j] = p.w_off + min(n0 + j, p.N - 1u) * p.C * kk;
  }
  let c4 = p.C / 4u;

  // acc[i][jq]: pixel m0+i, output channels n0+4·jq … n0+4·jq+3.
  var acc: array<array<vec4<f32>, ${TN4}>, ${TM}>;
  // Channels in chunks of CC, taps inside: the weights a chunk needs
  // (TN × CC × KH·KW, contiguous per output channel) stay in cache across
  // the taps; with the taps outermost every tap would stream all of w.
  for (var cb = 0u; cb < p.C; cb += CC) {
  let q0 = cb / 4u;
  let q1 = min(cb + CC, 4u * c4) / 4u;
  for (var ky = 0u; ky < p.kh; ky++) {
    for (var kx = 0u; kx < p.kw; kx++) {
      var xb: array<u32, ${TM}>;
      var ok: array<bool, ${TM}>;
      for (var i = 0u; i < TM; i++) {
        let iy = ry[i] + i32(ky);
        let ix = rx[i] + i32(kx);
        ok[i] = iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w);
        var sy = max(iy, 0);
        var sx = max(ix, 0);
#if UPSAMPLE
        sy = sy / 2;
        sx = sx / 2;
#endif
        // Rows are counted from the first one bound; taps in the padding
        // read a clamped, in-bounds pixel that select() discards.
        let ly = u32(clamp(sy - i32(p.y_lo), 0, i32(p.H) - 1));
        let lx = u32(min(sx, i32(p.W) - 1));
        let e = p.x_off + (rb[i] + ly * p.W + lx) * p.C;
#if VEC
        xb[i] = e / 4u;
#else
        xb[i] = e;
#endif
      }
      let tap = ky * p.kw + kx;
      for (var q = q0; q < q1; q++) {
        var a: array<vec4<f32>, ${TM}>;
        var b: array<vec4<f32>, ${TN}>;
        for (var i = 0u; i < TM; i++) {
          a[i] = select(vec4<f32>(0.0), ldx(xb[i], q), ok[i]);
        }
        for (var j = 0u; j < TN; j++) {
          b[j] = ldw(wb[j] + 4u * q * kk + tap, kk);
        }
        for (var i = 0u; i < TM; i++) {
          for (var jq = 0u; jq < ${TN4}u; jq++) {
            acc[i][jq] += vec4<f32>(dot(a[i], b[4u * jq]), dot(a[i], b[4u * jq + 1u]),
                                    dot(a[i], b[4u * jq + 2u]), dot(a[i], b[4u * jq + 3u]));
          }
        }
      }
#if !VEC
      for (var c = max(cb, 4u * c4); c < min(cb + CC, p.C); c++) {
        for (var i = 0u; i < TM; i++) {
          let a = select(0.0, x[xb[i] + c], ok[i]);
          for (var jq = 0u; jq < ${TN4}u; jq++) {
            let e = c * kk + tap;
            let j = 4u * jq;
            acc[i][jq] += a * vec4<f32>(w1(wb[j] + e), w1(wb[j + 1u] + e), w1(wb[j + 2u] + e), w1(wb[j + 3u] + e));
          }
        }
      }
#endif
    }
  }
  }

  // Epilogue, four channels at a time, row i always in acc[0] (see
  // matmul.wgsl).
  var bv: array<vec4<f32>, ${TN4}>;
#if BIAS
  for (var jq = 0u; jq < ${TN4}u; jq++) {
    let n = n0 + 4u * jq;
    let last = p.N - 1u;
    bv[jq] = vec4<f32>(bias[p.b_off + min(n, last)], bias[p.b_off + min(n + 1u, last)],
                       bias[p.b_off + min(n + 2u, last)], bias[p.b_off + min(n + 3u, last)]);
  }
#endif
  let rows = select(0u, min(TM, p.M - m0), m0 < p.M);
  for (var i = 0u; i < rows; i++) {
    let m = m0 + i;
    for (var jq = 0u; jq < ${TN4}u; jq++) {
      store4(m, n0 + 4u * jq, hw, acc[0][jq] + bv[jq]);
    }
    for (var r = 0u; r + 1u < TM; r++) {
      acc[r] = acc[r + 1u];
    }
  }
}
#endif
