/* The key-row warpgroup scan's plan (chunk_delta_h on compute capability 9.0, K = 128:
 * ops/chunk_scan/scan_wgk_kernel.cuh) and chunk_delta_h's context-parallel policy. */
#include <stdint.h>
#include "core/check.h"
#include "core/params.h"
#include "gdn/batch_setup.h"
#include "ops/chunk_scan/scan_plan.h"

/* Its default: the BV, or 0 for another kernel. A chain of 32 value columns walks a chunk in
 * ~1.0 us on an H200 (the column-split forms' 64 / 128-column chains: 2.0 / 3.4 us), so it
 * takes batches whose BV 32 chains fit one CTA an SM; at two an SM they take turns (TP4
 * 8 x 8192, 256 chains: 280 us vs the warpgroup column split's 254). BV 128 (four chains a
 * CTA sharing the k / w tiles) for sequences of <= 4 chunks; BV 64 where its CTAs fit one an
 * SM (TP4 8 x 8192, 128 CTAs: 228.1 vs 245.6 on the column split at BV 64); BV 128 wherever
 * one CTA a pair fills 3/4 of the SMs or more (below that the idle SMs lose: TP4 8 x 8192
 * 357 vs 246).
 * Measured (bench_chunk_delta_h; key rows vs the planner without them): TP1 1 x 8192 142.6 vs
 * 246.7 us (segmented), TP2 1 x 8192 125.4 vs 159.5 (segmented), TP4 1 x 8192 122.4 vs 131.7
 * (segmented), TP4 4 x 2048 43.2 vs 106.4 (segmented), TP1 64 x 128 217.5 vs 258.7 (row
 * groups); BV 128 against the column split at BV 128: TP1 4 x 2048 110.8 vs 120.0, TP1
 * 8 x 8192 (256 pairs, two waves) 793.7 vs 854.0. Segmented batches keep the column split
 * (TP4 1 x 8192: 131 vs 161). */
static int key_rows_bv(const gdn_batch *b, int Hv, int V, const gdn_device_info *dev) {
  if (b->segments != NULL) return 0;
  const int64_t pairs = (int64_t)b->max_seqs * Hv;
  if (pairs * (V / 32) <= dev->sm_count) return 32;
  const int short_seqs = gdn_scan_mean_chunks(b) <= 4;
  if (V % 128 == 0 && short_seqs) return 128;
  if (V % 64 == 0 && pairs * (V / 64) <= dev->sm_count) return 64;
  if (V % 128 == 0 && 4 * pairs >= 3 * (int64_t)dev->sm_count) return 128;
  return 0;
}

/* Its config: BV / 8 warps (a compute warpgroup per 32 columns), 2 stages unless overridden,
 * the transition pass of a segmented batch on the same kernel. */
static gdn_status plan_config(const gdn_scan_problem *pb, const gdn_device_info *dev, int K, int V, int bv, int warps,
                              int stages, gdn_scan_config *cfg) {
  const size_t limit = dev->smem_per_block_optin;
  if (warps == 0) warps = bv / 8;
  if (!gdn_scan_supported(K, 3, bv, warps) || V % bv != 0)
    return gdn_fail(GDN_ERROR_UNSUPPORTED,
                    "the key-row warpgroup scan takes BV 32 / 64 / 128 dividing V with BV / 8 warps (here BV=%d, %d "
                    "warps, V=%d)",
                    bv, warps, V);
  if (stages == 0) {
    stages = 2;
  } else if (stages < 2 || stages > 4) {
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "GDN_CHUNK_H_NUM_STAGES=%d is outside 2..4 (the key-row warpgroup scan)", stages);
  }
  const size_t need = gdn_scan_config_smem(K, 3, bv, stages, 0);
  if (need > limit)
    return gdn_fail(GDN_ERROR_UNSUPPORTED,
                    "the key-row warpgroup scan at BV=%d with %d stages needs %zu bytes of shared memory per block; the "
                    "device allows %zu",
                    bv, stages, need, limit);
  cfg->bv = bv;
  cfg->num_warps = warps;
  cfg->num_stages = stages;
  cfg->column_split = 3;
  cfg->smem_bytes = need;
  cfg->o_mode = 0;
  cfg->cp_stages = pb->batch->segments != NULL ? stages : 0;
  cfg->cp_smem_bytes = pb->batch->segments != NULL ? need : 0;
  return GDN_SUCCESS;
}

gdn_status gdn_scan_plan_key_rows(const gdn_scan_problem *pb, const gdn_device_info *dev, int env_bv, int env_warps,
                                  int env_stages, int env_col, int env_wg, gdn_scan_config *cfg, int *taken) {
  *taken = 0;
  if (pb->o_mode != 0) return GDN_SUCCESS; /* chunk_scan_o has no key-row form: the knob is chunk_delta_h's */
  int env_kr = -1;
  if (gdn_param_int(GDN_PARAM_CHUNK_H_KEY_ROWS, &env_kr) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if (env_kr < -1 || env_kr > 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_KEY_ROWS=%d: expected 0, 1 or -1 (planned)", env_kr);
  const int K = gdn_scan_problem_K(pb), V = (int)pb->u->sizes[2], Hv = (int)pb->w->sizes[1];
  const int here = gdn_scan_wgmma_device(K, dev) && V % 32 == 0;
  if (env_kr == 1) {
    if (env_wg == 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                      "GDN_CHUNK_H_KEY_ROWS=1 with GDN_CHUNK_H_WGMMA=0: the key-row scan is a warpgroup (wgmma) kernel");
    if (env_col >= 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                      "GDN_CHUNK_H_KEY_ROWS=1 with GDN_CHUNK_H_COLUMN_SPLIT=%d: give one kernel override", env_col);
    if (!here)
      return gdn_fail(GDN_ERROR_UNSUPPORTED,
                      "GDN_CHUNK_H_KEY_ROWS=1: the key-row warpgroup scan runs chunk_delta_h with an sm_90 build on "
                      "compute capability 9.0, K = 128 and V a multiple of 32 (here K=%d, V=%d, cc %d.%d%s)",
                      K, V, dev->cc_major, dev->cc_minor, gdn_scan_supported(128, 3, 32, 4) ? "" : ", not built for sm_90");
    *taken = 1;
    return plan_config(pb, dev, K, V, env_bv ? env_bv : 32, env_warps, env_stages, cfg);
  }
  /* planned: only where no override names another kernel or its shape */
  if (env_kr == 0 || !here || env_wg == 0 || env_col >= 0 || env_bv != 0 || env_warps != 0 || env_stages != 0)
    return GDN_SUCCESS;
  const int bv = key_rows_bv(pb->batch, Hv, V, dev);
  if (bv == 0 || gdn_scan_config_smem(K, 3, bv, 2, 0) > dev->smem_per_block_optin) return GDN_SUCCESS;
  *taken = 1;
  return plan_config(pb, dev, K, V, bv, 0, 0, cfg);
}

int gdn_chunk_delta_h_context_parallel(gdn_batch_setup_args *a, int Hv, int K, int V, const gdn_device_info *dev) {
  if (a == NULL || dev == NULL || Hv <= 0 || V <= 0) return -1;
  int env_kr = -1;
  if (gdn_param_int(GDN_PARAM_CHUNK_H_KEY_ROWS, &env_kr) < 0) env_kr = -1;
  /* Batches the key-row scan takes at BV 32 (<= SMs chains of 32 columns) stay whole unless
   * those chains leave seven eighths of the SMs idle (TP4 1 x 8192, 32 chains: 122.4 us whole
   * vs 131.7 cut on the column split; 4 x 2048, 128 chains: 43.2 vs 106.4); the rest follow
   * the prefill's policy. */
  const int64_t chains = (int64_t)(a->max_seqs > 0 ? a->max_seqs : 1) * Hv * (V / 32);
  if (env_kr != 0 && gdn_scan_hopper_wg(K, dev) && V % 32 == 0 && chains > dev->sm_count / 8 &&
      chains <= dev->sm_count)
    return -1;
  return gdn_batch_setup_context_parallel(a, Hv, dev);
}
