/* Instantiations of the chunk state scan for K = 256 (one file per K so they build in parallel). */
#include "ops/chunk_scan/scan_kernel.cuh"

#define GDN_SCAN_PICK(BV, W)                                                         \
  if (bv == BV && warps == W) {                                                      \
    if (o_mode) return f16 ? (const void *)gdn_scan_kernel<256, BV, W, 1, 1>          \
                           : (const void *)gdn_scan_kernel<256, BV, W, 0, 1>;         \
    return f16 ? (const void *)gdn_scan_kernel<256, BV, W, 1, 0>                      \
               : (const void *)gdn_scan_kernel<256, BV, W, 0, 0>;                     \
  }

extern "C" const void *gdn_scan_kernel_k256(int col, int bv, int warps, int f16, int o_mode) {
  if (col || o_mode == 2) return NULL; /* the column-split kernel needs K <= 128 */
  GDN_SCAN_PICK(32, 4)
  GDN_SCAN_PICK(32, 8)
  GDN_SCAN_PICK(64, 8)
  return NULL;
}
