/* Capturing library calls we cannot emit as explicit nodes (cuBLASLt, NCCL) into a
 * caller's graph: stream capture straight into an existing graph, after given deps. */
#ifndef GDN_CORE_CAPTURE_H
#define GDN_CORE_CAPTURE_H

#include <cuda_runtime_api.h>
#include "core/check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts capturing `stream` into `graph` (cudaStreamBeginCaptureToGraph, thread-local
 * mode): the first captured work depends on deps[0..n). `stream` must be a non-default
 * stream that is not already capturing. */
gdn_status gdn_capture_begin(cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *deps, size_t n);

/* Ends the capture and returns in *node one node that completes after everything
 * captured: the single leaf of the capture, or, when the capture left several leaves
 * (or none), an empty node added after them. On failure the graph may hold part of
 * the captured work: discard it. */
gdn_status gdn_capture_end(cudaStream_t stream, cudaGraph_t graph, cudaGraphNode_t *node);

/* Ends a capture after an error in the captured calls, so the stream is usable again.
 * The captured nodes stay in the graph; the recorded last-error message is kept. */
void gdn_capture_abort(cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
