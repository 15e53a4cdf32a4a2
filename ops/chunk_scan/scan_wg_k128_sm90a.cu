/* Instantiations of the warpgroup chunk scan (K = 128), built for sm_90a only (wgmma):
 * CMake compiles the *_sm90a.cu files for that target alone. */
#include "ops/chunk_scan/scan_wg_kernel.cuh"

/* The planner's size formula (scan_params.h, C) is the kernel's stage layout. */
template <int BV, int O_MODE, int FOLD>
constexpr bool wg_stage_matches() {
  return gdn_scan_smem<128, BV, O_MODE, FOLD, 1>::stage ==
         gdn_scan_wg_stage_bytes(128, BV, O_MODE ? (FOLD ? 2 : 1) : (FOLD ? 3 : 0));
}
static_assert(wg_stage_matches<64, 0, 0>() && wg_stage_matches<64, 1, 0>() && wg_stage_matches<64, 1, 1>() &&
                  wg_stage_matches<64, 0, 1>() && wg_stage_matches<128, 0, 0>() && wg_stage_matches<128, 1, 0>() &&
                  wg_stage_matches<128, 1, 1>() && wg_stage_matches<128, 0, 1>(),
              "gdn_scan_wg_stage_bytes differs from the warpgroup kernel's stage layout");

template <int WG>
static const void *wg_fn(int f16, int o_mode) {
  if (o_mode == 4) { /* the folded forward with the output norm: whole rows, two warpgroups */
    if (WG != 2) return NULL;
    return f16 ? (const void *)gdn_scan_wg_kernel<128, 2, 1, 1, 1, 1> : (const void *)gdn_scan_wg_kernel<128, 2, 0, 1, 1, 1>;
  }
  if (o_mode == 3) /* folded, no output: the transition pass */
    return f16 ? (const void *)gdn_scan_wg_kernel<128, WG, 1, 0, 1> : (const void *)gdn_scan_wg_kernel<128, WG, 0, 0, 1>;
  if (o_mode == 2)
    return f16 ? (const void *)gdn_scan_wg_kernel<128, WG, 1, 1, 1> : (const void *)gdn_scan_wg_kernel<128, WG, 0, 1, 1>;
  if (o_mode == 1)
    return f16 ? (const void *)gdn_scan_wg_kernel<128, WG, 1, 1, 0> : (const void *)gdn_scan_wg_kernel<128, WG, 0, 1, 0>;
  return f16 ? (const void *)gdn_scan_wg_kernel<128, WG, 1, 0, 0> : (const void *)gdn_scan_wg_kernel<128, WG, 0, 0, 0>;
}

/* BV = 64 (one warpgroup) or 128 (two); NULL otherwise. */
extern "C" const void *gdn_scan_wg_kernel_k128(int bv, int f16, int o_mode) {
  if (bv == 64) return wg_fn<1>(f16, o_mode);
  if (bv == 128) return wg_fn<2>(f16, o_mode);
  return NULL;
}
