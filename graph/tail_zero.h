/* Internal: zeroes output rows [num_tokens, max_tokens) of a [T, H, D] 16-bit tensor
 * after a batch, so rows beyond the batch are defined (reads num_tokens on the device). */
#ifndef GDN_TAIL_ZERO_H
#define GDN_TAIL_ZERO_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

gdn_status gdn_tail_zero_launch(const gdn_batch *batch, const gdn_tensor *out, int sm_count, cudaStream_t stream);
gdn_status gdn_tail_zero_add_node(const gdn_batch *batch, const gdn_tensor *out, int sm_count, cudaGraph_t graph,
                                  const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node);

#ifdef __cplusplus
}
#endif
#endif
