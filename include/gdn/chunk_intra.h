/* chunk_intra: the intra-chunk part of the chunked gated delta rule, per (chunk, value head).
 *   A     = strict_lower(beta_i k_i . k_j e^{G_i - G_j})     (per key with gk)
 *   A_inv = (I + A)^-1                                       (the 64x64 triangular solve)
 *   w     = A_inv (beta k e^G),   u = A_inv (beta v)          (WY representation)
 * G = g_cum (+ gk_cum per key). With l2norm, k (and q) rows are normalized on the fly.
 * Modes:
 *   GDN_INTRA_FUSED     — A, solve and WY in one kernel, no A_inv round trip (A_inv
 *                         may still be written). It can also emit what chunk_scan_o
 *                         consumes: aqk = causal_{j<=i}(scale q_i . k_j e^{G_i - G_j})
 *                         with normalized q, k (16-bit), the row factors qf = 1/||q||,
 *                         kf = 1/||k|| (scalar gate), and with gk the gated
 *                         kg = k e^{G_last - G} and qg = q e^G.
 *   GDN_INTRA_KKT_SOLVE — A and solve only: writes A_inv (FLA chunk_scaled_dot_kkt + solve_tril).
 *   GDN_INTRA_WY        — reads A_inv, writes w and u (FLA recompute_w_u).
 * Without a per-key gate the products run on tensor cores (fp32 accumulation, 16-bit
 * operands; the solve is fp32); the per-key path is fp32 on CUDA cores. */
#ifndef GDN_CHUNK_INTRA_H
#define GDN_CHUNK_INTRA_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/device.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gdn_intra_mode { GDN_INTRA_FUSED = 0, GDN_INTRA_KKT_SOLVE = 1, GDN_INTRA_WY = 2 } gdn_intra_mode;

typedef struct gdn_chunk_intra_args {
  gdn_intra_mode mode;
  gdn_batch batch;
  gdn_tensor k;     /* [T, Hk, K] bf16/fp16, Hk divides Hv */
  gdn_tensor v;     /* [T, Hv, V] (FUSED, WY) */
  gdn_tensor q;     /* [T, Hq, K], only for qg / aqk / qf */
  gdn_tensor beta;  /* [T, Hv] fp32 */
  gdn_tensor g;     /* optional [T, Hv] fp32 chunk-local cumsum */
  gdn_tensor gk;    /* optional [T, Hv, K] fp32 chunk-local cumsum (added to g) */
  int l2norm;
  float scale;      /* for aqk */
  gdn_tensor A_inv; /* [T, Hv, 64] fp32 or k's dtype: out (KKT_SOLVE; optional in FUSED), in (WY) */
  gdn_tensor w;     /* out [T, Hv, K] (FUSED, WY) */
  gdn_tensor u;     /* out [T, Hv, V] (FUSED, WY) */
  gdn_tensor qg;    /* optional out [T, Hv, K] (FUSED with gk) */
  gdn_tensor kg;    /* optional out [T, Hv, K] (FUSED with gk) */
  gdn_tensor aqk;   /* optional out [T, Hv, 64], k's dtype (FUSED) */
  gdn_tensor qf;    /* optional out [T, Hv] fp32: 1/||q|| (l2norm) or 1 (FUSED, scalar gate) */
  gdn_tensor kf;    /* optional out [T, Hv] fp32: 1/||k|| (l2norm) or 1 (FUSED, scalar gate) */
  gdn_tensor tu;    /* optional out [T, Hv, 64], k's dtype: A_inv diag(beta), 0 above the diagonal
                       (FUSED, scalar gate), for chunk_scan_o's folded WY form; with tu and
                       neither w nor u given, FUSED skips the WY products (v is not read) */
} gdn_chunk_intra_args;

typedef struct gdn_chunk_intra_config {
  int per_key;      /* 1: the CUDA-core per-key-gate kernel */
  int folded;       /* 1: FUSED with only aqk / tu / qf / kf out (the folded WY form): the
                       split-bf16 tensor-core solve, aqk and Tu staged in shared memory */
  int heads_per_cta; /* value heads per CTA: in the folded form the G that share one q / k head
                        (q.k^T and k.k^T computed once for them), else 1 */
  int threads;
  size_t smem_bytes;
} gdn_chunk_intra_config;

gdn_status gdn_chunk_intra_validate(const gdn_chunk_intra_args *args);
gdn_status gdn_chunk_intra_plan(const gdn_chunk_intra_args *args, const gdn_device_info *dev,
                                gdn_chunk_intra_config *cfg);
gdn_status gdn_chunk_intra_launch(const gdn_chunk_intra_args *args, const gdn_chunk_intra_config *cfg,
                                  cudaStream_t stream);
gdn_status gdn_chunk_intra_add_node(const gdn_chunk_intra_args *args, const gdn_chunk_intra_config *cfg,
                                    cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                    cudaGraphNode_t *node);

#ifdef __cplusplus
}
#endif
#endif
