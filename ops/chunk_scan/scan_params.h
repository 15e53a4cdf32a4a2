/* Kernel parameters and shared-memory layout of the chunk state scan (internal).
 * Shared by the host planner (C) and the kernels (CUDA). */
#ifndef GDN_SCAN_PARAMS_H
#define GDN_SCAN_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "core/tma.h"
#include "gdn/batch.h"

/* The size formulas below are constexpr in C++, so the kernels can check them against
 * their layouts. */
#ifdef __cplusplus
#define GDN_SCAN_CONSTEXPR constexpr
#else
#define GDN_SCAN_CONSTEXPR
#endif

typedef struct gdn_scan_params {
  const int32_t *cu_seqlens, *chunk_offsets, *slots;
  const gdn_batch_header *header;
  int Hv, V;
  int group_k, group_q;         /* value heads per k head / per q head */
  const void *k; int64_t k_st, k_sh;
  const void *q; int64_t q_st, q_sh;     /* fused-output mode only */
  const void *w; int64_t w_st, w_sh;    /* w [T, Hv, K], or Tu [T, Hv, 64] when folded */
  const void *u; int64_t u_st, u_sh;    /* u [T, Hv, V], or v when folded */
  const float *g; int64_t g_st, g_sh;    /* chunk-local cumsum of the scalar gate, or NULL */
  const float *gk; int64_t gk_st, gk_sh; /* chunk-local cumsum of the per-key gate, or NULL */
  const void *aqk; int64_t aqk_st, aqk_sh;  /* O_MODE: scaled causal q.k, 16-bit [T, Hv, 64] */
  const float *qf; int64_t qf_st, qf_sh;   /* optional row factor of the q S term (e.g. 1/||q||) */
  const float *kf; int64_t kf_st, kf_sh;   /* optional row factor of v_new in the update (e.g. 1/||k||) */
  const int32_t *slots_out;              /* final-state rows (the batch's effective table) */
  const void *state_in; int64_t si_row, si_h, si_v, si_k; int si_dt;  /* [rows, Hv, V, K] or NULL */
  void *state_out; int64_t so_row, so_h, so_v, so_k; int so_dt;       /* [rows, Hv, V, K] or NULL */
  /* prefix-cache checkpoints: the state after every ckpt_chunks full chunks of a sequence */
  void *ckpt; int64_t ck_row, ck_h, ck_v, ck_k; int ck_dt;
  const int32_t *ckpt_offsets; int ckpt_chunks;
  /* context parallelism (segments != NULL): phase 0 writes the outputs, reading the
   * incoming state of a segment that is not its sequence's first from cp_x; phase 1
   * writes each segment's end state (rows < V) and its transition (rows V .. V + K,
   * identity blocks) to cp_x [max_segments][Hv][V + K][K] fp32. */
  const gdn_batch_segment *segments;
  int when_cut;                          /* gdn_batch.when_cut */
  int cp_phase;
  float *cp_x;
  int K;
  void *h; int64_t h_sc, h_sh, h_sk; int h_f32;  /* [NT, Hv, K, V] or NULL */
  int h_vec16;                           /* 16-bit h with 16-byte aligned rows: vector stores */
  void *v_new; int64_t vn_st, vn_sh;     /* or NULL */
  void *o; int64_t o_st, o_sh;           /* fused-output mode only */
  float scale;
  /* o_mode 4, the gated RMSNorm of o: z [T, Hv, V] (o's dtype), weight [V] (any float dtype) */
  const void *nz; int64_t nz_st, nz_sh;
  const void *nw; int64_t nw_s; int nw_dt;
  float n_eps;
  int stages;
  /* the warpgroup kernel (sm_90a): copy-engine maps of the 16-bit tiles of full chunks (k,
   * w or Tu, q, aqk), encoded on the host for the launch or node; tma 0: all by cp.async */
  int tma;
  gdn_tma_map tma_k, tma_w, tma_q, tma_a;
} gdn_scan_params;

/* The context-parallel workspace: per segment and value head, V + K state rows of K floats. */
static inline size_t gdn_scan_cp_bytes(int32_t max_segments, int Hv, int V, int K) {
  return (size_t)(max_segments > 0 ? max_segments : 0) * (size_t)Hv * (size_t)(V + K) * (size_t)K * 4u;
}

/* o_mode: 0 chunk_delta_h, 1 chunk_scan_o, 2 chunk_scan_o with the WY form folded in
 * (the w slot holds the 64x64 Tu tile and the u slot the v block), 3 the folded form
 * without the output (the transition pass of context parallelism), 4 the folded form with
 * the gated RMSNorm applied to its output (the warpgroup kernel over whole rows, BV = V). */
static inline GDN_SCAN_CONSTEXPR int gdn_scan_mode_has_o(int o_mode) { return o_mode == 1 || o_mode == 2 || o_mode == 4; }
static inline GDN_SCAN_CONSTEXPR int gdn_scan_mode_fold(int o_mode) { return o_mode >= 2; }
static inline GDN_SCAN_CONSTEXPR int gdn_scan_mode_norm(int o_mode) { return o_mode == 4; }

/* Rows of 16-bit tiles are padded by 8 elements against ldmatrix bank conflicts.
 * Per stage: k, w or Tu (, q) tiles, the u / v block, (the 64x64 aqk tile,) g, qf, kf rows, gk_last. */
static inline size_t gdn_scan_stage_bytes(int K, int BV, int o_mode) {
  const size_t tile_k = (size_t)64 * (size_t)(K + 8) * 2u, tile_64 = 64u * 72u * 2u;
  const int has_o = gdn_scan_mode_has_o(o_mode), fold = gdn_scan_mode_fold(o_mode);
  return tile_k * (has_o ? 2u : 1u) + (fold ? tile_64 : tile_k) + (size_t)64 * (size_t)(BV + 8) * 2u +
         (has_o ? tile_64 : 0u) + 3u * 64u * 4u + (size_t)K * 4u;
}
/* Plus the state as 16-bit [K][BV] and the two v_new tiles. */
static inline size_t gdn_scan_smem_bytes(int K, int BV, int stages, int o_mode) {
  return (size_t)stages * gdn_scan_stage_bytes(K, BV, o_mode) + (size_t)K * (size_t)(BV + 8) * 2u +
         2u * 64u * (size_t)(BV + 8) * 2u;
}

/* The column-split kernel keeps S and v_new in registers: the stages, plus per warp
 * (BV / 16 of them) three 64-float rows of per-token factors and, for chunk_delta_h, a
 * [K][24] 16-bit staging tile for the h / v_new stores. */
static inline size_t gdn_scan_col_smem_bytes(int K, int BV, int stages, int o_mode) {
  return (size_t)stages * gdn_scan_stage_bytes(K, BV, o_mode) +
         (size_t)(BV / 16) * (3u * 64u * 4u + (o_mode == 0 ? (size_t)K * 24u * 2u : 0u));
}

/* The warpgroup kernel's producer (a warpgroup: setmaxnreg moves registers by warpgroups),
 * launched beside its BV / 16 compute warps. */
#define GDN_SCAN_WG_PRODUCER_THREADS 128

/* The warpgroup kernel (the column split on wgmma, sm_90a): per stage the k, w / Tu, q, aqk
 * tiles as 1024-byte aligned swizzled slabs (no padding), the padded u block and the rows;
 * 1 KB to align the dynamic base; the stages' full / empty mbarriers; per warp the factor
 * rows and (chunk_delta_h) the h staging tile (v_new and o are staged in the warp's
 * columns of the u block); with the output norm a z tile [64][BV] and the fp32 weight [BV].
 * Two stages at least: the loads run ahead by a stage. */
static inline GDN_SCAN_CONSTEXPR size_t gdn_scan_wg_stage_bytes(int K, int BV, int o_mode) {
  const size_t tile_k = (size_t)64 * (size_t)K * 2u, tile_64 = 64u * 64u * 2u;
  const int has_o = gdn_scan_mode_has_o(o_mode), fold = gdn_scan_mode_fold(o_mode);
  const size_t raw = tile_k + (fold ? tile_64 : tile_k) + (has_o ? tile_k + tile_64 : 0u) +
                     (size_t)64 * (size_t)(BV + 8) * 2u + 3u * 64u * 4u + (size_t)K * 4u;
  return (raw + 1023u) / 1024u * 1024u;
}
static inline size_t gdn_scan_wg_smem_bytes(int K, int BV, int stages, int o_mode) {
  return 1024u + (size_t)stages * gdn_scan_wg_stage_bytes(K, BV, o_mode) + 64u /* 8 mbarriers */ +
         (size_t)(BV / 16) * (3u * 64u * 4u + (o_mode == 0 ? (size_t)K * 24u * 2u : 0u)) +
         (gdn_scan_mode_norm(o_mode) ? (size_t)BV * (64u * 2u + 4u) : 0u);
}

/* The key-row warpgroup kernel (chunk_delta_h on sm_90a: S [K x 32] per compute warpgroup,
 * BV / 32 of them): the stages of the warpgroup kernel's layout, per compute warpgroup the
 * 16-bit state tile [K][32] and v' tile [64][32], the mbarriers; 1 KB to align the base. */
static inline GDN_SCAN_CONSTEXPR size_t gdn_scan_wgk_smem_bytes(int K, int BV, int stages) {
  return 1024u + (size_t)stages * gdn_scan_wg_stage_bytes(K, BV, 0) + (size_t)(BV / 32) * ((size_t)K * 64u + 64u * 64u) +
         64u;
}

#endif
