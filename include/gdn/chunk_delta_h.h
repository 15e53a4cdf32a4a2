/* chunk_delta_h: the gated delta-rule chunk state recurrence (FLA's
 * chunk_gated_delta_rule_fwd_h), and chunk_scan_o: the same scan with the chunk
 * output fused in, so neither h nor v_new makes a round trip through memory.
 *
 * Per (sequence, value head), chunk size 64, state S [K x V] fp32, for each chunk c:
 *   h_c = S;  v_new = u - w S;
 *   with g:  v_new_t *= exp(g_last - g_t),  S *= exp(g_last);
 *   with gk: S[k, :] *= exp(gk_last[k])    (k must then be the gated key k*exp(gk_last - gk));
 *   S += k^T v_new.
 * g / gk are chunk-local inclusive cumsums of the log gates (ops/prologue makes them).
 * The initial state is read from a pool [slots, Hv, V, K] (fp32, bf16 or fp16; any strides)
 * by the sequence's slot; the final state is written back to the same slot in place; slot
 * -1 means zero initial state and no write. The pool is updated exactly once per launch.
 * With state_out the final states go to that tensor instead, at the batch's output rows
 * (gdn_batch.slots_out; copy-on-write slots, or separate initial / final state tensors).
 * Checkpoints (optional): the state after every checkpoint_every tokens of each sequence
 * (a multiple of 64), at rows batch.checkpoint_offsets[seq] + j of [rows, Hv, V, K].
 * Context parallelism: when the batch was set up with segments (gdn_batch_setup with
 * cp_min_chunks > 0) the scan runs as three kernels: the segments' transitions in
 * parallel, a short combine over each sequence's segments, then the scan proper from
 * each segment's exact incoming state. It needs cp_workspace (gdn_scan_cp_workspace_bytes).
 *
 * Launch configuration (V-block, warps, cp.async stages) is fixed at plan time from the
 * shape and device; overrides: GDN_CHUNK_H_BV (32|64|128), GDN_CHUNK_H_NUM_WARPS, GDN_CHUNK_H_NUM_STAGES
 * (1..4), GDN_CHUNK_H_COLUMN_SPLIT (0|1), validated against the kernels built and the
 * device's shared memory. Two kernels: column split, for K <= 128, one warp per 16 value
 * columns keeping them in registers (BV 32 / 64 / 128 with 2 / 4 / 8 warps; the default for
 * many long sequences), and row groups, for any K (BV 32 with 4 or 8 warps, BV 64 with 4
 * (K < 256) or 8). A BV/warps override that only one kernel builds selects that kernel.
 * On compute capability 9.0 (an sm_90 build, K = 128) two warpgroup kernels: the column split
 * on wgmma (BV 64 / 128), and for chunk_delta_h the key-row scan (BV 32 / 64 / 128, a compute
 * warpgroup per 32 columns holding S [K x 32]), planned for batches of few (sequence, head)
 * pairs (GDN_CHUNK_H_KEY_ROWS=0|1 overrides). */
#ifndef GDN_CHUNK_DELTA_H_H
#define GDN_CHUNK_DELTA_H_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/batch_setup.h"
#include "gdn/device.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_scan_config {
  int bv;          /* V columns per CTA */
  int num_warps;   /* BV / 16 (column split; its warpgroup form adds a producer warpgroup), BV / 8 (key rows,
                      plus the producer), or 4 / 8 (row groups) */
  int num_stages;  /* shared-memory pipeline depth */
  size_t smem_bytes;
  int o_mode;      /* 0 chunk_delta_h, 1 chunk_scan_o, 2 chunk_scan_o in the folded WY form */
  int column_split; /* 1: the column-split kernel (K <= 128), 2: its warpgroup (wgmma) form on compute
                       capability 9.0 (K = 128, BV 64 / 128), 3: the key-row warpgroup scan (chunk_delta_h on
                       compute capability 9.0, K = 128, BV 32 / 64 / 128), 0: the row-group kernel */
  int cp_stages;   /* stages of the transition pass of a segmented batch (0: no segments) */
  size_t cp_smem_bytes;
} gdn_scan_config;

typedef struct gdn_chunk_delta_h_args {
  gdn_batch batch;
  gdn_tensor k;     /* [T, Hkk, K] bf16/fp16, Hkk divides Hv (grouped value heads) */
  gdn_tensor w;     /* [T, Hv, K] */
  gdn_tensor u;     /* [T, Hv, V] */
  gdn_tensor g;     /* optional [T, Hv] fp32 */
  gdn_tensor gk;    /* optional [T, Hv, K] fp32 */
  gdn_tensor state; /* optional pool [num_slots, Hv, V, K] fp32 / bf16 / fp16 */
  gdn_tensor h;     /* optional out [NT, Hv, K, V], k's dtype or fp32, NT >= batch.max_chunks */
  gdn_tensor v_new; /* optional out [T, Hv, V], k's dtype */
  gdn_tensor state_out;   /* optional out [rows, Hv, V, K]: final states at batch.slots_out */
  gdn_tensor checkpoints; /* optional out [rows, Hv, V, K] fp32 / bf16 / fp16 */
  int checkpoint_every;   /* tokens, a multiple of 64 (with checkpoints) */
  void *cp_workspace;     /* with a segmented batch: gdn_scan_cp_workspace_bytes, 16-byte aligned */
  size_t cp_workspace_bytes;
} gdn_chunk_delta_h_args;

gdn_status gdn_chunk_delta_h_validate(const gdn_chunk_delta_h_args *args);
gdn_status gdn_chunk_delta_h_plan(const gdn_chunk_delta_h_args *args, const gdn_device_info *dev,
                                  gdn_scan_config *cfg);
gdn_status gdn_chunk_delta_h_launch(const gdn_chunk_delta_h_args *args, const gdn_scan_config *cfg,
                                    cudaStream_t stream);
gdn_status gdn_chunk_delta_h_add_node(const gdn_chunk_delta_h_args *args, const gdn_scan_config *cfg,
                                      cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                      cudaGraphNode_t *node);

/* chunk_scan_o: the same scan with the chunk output computed inside it:
 *   o_i = scale * qf_i * exp(g_i) * (q_i S_c) + sum_{j<=i} aqk_ij v_new_j
 *   S   = exp(g_last) [exp(gk_last)] S + sum_j k_j^T (kf_j exp(g_last - g_j) v_new_j)
 * aqk [T, Hv, 64] (16-bit) is the scaled causal intra-chunk matrix
 * scale qf_i kf_j exp(g_i - g_j) (q_i . k_j) for j <= i, 0 above the diagonal: it does
 * not depend on the state, so chunk_intra builds it in parallel and the sequential loop
 * only runs the state products. qf / kf are optional per-row factors [T, Hv] fp32
 * (1/||q||, 1/||k|| when q and k are l2-normalized; chunk_intra makes them). With a
 * per-key gate pass the gated key kg, the gated query qg = q exp(G) and gk (g absent).
 * Folded WY form (K <= 128, no gk): give v and tu = (I + A)^-1 diag(beta) instead of w and
 * u; the scan applies w = tu diag(kf e^g) k and u = tu v itself, so w and u never exist.
 * Output norm (optional, folded form): with norm_z given, o receives the gated RMSNorm of the
 * output, o_i * rsqrt(mean(o_i^2) + norm_eps) * norm_weight * silu(z_i) (gdn_gated_rmsnorm's
 * math on the 16-bit o), applied where the scan writes o. It runs in the warpgroup scan over
 * whole rows (compute capability 9.0, K = V = 128); the plan refuses it elsewhere
 * (GDN_ERROR_UNSUPPORTED: run gdn_gated_rmsnorm on o instead). */
typedef struct gdn_chunk_scan_o_args {
  gdn_batch batch;
  gdn_tensor q;     /* [T, Hq, K], Hq divides Hv */
  gdn_tensor k;     /* [T, Hkk, K] */
  gdn_tensor w;     /* [T, Hv, K] */
  gdn_tensor u;     /* [T, Hv, V] */
  gdn_tensor v;     /* folded WY form, instead of w and u: [T, Hv, V] */
  gdn_tensor tu;    /* folded WY form: [T, Hv, 64] 16-bit, (I + A)^-1 diag(beta) (chunk_intra's tu) */
  gdn_tensor aqk;   /* [T, Hv, 64], q's dtype, 16-byte aligned rows */
  gdn_tensor g;     /* optional [T, Hv] fp32 */
  gdn_tensor gk;    /* optional [T, Hv, K] fp32 */
  gdn_tensor qf;    /* optional [T, Hv] fp32 */
  gdn_tensor kf;    /* optional [T, Hv] fp32 */
  gdn_tensor state; /* optional pool */
  gdn_tensor o;     /* out [T, Hv, V] */
  gdn_tensor h;     /* optional out, as in chunk_delta_h */
  gdn_tensor v_new; /* optional out */
  float scale;
  gdn_tensor state_out;   /* as in chunk_delta_h */
  gdn_tensor checkpoints;
  int checkpoint_every;
  void *cp_workspace;
  size_t cp_workspace_bytes;
  gdn_tensor norm_z;      /* optional [T, Hv, V], o's dtype, last dim contiguous, 16-byte aligned rows */
  gdn_tensor norm_weight; /* [V] any float dtype and stride, with norm_z */
  double norm_eps;        /* 0 selects 1e-6 (GDN_GATED_RMSNORM_DEFAULT_EPS); else finite, >= FLT_MIN */
} gdn_chunk_scan_o_args;

gdn_status gdn_chunk_scan_o_validate(const gdn_chunk_scan_o_args *args);
gdn_status gdn_chunk_scan_o_plan(const gdn_chunk_scan_o_args *args, const gdn_device_info *dev,
                                 gdn_scan_config *cfg);
gdn_status gdn_chunk_scan_o_launch(const gdn_chunk_scan_o_args *args, const gdn_scan_config *cfg,
                                   cudaStream_t stream);
gdn_status gdn_chunk_scan_o_add_node(const gdn_chunk_scan_o_args *args, const gdn_scan_config *cfg,
                                     cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                     cudaGraphNode_t *node);

/* Context parallelism for chunk_delta_h on `dev` (K x V heads): sets the batch setup's cp_*
 * fields and returns 0 where this operator gains from segments, else -1 (nothing set). On
 * compute capability 9.0 (K = 128) the key-row scan makes every 32 value columns a chain, so
 * only batches of at most SMs / 8 such chains are cut; elsewhere it is
 * gdn_batch_setup_context_parallel (the prefill's policy). */
int gdn_chunk_delta_h_context_parallel(gdn_batch_setup_args *args, int Hv, int K, int V, const gdn_device_info *dev);

/* Workspace of the context-parallel schedule over `batch` (0 when it has no segments). */
size_t gdn_scan_cp_workspace_bytes(const gdn_batch *batch, int Hv, int V, int K);

/* Shared memory one CTA of the scan needs for a configuration (bytes). */
size_t gdn_scan_config_smem(int K, int column_split, int bv, int num_stages, int o_mode);

#ifdef __cplusplus
}
#endif
#endif
