/* Gated RMSNorm (Qwen3-Next RMSNormGated, norm_before_gate=True), per token and head:
 *   out[t,h,:] = x[t,h,:] * rsqrt(mean_v(x[t,h,v]^2) + eps) * weight[:] * silu(z[t,h,:])
 * all in fp32, rounded once to out's dtype.
 *
 * Rows: T_cap = out.sizes[0]. With a batch (batch.header != NULL) the device header gives
 * num_tokens: rows < num_tokens are normalized, rows in [num_tokens, T_cap) are written
 * with zeros (so a following capacity-sized matmul reads defined values); when the header's
 * status != 0 or num_tokens is outside [0, T_cap], nothing is written. Without a batch
 * (batch.header == NULL) all T_cap rows are normalized.
 *
 * In place: out may be exactly x or exactly z (same pointer, dtype and strides); any
 * other overlap is rejected. */
#ifndef GDN_GATED_RMSNORM_H
#define GDN_GATED_RMSNORM_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/device.h"
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_GATED_RMSNORM_DEFAULT_EPS 1e-6

typedef struct gdn_gated_rmsnorm_args {
  gdn_tensor x;      /* [>= T_cap, Hv, V] bf16/fp16/fp32, last dim contiguous, any token/head strides */
  gdn_tensor z;      /* [>= T_cap, Hv, V] bf16/fp16/fp32, last dim contiguous, any token/head strides
                        (e.g. a column slice of the projection output) */
  gdn_tensor weight; /* [V] bf16/fp16/fp32, any stride */
  gdn_tensor out;    /* [T_cap, Hv, V] dtype of z, last dim contiguous, any token/head strides */
  double eps;        /* 0 selects GDN_GATED_RMSNORM_DEFAULT_EPS (1e-6); else finite, >= FLT_MIN */
  gdn_batch batch;   /* only header is read (and max_tokens <= T_cap checked); header NULL: no batch */
} gdn_gated_rmsnorm_args;

typedef struct gdn_gated_rmsnorm_config {
  int vec;             /* elements per lane access: 1, 2, 4 or 8 (<= 16 bytes for every tensor) */
  int warps_per_block; /* a warp holds 32 / lanes-per-row lane groups of two (token, head) rows; 1..32 */
} gdn_gated_rmsnorm_config;

gdn_status gdn_gated_rmsnorm_validate(const gdn_gated_rmsnorm_args *args);
gdn_status gdn_gated_rmsnorm_plan(const gdn_gated_rmsnorm_args *args, const gdn_device_info *dev,
                                  gdn_gated_rmsnorm_config *cfg);
gdn_status gdn_gated_rmsnorm_check_config(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg);
gdn_status gdn_gated_rmsnorm_launch(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg,
                                    cudaStream_t stream);
gdn_status gdn_gated_rmsnorm_add_node(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg,
                                      cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                      cudaGraphNode_t *node);
gdn_status gdn_gated_rmsnorm_update_node(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg,
                                         cudaGraphExec_t exec, cudaGraphNode_t node);

#ifdef __cplusplus
}
#endif
#endif
