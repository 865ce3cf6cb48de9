// selftest.wgsl: the device layer's own probe kernels.
//   main       out[i] = a[i] * p.scale + f32(i) over a folded grid; it proves
//              upload, dispatch, grid folding, uniform params and read-back
//              before any real kernel runs
//   subgroups  (SGPROBE) what the subgroup kernels assume: for each local
//              invocation i of one workgroup, out[i] = subgroup_size,
//              out[WG + i] = subgroup_invocation_id, out[2·WG + i] =
//              subgroupBroadcast(i, 0) (engine/gpu/subgroups.go judges it)
//   peak       (PEAK) the adapter's arithmetic ceiling for the benchmarks:
//              eight independent vec4 fma chains per thread, 64 rounds of 4
//              (16384 FLOP per thread), no memory traffic but one store
//   loads      (LOADS) the other side of it: each thread sums 256 vec4
//              storage loads from its own row (a per-lane address, the way
//              a GEMM thread reads its rows), then stores one value
#if SGPROBE
enable subgroups;
#endif
#include "common.wgsl"

struct Params {
  n: u32,       // elements to write
  scale: f32,   // multiplier applied to a (peak: the chains' multiplier)
  off: u32,     // peak: element offset of the output in its binding
  _pad1: u32,
}

#if PEAK
@group(0) @binding(0) var<storage, read_write> pk: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(${WG})
fn peak(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  // a ← a·m + c converges to c / (1 − m): no overflow, no denormals.
  let m = vec4<f32>(p.scale);
  let c = vec4<f32>(f32(i % 97u) * 1e-3 + 1.0);
#for A in 0..8
  var a${A} = vec4<f32>(${A+1}.0, ${A+2}.0, ${A+3}.0, ${A+4}.0);
#endfor
  for (var r = 0u; r < 64u; r++) {
#for J in 0..4
#for A in 0..8
    a${A} = fma(a${A}, m, c);
#endfor
#endfor
  }
  if (i < p.n) {
    let s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    for (var j = 0u; j < 4u; j++) {
      pk[p.off + 4u * i + j] = s[j];
    }
  }
}
#else
#if LOADS
struct LoadParams {
  rows: u32,    // rows of 256 vec4 in the source
  threads: u32, // threads that load
  off: u32,     // element offset of the output in its binding
  src_off: u32, // vec4 offset of the source in its binding
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> ld: array<f32>;
@group(0) @binding(2) var<uniform> lp: LoadParams;

@compute @workgroup_size(${WG})
fn loads(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= lp.threads) {
    return;
  }
  // Thread i reads row i mod rows.
  let row = lp.src_off + (i % lp.rows) * 256u;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < 256u; k++) {
    acc += src[row + k];
  }
  ld[lp.off + i] = acc.x + acc.y + acc.z + acc.w;
}
#else
#if SGPROBE
@group(0) @binding(0) var<storage, read_write> sg: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(${WG})
fn subgroups(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
  let first = subgroupBroadcast(lid, 0u);
  sg[lid] = size;
  sg[${WG}u + lid] = lane;
  sg[2u * ${WG}u + lid] = first;
}
#else
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
#endif
#endif
#endif
