/* Instantiations of the chunk state scan for K = 128 (one file per K so they build in parallel). */
#include "ops/chunk_scan/scan_col_kernel.cuh"

#define GDN_SCAN_PICK(BV, W)                                                         \
  if (bv == BV && warps == W) {                                                      \
    if (o_mode) return f16 ? (const void *)gdn_scan_kernel<128, BV, W, 1, 1>          \
                           : (const void *)gdn_scan_kernel<128, BV, W, 0, 1>;         \
    return f16 ? (const void *)gdn_scan_kernel<128, BV, W, 1, 0>                      \
               : (const void *)gdn_scan_kernel<128, BV, W, 0, 0>;                     \
  }

#define GDN_SCAN_COL_PICK(W)                                                             \
  if (bv == 16 * W && warps == W) {                                                      \
    if (o_mode == 2) return f16 ? (const void *)gdn_scan_col_kernel<128, W, 1, 1, 1>        \
                                : (const void *)gdn_scan_col_kernel<128, W, 0, 1, 1>;       \
    if (o_mode) return f16 ? (const void *)gdn_scan_col_kernel<128, W, 1, 1, 0>             \
                           : (const void *)gdn_scan_col_kernel<128, W, 0, 1, 0>;            \
    return f16 ? (const void *)gdn_scan_col_kernel<128, W, 1, 0, 0>                         \
               : (const void *)gdn_scan_col_kernel<128, W, 0, 0, 0>;                        \
  }

extern "C" const void *gdn_scan_kernel_k128(int col, int bv, int warps, int f16, int o_mode) {
  if (!col) {
    if (o_mode == 2) return NULL; /* the folded form is column-split only */
    GDN_SCAN_PICK(32, 4)
    GDN_SCAN_PICK(32, 8)
    GDN_SCAN_PICK(64, 4)
    GDN_SCAN_PICK(64, 8)
    return NULL;
  }
  GDN_SCAN_COL_PICK(2)
  GDN_SCAN_COL_PICK(4)
  GDN_SCAN_COL_PICK(8)
  return NULL;
}
