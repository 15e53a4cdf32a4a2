/* Device side of the copy engine (sm_90a only): bulk tensor loads into shared memory that
 * complete on an mbarrier, the barrier's expected-bytes arrival, the arrival that follows a
 * thread's cp.async, and the warpgroup register re-split of producer / consumer kernels. */
#ifndef GDN_CORE_TMA_CUH
#define GDN_CORE_TMA_CUH

#include <stdint.h>
#include "core/mma.cuh" /* gdn_smem_addr */
#include "core/tma.h"

/* The box of `map` at (x column, y row, z head) into shared memory at dst (1024-byte
 * aligned for the swizzle); its bytes count against bar's expected transaction bytes. */
__device__ __forceinline__ void gdn_tma_load_3d(void *dst, const gdn_tma_map *map, uint64_t *bar, int x, int y, int z) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          gdn_smem_addr(dst)),
      "l"((uint64_t)map), "r"(x), "r"(y), "r"(z), "r"(gdn_smem_addr(bar))
      : "memory");
}
/* Fetches the map into the copy engine's descriptor cache ahead of its first use. */
__device__ __forceinline__ void gdn_tma_prefetch_map(const gdn_tma_map *map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"((uint64_t)map) : "memory");
}
/* After mbarrier.init, before the barriers are used by the copy engine (async proxy). */
__device__ __forceinline__ void gdn_mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
/* An arrival on bar that also expects `bytes` more transaction bytes in this phase. */
__device__ __forceinline__ void gdn_mbar_arrive_expect_tx(uint64_t *bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(gdn_smem_addr(bar)), "r"(bytes)
               : "memory");
}
/* An arrival on bar once every cp.async this thread issued so far has landed (counted in
 * the barrier's initial arrival count: noinc). */
__device__ __forceinline__ void gdn_cp_async_mbar_arrive(uint64_t *bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(gdn_smem_addr(bar)) : "memory");
}
/* Every warp of a warpgroup: raise / lower its registers per thread to N (a multiple of 8;
 * the CTA's total stays what it launched with). */
template <int N> __device__ __forceinline__ void gdn_setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N> __device__ __forceinline__ void gdn_setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

#endif
