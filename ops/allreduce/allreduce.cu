/* NCCL all-reduce: eager, captured graph node, communicator setup and queries, error mapping. */
#include <cuda_runtime.h>
#include <nccl.h>
#include "core/capture.h"
#include "core/cuda_util.h"
#include "gdn/allreduce.h"
#include "ops/allreduce/nccl_util.h"

extern "C" gdn_status gdn_nccl_fail(ncclResult_t r, ncclComm_t comm, const char *what) {
  const char *last = ncclGetLastError(comm);
  return gdn_fail(GDN_ERROR_NCCL, "%s failed: %s (%d)%s%s", what, ncclGetErrorString(r), (int)r,
                  last != NULL && last[0] != '\0' ? "; last NCCL error: " : "", last != NULL ? last : "");
}

namespace {

ncclDataType_t nccl_type(gdn_dtype d) {
  return d == GDN_DTYPE_BF16 ? ncclBfloat16 : d == GDN_DTYPE_F16 ? ncclFloat16 : ncclFloat32;
}

gdn_status all_reduce(ncclComm_t comm, void *buffer, size_t count, gdn_dtype dtype, cudaStream_t stream) {
  ncclResult_t r = ncclAllReduce(buffer, buffer, count, nccl_type(dtype), ncclSum, comm, stream);
  if (r == ncclInProgress)
    return gdn_fail(GDN_ERROR_NCCL, "ncclAllReduce returned ncclInProgress: non-blocking communicators are not supported");
  if (r != ncclSuccess) return gdn_nccl_fail(r, comm, "ncclAllReduce");
  return GDN_SUCCESS;
}

} /* namespace */

extern "C" gdn_status gdn_allreduce_launch(ncclComm_t comm, void *buffer, size_t count, gdn_dtype dtype,
                                           cudaStream_t stream) {
  gdn_clear_last_error();
  GDN_TRY(gdn_allreduce_validate(comm, buffer, count, dtype));
  if (count == 0) return GDN_SUCCESS;
  return all_reduce(comm, buffer, count, dtype, stream);
}

extern "C" gdn_status gdn_allreduce_add_node(cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                             ncclComm_t comm, void *buffer, size_t count, gdn_dtype dtype,
                                             cudaStream_t stream_for_capture, cudaGraphNode_t *node) {
  gdn_clear_last_error();
  if (graph == NULL || node == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "allreduce_add_node: graph and node must not be NULL");
  GDN_TRY(gdn_allreduce_validate(comm, buffer, count, dtype));
  if (count == 0) {
    GDN_CUDA_TRY(cudaGraphAddEmptyNode(node, graph, deps, num_deps));
    return GDN_SUCCESS;
  }
  /* NCCL connects peers lazily on a collective's first run, and cannot while a stream
   * is capturing ("operation not permitted when stream is capturing"): run the same
   * collective once eagerly first, so its algorithm's connections exist. Collective:
   * every rank adds its node at the same point (as with any NCCL call). */
  GDN_TRY(all_reduce(comm, buffer, count, dtype, stream_for_capture));
  GDN_CUDA_TRY(cudaStreamSynchronize(stream_for_capture));
  GDN_TRY(gdn_capture_begin(stream_for_capture, graph, deps, num_deps));
  gdn_status s = all_reduce(comm, buffer, count, dtype, stream_for_capture);
  if (s != GDN_SUCCESS) {
    gdn_capture_abort(stream_for_capture);
    return s;
  }
  return gdn_capture_end(stream_for_capture, graph, node);
}

extern "C" gdn_status gdn_nccl_comm_init_all(int ndev, const int *devs, ncclComm_t *comms) {
  gdn_clear_last_error();
  if (ndev < 1) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "nccl_comm_init_all: ndev is %d, expected >= 1", ndev);
  if (comms == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "nccl_comm_init_all: comms is NULL");
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    return gdn_fail(GDN_ERROR_NO_DEVICE, "nccl_comm_init_all: no CUDA device is visible");
  }
  for (int i = 0; i < ndev; ++i) {
    int d = devs != NULL ? devs[i] : i;
    if (d < 0 || d >= n)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "nccl_comm_init_all: devs[%d] = %d is outside [0, %d)", i, d, n);
    comms[i] = NULL;
  }
  ncclResult_t r = ncclCommInitAll(comms, ndev, devs);
  if (r != ncclSuccess) return gdn_nccl_fail(r, NULL, "ncclCommInitAll");
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_nccl_comm_info(ncclComm_t comm, int *device, int *nranks) {
  gdn_clear_last_error();
  if (comm == NULL || device == NULL || nranks == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "nccl_comm_info: comm, device and nranks must not be NULL");
  ncclResult_t r = ncclCommCuDevice(comm, device);
  if (r != ncclSuccess) return gdn_nccl_fail(r, comm, "ncclCommCuDevice");
  r = ncclCommCount(comm, nranks);
  if (r != ncclSuccess) return gdn_nccl_fail(r, comm, "ncclCommCount");
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_nccl_comm_destroy(ncclComm_t comm) {
  gdn_clear_last_error();
  if (comm == NULL) return GDN_SUCCESS;
  ncclResult_t r = ncclCommDestroy(comm);
  /* The communicator is gone: no per-communicator last error to ask for. */
  if (r != ncclSuccess) return gdn_nccl_fail(r, NULL, "ncclCommDestroy");
  return GDN_SUCCESS;
}
