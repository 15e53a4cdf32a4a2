/* Instantiations of the key-row warpgroup scan (chunk_delta_h, K = 128), built for sm_90a only. */
#include "ops/chunk_scan/scan_wgk_kernel.cuh"

/* The planner's size formula (scan_params.h, C) is the kernel's layout. */
template <int WG>
constexpr bool wgk_smem_matches() {
  return 1024 + 2 * gdn_scan_smem<128, 32 * WG, 0, 0, 1>::stage + WG * gdn_scan_wgk_tiles<128>::bytes + 64 ==
         gdn_scan_wgk_smem_bytes(128, 32 * WG, 2);
}
static_assert(wgk_smem_matches<1>() && wgk_smem_matches<2>() && wgk_smem_matches<4>(),
              "gdn_scan_wgk_smem_bytes differs from the key-row kernel's layout");

template <int WG>
static const void *wgk_fn(int f16) {
  return f16 ? (const void *)gdn_scan_wgk_kernel<128, WG, 1> : (const void *)gdn_scan_wgk_kernel<128, WG, 0>;
}

/* BV = 32 x (compute warpgroups): 32, 64 or 128; NULL otherwise. */
extern "C" const void *gdn_scan_wgk_kernel_k128(int bv, int f16) {
  if (bv == 32) return wgk_fn<1>(f16);
  if (bv == 64) return wgk_fn<2>(f16);
  if (bv == 128) return wgk_fn<4>(f16);
  return NULL;
}
