/* Internal: parameters of the intra-chunk kernels (KK^T, triangular solve, WY). */
#ifndef GDN_INTRA_PARAMS_H
#define GDN_INTRA_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "gdn/batch.h"

#ifdef __CUDACC__
#define GDN_HD __host__ __device__
#else
#define GDN_HD
#endif

typedef struct gdn_intra_params {
  const int32_t *cu_seqlens, *chunk_offsets, *chunk_seq;
  const gdn_batch_header *header;
  int Hv, K, V, group_k, group_q;
  const void *k; int64_t k_st, k_sh;
  const void *v; int64_t v_st, v_sh;
  const void *q; int64_t q_st, q_sh;
  const float *beta; int64_t beta_st, beta_sh;
  const float *g; int64_t g_st, g_sh;
  const float *gk; int64_t gk_st, gk_sh;
  void *a_inv; int a_f32; int64_t a_st, a_sh; /* [T, Hv, 64] */
  int load_a, store_a;
  void *w; int64_t w_st, w_sh;
  void *u; int64_t u_st, u_sh;
  void *qg; int64_t qg_st, qg_sh;
  void *kg; int64_t kg_st, kg_sh;
  void *aqk; int64_t aqk_st, aqk_sh;     /* 16-bit [T, Hv, 64] */
  void *tu; int64_t tu_st, tu_sh;        /* 16-bit [T, Hv, 64]: T diag(beta) (folded WY form) */
  float *qf; int64_t qf_st, qf_sh;       /* row factors 1/||q||, 1/||k|| (or 1) */
  float *kf; int64_t kf_st, kf_sh;
  float scale;
  int l2norm;
  int heads_per_cta; /* value heads per CTA (the folded-form kernel: those sharing one q / k head) */
} gdn_intra_params;

/* Shared memory of the tensor-core path (scalar gate). One region is reused in turn
 * by the q tile (aqk), A (the solve's input) and the two 16-bit copies of T (only when
 * w and u are made: V > 0), so three CTAs fit on an SM at K = V = 128, and four when only
 * Tu is stored (V = 0: no v tile either). */
GDN_HD static inline size_t gdn_intra_fast_region(int K, int V) {
  size_t q = (size_t)64 * (size_t)(K + 8) * 2u, a = 64u * 65u * 4u, tw = V > 0 ? 2u * 64u * 72u * 2u : 0u;
  size_t m = q > a ? q : a;
  return m > tw ? m : tw;
}
GDN_HD static inline int gdn_intra_v_pitch(int V) { return V > 0 ? V + 8 : 0; }
static inline size_t gdn_intra_fast_smem(int K, int V) {
  return (size_t)64 * (size_t)(K + 8) * 2u + (size_t)64 * (size_t)gdn_intra_v_pitch(V) * 2u +
         gdn_intra_fast_region(K, V) + 64u * 65u * 4u + 3u * 16u * 17u * 4u + 4u * 64u * 4u;
}

/* Shared memory of the grouped folded-form kernel (G value heads per CTA, intra_group.cuh):
 * region 0 = the k and q tiles, later A hi / lo, the aqk staging tile and A's fp32 diagonal
 * blocks (4 x (16 x 24 + 8) floats); then the Tu staging tile, the transposed diagonal
 * inverses (hi / lo, [64][24]) and the per-token rows rq, rk and beta, g, h per head. */
GDN_HD static inline size_t gdn_intra_group_region0(int K) {
  size_t tiles = (size_t)2 * 64u * (size_t)(K + 8) * 2u, solve = 3u * 64u * 72u * 2u + 4u * (16u * 24u + 8u) * 4u;
  return tiles > solve ? tiles : solve;
}
static inline size_t gdn_intra_group_smem(int K, int G) {
  return gdn_intra_group_region0(K) + 64u * 72u * 2u + 2u * 64u * 24u * 2u + 4u * (128u + 3u * 64u * (size_t)G);
}

/* Shared memory of the per-key-gate path. */
static inline size_t gdn_intra_gk_smem(int K) {
  return (size_t)64 * (size_t)K * 4u * 2u + 2u * 64u * 65u * 4u + 3u * 16u * 17u * 4u + 4u * 64u * 4u;
}

#endif
