// common.wgsl: helpers shared by every kernel. It is pasted in with
// `#include "common.wgsl"` and never compiled on its own.

// Linear index of this workgroup. The host folds grids wider than
// maxComputeWorkgroupsPerDimension (65535) into 2-D or 3-D, so a kernel must
// rebuild the flat index and ignore the few surplus workgroups the fold adds.
fn wg_linear(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
}
