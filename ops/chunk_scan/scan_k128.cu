/* Instantiations of the chunk state scan for K = 128 (one file per K so they build in parallel). */
#include "ops/chunk_scan/scan_pick.cuh"

extern "C" const void *gdn_scan_kernel_k128(int col, int bv, int warps, int f16, int o_mode) {
  return gdn_scan_pick<128>(col, bv, warps, f16, o_mode);
}
