/* Stream capture into an existing graph (used for cuBLASLt and NCCL nodes). */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include "core/capture.h"
#include "core/cuda_util.h"

extern "C" gdn_status gdn_capture_begin(cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                        size_t n) {
  if (graph == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capture: graph is NULL");
  if (stream == NULL || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capture: the capture stream must be a created (non-default) stream");
  if (n > 0 && deps == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capture: %zu deps but deps is NULL", n);
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  GDN_CUDA_TRY(cudaStreamIsCapturing(stream, &st));
  if (st != cudaStreamCaptureStatusNone)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capture: the capture stream is already capturing");
  /* Thread-local mode: other threads may keep running unsafe calls (cudaMalloc, ...). */
  GDN_CUDA_TRY(cudaStreamBeginCaptureToGraph(stream, graph, deps, NULL, n, cudaStreamCaptureModeThreadLocal));
  return GDN_SUCCESS;
}

extern "C" void gdn_capture_abort(cudaStream_t stream) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
    cudaGraph_t g = NULL;
    cudaStreamEndCapture(stream, &g);
  }
  cudaGetLastError();
}

extern "C" gdn_status gdn_capture_end(cudaStream_t stream, cudaGraph_t graph, cudaGraphNode_t *node) {
  if (node == NULL) {
    gdn_capture_abort(stream);
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capture: node is NULL");
  }
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t *leaves = NULL;
  const cudaGraphEdgeData *edges = NULL; /* requested so a programmatic edge is not a lossy query */
  size_t n = 0;
  /* CUDA 13 gave the edge-data form (12.3's cudaStreamGetCaptureInfo_v3) the plain name. */
#if CUDART_VERSION >= 13000
  cudaError_t e = cudaStreamGetCaptureInfo(stream, &st, NULL, NULL, &leaves, &edges, &n);
#else
  cudaError_t e = cudaStreamGetCaptureInfo_v3(stream, &st, NULL, NULL, &leaves, &edges, &n);
#endif
  if (e != cudaSuccess || st != cudaStreamCaptureStatusActive) {
    gdn_capture_abort(stream);
    if (e != cudaSuccess) return gdn_cuda_fail(e, "cudaStreamGetCaptureInfo");
    return gdn_fail(GDN_ERROR_CUDA, "capture: the stream capture was invalidated (status %d)", (int)st);
  }
  /* The leaf array is only valid until the next call on the stream: copy it. */
  cudaGraphNode_t one = NULL, *copy = NULL;
  if (n == 1) {
    one = leaves[0];
  } else if (n > 1) {
    copy = (cudaGraphNode_t *)malloc(n * sizeof *copy);
    if (copy == NULL) {
      gdn_capture_abort(stream);
      return gdn_fail(GDN_ERROR_OUT_OF_MEMORY, "capture: host allocation of %zu nodes failed", n);
    }
    memcpy(copy, leaves, n * sizeof *copy);
  }
  cudaGraph_t captured = NULL;
  e = cudaStreamEndCapture(stream, &captured);
  if (e != cudaSuccess) {
    free(copy);
    return gdn_cuda_fail(e, "cudaStreamEndCapture");
  }
  if (captured != graph) {
    free(copy);
    return gdn_fail(GDN_ERROR_INTERNAL, "capture: captured into %p, expected graph %p", (void *)captured, (void *)graph);
  }
  if (n == 1) {
    *node = one;
    return GDN_SUCCESS;
  }
  /* Several leaves (or none): join them so the caller gets one dependency handle. */
  e = cudaGraphAddEmptyNode(node, graph, copy, n);
  free(copy);
  if (e != cudaSuccess) return gdn_cuda_fail(e, "cudaGraphAddEmptyNode");
  return GDN_SUCCESS;
}
