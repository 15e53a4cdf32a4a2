/* prologue: the per-token gating of GDN prefill and the chunk-local cumsums.
 *   g_t    = -exp(A_log[h]) * softplus(a_t + dt_bias[h])   (log-space, <= 0)
 *   beta_t = sigmoid(b_t)
 *   g_cum  = chunk-local inclusive cumsum of g (chunks of 64 from each sequence start)
 *   gk_cum = chunk-local inclusive cumsum of (gk + g) per key, when a per-key gate is given
 * With `precomputed`, a holds the log-space gate g itself and b holds beta itself (FLA's
 * convention); A_log and dt_bias are not read.
 * Every per-token log gate (g, and g + gk per key) is clamped at GDN_LOG_GATE_MIN: a decay
 * below e^-30 (~1e-13) is a full reset at fp32 resolution, and the floor keeps the chunk
 * cumsums finite, so exp(G_i - G_j) never meets inf - inf (a gate of -inf, or
 * exp(A_log) overflowing fp32, resets the state instead of producing NaN).
 * Outputs are fp32 and tiny; q/k normalization happens inside the consumers. */
#ifndef GDN_PROLOGUE_H
#define GDN_PROLOGUE_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/device.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_LOG_GATE_MIN (-30.0f)

typedef struct gdn_prologue_args {
  gdn_batch batch;
  gdn_tensor a;       /* [T, Hv] any float dtype and strides; required when use_g */
  gdn_tensor b;       /* [T, Hv] any float dtype and strides; required when beta is wanted */
  gdn_tensor A_log;   /* [Hv] float; required when use_g */
  gdn_tensor dt_bias; /* [Hv] float; required when use_g */
  gdn_tensor gk;      /* optional [T, Hv, K] float, per-key log gate (last dim contiguous) */
  int use_g;          /* 0: no scalar gate (g = 0) */
  gdn_tensor g_cum;   /* optional out [T, Hv] fp32: cumsum of g */
  gdn_tensor gk_cum;  /* out [T, Hv, K] fp32 when gk is given: cumsum of gk + g */
  gdn_tensor beta;    /* optional out [T, Hv] fp32 */
  int precomputed;    /* 1: a is g (log space) and b is beta, as given by the caller */
} gdn_prologue_args;

typedef struct gdn_prologue_config {
  int threads;        /* per block (256): a block handles one chunk x 32 (head, key) columns */
} gdn_prologue_config;

gdn_status gdn_prologue_validate(const gdn_prologue_args *args);
gdn_status gdn_prologue_plan(const gdn_prologue_args *args, const gdn_device_info *dev, gdn_prologue_config *cfg);
gdn_status gdn_prologue_launch(const gdn_prologue_args *args, const gdn_prologue_config *cfg, cudaStream_t stream);
gdn_status gdn_prologue_add_node(const gdn_prologue_args *args, const gdn_prologue_config *cfg, cudaGraph_t graph,
                                 const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node);

#ifdef __cplusplus
}
#endif
#endif
