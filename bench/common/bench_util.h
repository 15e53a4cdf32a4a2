/* Benchmark helpers (benches and the gdn-prefill tool): CUDA-event timing with warm-up,
 * medians, host clock, Qwen3-Next-like gate parameters. */
#ifndef GDN_BENCH_UTIL_H
#define GDN_BENCH_UTIL_H

#include <cuda_runtime_api.h>
#include "gdn/reference.h"

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
/* One node of a graph, timed by itself. */
typedef struct gdn_bench_node {
  int type;           /* enum cudaGraphNodeType */
  const char *kernel; /* kernel nodes: the function's name as the driver reports it (may be mangled), else NULL */
  unsigned grid[3], block[3];
  double us;          /* median GPU time of a graph holding only this node and the memsets feeding it */
} gdn_bench_node;
/* The nodes of `graph` except empty ones, in topological order (ties in the order
 * cudaGraphGetNodes lists them), each instantiated alone (a clone with every other node
 * removed but the memset nodes that feed it: a kernel may need its workspace zeroed) and
 * timed over reps launches after warmup. They run on the graph's own buffers:
 * launch the whole graph once first so their inputs hold what the graph gives them.
 * Returns the number written to nodes (at most max). */
int gdn_bench_graph_nodes(cudaGraph_t graph, cudaStream_t stream, int warmup, int reps, gdn_bench_node *nodes, int max);
/* Median of v[0..n) (sorts v). */
double gdn_bench_median(double *v, int n);
/* Monotonic host clock, microseconds. */
double gdn_bench_now_us(void);
/* Gate parameters like Qwen3-Next's: A = exp(A_log) uniform in [1, 16], softplus(dt_bias)
 * log-uniform in [1e-3, 1e-1], for Hv value heads. */
void gdn_bench_gate_params(gdn_rng *r, int Hv, double *A_log, double *dt_bias);

#ifdef __cplusplus
}
#endif
#endif
