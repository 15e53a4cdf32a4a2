/* Shared by the benches and the gdn-prefill tool: self-contained (no test helpers), a
 * CUDA error ends the program with the failing call named. */
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CUDA_OK(expr) bench_cuda_ok((expr), #expr)

static void bench_cuda_ok(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    fprintf(stderr, "FATAL: %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
  }
}

static void *bench_xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p == NULL) {
    fprintf(stderr, "FATAL: host allocation of %zu bytes failed\n", bytes);
    exit(1);
  }
  return p;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double gdn_bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double gdn_bench_median_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaEvent_t *ev = (cudaEvent_t *)bench_xmalloc(sizeof(cudaEvent_t) * 2 * (size_t)reps);
  for (int i = 0; i < 2 * reps; ++i) CUDA_OK(cudaEventCreate(&ev[i]));
  for (int i = 0; i < reps; ++i) {
    CUDA_OK(cudaEventRecord(ev[2 * i], stream));
    fn(ctx, stream);
    CUDA_OK(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)bench_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    t[i] = ms * 1000.0;
  }
  for (int i = 0; i < 2 * reps; ++i) cudaEventDestroy(ev[i]);
  double m = gdn_bench_median(t, reps);
  free(t);
  free(ev);
  return m;
}

double gdn_bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

double gdn_bench_host_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)bench_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    double t0 = gdn_bench_now_us();
    fn(ctx, stream);
    t[i] = gdn_bench_now_us() - t0;
    /* keep the queue short (4 calls, under the prefill plan's 16-slot descriptor ring)
     * so device back-pressure does not enter the host time */
    if (i % 4 == 3) CUDA_OK(cudaStreamSynchronize(stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double m = gdn_bench_median(t, reps);
  free(t);
  return m;
}

typedef struct { void *dst; const void *src; size_t bytes; } copy_ctx;

static void run_copy(void *ctx, cudaStream_t s) {
  copy_ctx *c = (copy_ctx *)ctx;
  CUDA_OK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, s));
}

double gdn_bench_copy_gbps(size_t bytes, cudaStream_t stream) {
  copy_ctx c = {NULL, NULL, bytes};
  CUDA_OK(cudaMalloc(&c.dst, bytes));
  CUDA_OK(cudaMalloc((void **)&c.src, bytes));
  CUDA_OK(cudaMemset((void *)c.src, 1, bytes));
  double us = gdn_bench_median_us(run_copy, &c, stream, 5, 30);
  cudaFree(c.dst);
  cudaFree((void *)c.src);
  return 2.0 * (double)bytes / (us * 1e3);
}

void gdn_bench_gate_params(gdn_rng *r, int Hv, double *A_log, double *dt_bias) {
  for (int h = 0; h < Hv; ++h) {
    A_log[h] = log(1.0 + 15.0 * gdn_rng_uniform(r));
    const double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * gdn_rng_uniform(r));
    dt_bias[h] = dt + log(-expm1(-dt)); /* softplus^-1(dt) */
  }
}
