/* The scan kernel instantiated for a planned configuration, per K (each scan_k*.cu
 * instantiates one K so they build in parallel). NULL where no kernel is built: the plan
 * (scan_plan.c, supported()) never asks for those. */
#ifndef GDN_SCAN_PICK_CUH
#define GDN_SCAN_PICK_CUH

#include "ops/chunk_scan/scan_col_kernel.cuh"

template <int K, int BV, int W>
static const void *gdn_scan_row_fn(int f16, int o_mode) {
  if (o_mode) return f16 ? (const void *)gdn_scan_kernel<K, BV, W, 1, 1> : (const void *)gdn_scan_kernel<K, BV, W, 0, 1>;
  return f16 ? (const void *)gdn_scan_kernel<K, BV, W, 1, 0> : (const void *)gdn_scan_kernel<K, BV, W, 0, 0>;
}

template <int K, int W>
static const void *gdn_scan_col_fn(int f16, int o_mode) {
  if (o_mode == 3) /* folded, no output: the transition pass */
    return f16 ? (const void *)gdn_scan_col_kernel<K, W, 1, 0, 1> : (const void *)gdn_scan_col_kernel<K, W, 0, 0, 1>;
  if (o_mode == 2)
    return f16 ? (const void *)gdn_scan_col_kernel<K, W, 1, 1, 1> : (const void *)gdn_scan_col_kernel<K, W, 0, 1, 1>;
  if (o_mode)
    return f16 ? (const void *)gdn_scan_col_kernel<K, W, 1, 1, 0> : (const void *)gdn_scan_col_kernel<K, W, 0, 1, 0>;
  return f16 ? (const void *)gdn_scan_col_kernel<K, W, 1, 0, 0> : (const void *)gdn_scan_col_kernel<K, W, 0, 0, 0>;
}

/* col: the column-split kernel (K <= 128, BV = 16 x warps); else the row-group kernel
 * (BV 32 x 4 or 8 warps, 64 x 8, 64 x 4 below K = 256), which has no folded form. */
template <int K>
static const void *gdn_scan_pick(int col, int bv, int warps, int f16, int o_mode) {
  if (o_mode == 4) return NULL; /* the output norm: the warpgroup kernel only */
  if (col) {
    if constexpr (K <= 128) {
      if (bv == 16 * warps) {
        if (warps == 2) return gdn_scan_col_fn<K, 2>(f16, o_mode);
        if (warps == 4) return gdn_scan_col_fn<K, 4>(f16, o_mode);
        if (warps == 8) return gdn_scan_col_fn<K, 8>(f16, o_mode);
      }
    }
    return NULL;
  }
  if (o_mode >= 2) return NULL;
  if (bv == 32 && warps == 4) return gdn_scan_row_fn<K, 32, 4>(f16, o_mode);
  if (bv == 32 && warps == 8) return gdn_scan_row_fn<K, 32, 8>(f16, o_mode);
  if constexpr (K < 256) {
    if (bv == 64 && warps == 4) return gdn_scan_row_fn<K, 64, 4>(f16, o_mode);
  }
  if (bv == 64 && warps == 8) return gdn_scan_row_fn<K, 64, 8>(f16, o_mode);
  return NULL;
}

#endif
