/* Causal depthwise conv1d + SiLU over the q|k|v channels of the projection output,
 * with a per-sequence conv-state pool, writing q, k, v directly (no separate split).
 *
 * Channels: D = 2*Hk*K + Hv*V. Channel c of `mixed` (c < D) is
 *   q[t, c / K, c % K]                          for c <  Hk*K
 *   k[t, (c - Hk*K) / K, (c - Hk*K) % K]        for c <  2*Hk*K
 *   v[t, (c - 2Hk*K) / V, (c - 2Hk*K) % V]      otherwise.
 * Columns >= D of `mixed` (z, b, a, ...) are not read.
 *
 * For sequence n = [s0, s1) of the packed batch with slot s, token i = t - s0:
 *   x_i     = mixed[s0 + i, c]  for i >= 0;  state[s][W-1+i, c] for -(W-1) <= i < 0
 *             (zeros when s == GDN_PAD_SLOT or conv_state is absent)
 *   out_i   = silu(bias[c] + sum_{j<W} weight[c][j] * x_{i-W+1+j})      (fp32 math)
 * After the call, state[s][j, c] = x_{len-(W-1)+j} for j < W-1: the last W-1 inputs of the
 * sequence (for len < W-1 the old state shifted by len plus the new tokens; len 0 leaves
 * it unchanged). Slot GDN_PAD_SLOT is not written; other slots are untouched.
 *
 * Conv-state pool layout: [num_slots, W-1, D] (dtype of mixed, channel stride 1, any slot
 * and token strides): per slot the last W-1 input tokens, oldest first, token-major so a
 * warp reads consecutive channels. The update is race-free inside one launch: the thread
 * that reads a (slot, channel) old state is the one that writes its new state.
 *
 * Batch: batch.header, cu_seqlens and slots (NULL: all GDN_PAD_SLOT) are read on the device.
 * status != 0, or num_seqs/num_tokens outside the capacities: nothing is written. Rows
 * >= num_tokens of q, k, v are not written. A slot outside [-1, num_slots): that sequence
 * is skipped entirely (nothing written for it); gdn_batch_setup rejects such slots when
 * its num_slots matches this pool. The grid is sized from batch.max_tokens. */
#ifndef GDN_CONV1D_H
#define GDN_CONV1D_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/device.h"
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_conv1d_args {
  gdn_tensor mixed;      /* [T_cap, Dtot] bf16/fp16, Dtot >= D, last dim contiguous; read only */
  gdn_tensor weight;     /* [D, W] fp32 or mixed's dtype, any strides (PyTorch [D,1,W] squeezed); W in 2..4 */
  gdn_tensor bias;       /* [D] fp32 or mixed's dtype, optional */
  gdn_tensor conv_state; /* [num_slots, W-1, D] mixed's dtype, last dim contiguous; optional (absent: zero state, nothing kept) */
  gdn_tensor q;          /* [T_cap, Hk, K] mixed's dtype, last dim contiguous, any token/head strides */
  gdn_tensor k;          /* [T_cap, Hk, K] */
  gdn_tensor v;          /* [T_cap, Hv, V] */
  gdn_batch batch;       /* header, cu_seqlens, slots, max_seqs, max_tokens (<= T_cap) */
} gdn_conv1d_args;

typedef struct gdn_conv1d_config {
  int vec;          /* channels per thread: 1, 2, 4 or 8 (vector loads) */
  int threads;      /* threads per block (multiple of 32, <= 256) */
  int tile_tokens;  /* tokens per block (>= 1) */
} gdn_conv1d_config;

gdn_status gdn_conv1d_validate(const gdn_conv1d_args *args);
/* Chooses vec from the alignment of every tensor, threads from D, and the longest
 * tile_tokens (16..128) whose grid at batch.max_tokens keeps enough loads in flight on every
 * SM of `dev` (~32 KB). GDN_CONV1D_TILE (environment) overrides tile_tokens. */
gdn_status gdn_conv1d_plan(const gdn_conv1d_args *args, const gdn_device_info *dev, gdn_conv1d_config *cfg);
/* Checks that `cfg` fits `args` (vec vs alignment, thread/tile limits). */
gdn_status gdn_conv1d_check_config(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg);
gdn_status gdn_conv1d_launch(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg, cudaStream_t stream);
gdn_status gdn_conv1d_add_node(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg, cudaGraph_t graph,
                               const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node);
gdn_status gdn_conv1d_update_node(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg,
                                  cudaGraphExec_t exec, cudaGraphNode_t node);

#ifdef __cplusplus
}
#endif
#endif
