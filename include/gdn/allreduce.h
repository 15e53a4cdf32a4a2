/* In-place NCCL all-reduce (sum) of a tensor-parallel partial result, eager or as a graph
 * node (ncclAllReduce captured into the caller's graph after given dependencies).
 *
 * NCCL errors map to GDN_ERROR_NCCL with ncclGetErrorString and ncclGetLastError in the
 * message. Communicators must be blocking (the default); a call must run with the
 * communicator's device current, on a stream of that device. Every rank must add/launch
 * the same sequence of collectives (usual NCCL rules); in a graph, every rank's graph must
 * be launched for the collective to complete. On H100/H200 test machines keep
 * NCCL_NVLS_ENABLE=0 (set it before creating communicators). */
#ifndef GDN_ALLREDUCE_H
#define GDN_ALLREDUCE_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Same declaration as nccl.h (a repeated identical typedef is valid C11 and C++), so this
 * header does not need the NCCL include path. */
typedef struct ncclComm *ncclComm_t;

/* Host-only checks: comm non-NULL, dtype bf16/fp16/fp32, buffer non-NULL when count > 0. */
gdn_status gdn_allreduce_validate(ncclComm_t comm, const void *buffer, size_t count, gdn_dtype dtype);

/* buffer[0..count) = sum over ranks, in place, enqueued on `stream`. */
gdn_status gdn_allreduce_launch(ncclComm_t comm, void *buffer, size_t count, gdn_dtype dtype, cudaStream_t stream);

/* Adds the all-reduce to `graph` after deps[0..num_deps) by capturing it on
 * `stream_for_capture` (a created stream of the communicator's device, not capturing;
 * used only during this call). *node completes after the collective. count == 0 adds an
 * empty node.
 *
 * Before capturing, the all-reduce runs once eagerly on `buffer` (its contents are
 * overwritten) so NCCL sets up its peer connections outside capture; like every NCCL
 * call it is collective: all ranks add their node at the same point. */
gdn_status gdn_allreduce_add_node(cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps, ncclComm_t comm,
                                  void *buffer, size_t count, gdn_dtype dtype, cudaStream_t stream_for_capture,
                                  cudaGraphNode_t *node);

/* ncclCommInitAll over devs[0..ndev) (devs NULL: devices 0..ndev-1), one communicator per
 * device in this process, with error mapping. Free each with gdn_nccl_comm_destroy. */
gdn_status gdn_nccl_comm_init_all(int ndev, const int *devs, ncclComm_t *comms);

/* The communicator's CUDA device and number of ranks (ncclCommCuDevice, ncclCommCount). */
gdn_status gdn_nccl_comm_info(ncclComm_t comm, int *device, int *nranks);

/* ncclCommDestroy with error mapping; NULL is a no-op. */
gdn_status gdn_nccl_comm_destroy(ncclComm_t comm);

#ifdef __cplusplus
}
#endif
#endif
