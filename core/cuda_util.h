/* Internal CUDA helpers: error mapping and generic kernel emission (eager launch,
 * graph kernel node, node update) used by every operator's .cu file. */
#ifndef GDN_CORE_CUDA_UTIL_H
#define GDN_CORE_CUDA_UTIL_H

#include <cuda_runtime_api.h>
#include "core/check.h"
#include "gdn/device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps a CUDA error to GDN_ERROR_CUDA / GDN_ERROR_OUT_OF_MEMORY with the call text. */
gdn_status gdn_cuda_fail(cudaError_t err, const char *what);

#define GDN_CUDA_TRY(expr)                                   \
  do {                                                       \
    cudaError_t gdn_cuda_e_ = (expr);                        \
    if (gdn_cuda_e_ != cudaSuccess) return gdn_cuda_fail(gdn_cuda_e_, #expr); \
  } while (0)

/* Queries `device`, makes it current, runs fn(ctx, &info), and restores the caller's
 * current device whatever happens: the plan builders run on the device they target. */
gdn_status gdn_with_device(int device, gdn_status (*fn)(void *ctx, const gdn_device_info *dev), void *ctx);

/* One kernel launch: a __global__ function taking a single params struct by value. */
typedef struct gdn_kernel_call {
  const void *func;
  dim3 grid;
  dim3 block;
  size_t smem;   /* dynamic shared memory; > 48 KB is opted into automatically */
  void *params;  /* pointer to the params struct (copied at launch / node creation) */
} gdn_kernel_call;

gdn_status gdn_kernel_launch(const gdn_kernel_call *call, cudaStream_t stream);
gdn_status gdn_kernel_add_node(const gdn_kernel_call *call, cudaGraph_t graph, const cudaGraphNode_t *deps,
                               size_t num_deps, cudaGraphNode_t *node);
gdn_status gdn_kernel_update_node(const gdn_kernel_call *call, cudaGraphExec_t exec, cudaGraphNode_t node);

#ifdef __cplusplus
}
#endif
#endif
