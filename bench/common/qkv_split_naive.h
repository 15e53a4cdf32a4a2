/* Bench only (bench/bench_qkv_split.c), not in the library: the unfused baseline's gather copy.
 * It stands for what a framework's .contiguous() launches on a non-contiguous view (an
 * element-wise copy, 4 elements per thread, 32-bit fast-divider index math):
 *   dst[r * cols + c] = src[r * s0 + c * s1],  r < rows, c < cols (dst row-major).
 * One launch per call. elem_bytes: 2 or 4. */
#ifndef GDN_BENCH_QKV_SPLIT_NAIVE_H
#define GDN_BENCH_QKV_SPLIT_NAIVE_H

#include <stdint.h>
#include <cuda_runtime_api.h>
#include "gdn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

gdn_status gdn_qkv_split_naive_copy(void *dst, const void *src, int64_t rows, int64_t cols, int64_t s0, int64_t s1,
                                    int elem_bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
