#include "bench_util.h"

#include <stdlib.h>
#include <time.h>
#include "gpu_util.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double gdn_bench_median_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaEvent_t *ev = (cudaEvent_t *)gdn_xmalloc(sizeof(cudaEvent_t) * 2 * (size_t)reps);
  for (int i = 0; i < 2 * reps; ++i) CUDA_OK(cudaEventCreate(&ev[i]));
  for (int i = 0; i < reps; ++i) {
    CUDA_OK(cudaEventRecord(ev[2 * i], stream));
    fn(ctx, stream);
    CUDA_OK(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)gdn_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    t[i] = ms * 1000.0;
  }
  for (int i = 0; i < 2 * reps; ++i) cudaEventDestroy(ev[i]);
  double m = median(t, reps);
  free(t);
  free(ev);
  return m;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

double gdn_bench_host_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)gdn_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    double t0 = now_us();
    fn(ctx, stream);
    t[i] = now_us() - t0;
    /* keep the queue short (4 calls, under the prefill plan's 16-slot descriptor ring)
     * so device back-pressure does not enter the host time */
    if (i % 4 == 3) CUDA_OK(cudaStreamSynchronize(stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double m = median(t, reps);
  free(t);
  return m;
}

typedef struct { void *dst; const void *src; size_t bytes; } copy_ctx;

static void run_copy(void *ctx, cudaStream_t s) {
  copy_ctx *c = (copy_ctx *)ctx;
  CUDA_OK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, s));
}

double gdn_bench_copy_gbps(size_t bytes, cudaStream_t stream) {
  copy_ctx c = {gdn_dmalloc(bytes), gdn_dmalloc(bytes), bytes};
  CUDA_OK(cudaMemset((void *)c.src, 1, bytes));
  double us = gdn_bench_median_us(run_copy, &c, stream, 5, 30);
  cudaFree(c.dst);
  cudaFree((void *)c.src);
  return 2.0 * (double)bytes / (us * 1e3);
}
