/* Instantiations of the chunk state scan for K = 64 (one file per K so they build in parallel). */
#include "ops/chunk_scan/scan_kernel.cuh"

#define GDN_SCAN_PICK(BV, W)                                                         \
  if (bv == BV && warps == W) {                                                      \
    if (o_mode) return f16 ? (const void *)gdn_scan_kernel<64, BV, W, 1, 1>          \
                           : (const void *)gdn_scan_kernel<64, BV, W, 0, 1>;         \
    return f16 ? (const void *)gdn_scan_kernel<64, BV, W, 1, 0>                      \
               : (const void *)gdn_scan_kernel<64, BV, W, 0, 0>;                     \
  }

extern "C" const void *gdn_scan_kernel_k64(int bv, int warps, int f16, int o_mode) {
  GDN_SCAN_PICK(32, 4)
  GDN_SCAN_PICK(32, 8)
  GDN_SCAN_PICK(64, 4)
  GDN_SCAN_PICK(64, 8)
  return NULL;
}
