/* Benchmark helpers: CUDA-event timing with warm-up, median of repeats. */
#ifndef GDN_BENCH_UTIL_H
#define GDN_BENCH_UTIL_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*gdn_bench_fn)(void *ctx, cudaStream_t stream);

/* Median device time in microseconds of `fn` over `reps` runs after `warmup` runs,
 * each run timed with its own pair of events. */
double gdn_bench_median_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps);
/* Median host time (microseconds) spent inside fn per call, no synchronization inside. */
double gdn_bench_host_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps);
/* Achieved device-to-device copy bandwidth (GB/s, bytes read + written) for `bytes`. */
double gdn_bench_copy_gbps(size_t bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
