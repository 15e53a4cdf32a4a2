/* The prefill graph (gdn_prefill_run: descriptor upload + one graph launch) vs eager
 * launches of the same operators (gdn_prefill_run_eager) at the Qwen3-Next shapes of a
 * tensor-parallel rank: TP1 (Hk=16, Hv=32) and TP4 (Hk=4, Hv=8), K=V=128, bf16, scalar gate
 * + q/k l2norm, one plan per shape over a 64-slot state pool (sequence i -> slot i).
 *
 * GPU us: median over replays, each bracketed by its own CUDA events (includes the
 * descriptor copy; gdn_bench_median_us). Host us: median time spent inside the run call,
 * with at most 4 replays queued (gdn_bench_host_us).
 * ns/token = graph GPU us * 1000 / tokens. speedup = eager GPU us / graph GPU us.
 * floor: the larger of the bytes a fused forward must move (q, k, v, gates, o, and the
 * fp32 state read and written per (sequence, head)) at 4.1 TB/s and its arithmetic (2.77 x
 * 4 K V Hv per token: KK^T, WY, state update, output) at 790 TFLOP/s, the H200's measured
 * copy and bf16 matrix rates; % of floor = floor / GPU time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "gdn/prefill.h"
#include "gdn/reference.h"
#include "gpu_util.h"

enum { K = 128, V = 128, T_CAP = 65536, SLOTS = 64 };

typedef struct run_ctx {
  gdn_prefill_plan *plan;
  int32_t cu[SLOTS + 1], slots[SLOTS];
  int n;
} run_ctx;

static void run_graph(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_prefill_run(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) {
    fprintf(stderr, "gdn_prefill_run: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
    exit(1);
  }
}

static void run_eager(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_prefill_run_eager(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) {
    fprintf(stderr, "gdn_prefill_run_eager: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
    exit(1);
  }
}

/* Random 16-bit data: a random block uploaded once, then replicated on the device. */
static void fill_random(void *dev, size_t n, gdn_dtype dt, double stddev, gdn_rng *r) {
  const size_t block = (size_t)1 << 22;
  size_t m = n < block ? n : block;
  double *x = gdn_dalloc(m);
  gdn_fill_normal(r, x, m, stddev);
  void *h = gdn_xmalloc(m * gdn_dtype_size(dt));
  gdn_pack(dt, x, m, h);
  const size_t es = gdn_dtype_size(dt);
  CUDA_OK(cudaMemcpy(dev, h, m * es, cudaMemcpyHostToDevice));
  for (size_t off = m; off < n; off += m) {
    size_t c = n - off < m ? n - off : m;
    CUDA_OK(cudaMemcpy((char *)dev + off * es, dev, c * es, cudaMemcpyDeviceToDevice));
  }
  free(x);
  free(h);
}

static double floor_us(int Hk, int Hv, int T, int N) {
  const double bytes = (double)T * (2.0 * 2 * Hk * K + 2.0 * 2 * Hv * V + 8.0 * Hv) + (double)N * Hv * V * K * 8.0;
  const double flops = 2.77 * 4.0 * K * V * Hv * (double)T;
  const double b_us = bytes / 4.1e6, f_us = flops / 7.9e8;
  return b_us > f_us ? b_us : f_us;
}

typedef struct bcase {
  const char *name;
  int n, lens[3];
} bcase;

/* One shape: a plan over its buckets, every case timed; returns the 8x8192 ns/token. */
static double run_shape(int Hk, int Hv, const bcase *cases, int ncases, void *bufs[7], double *worst_host) {
  void *q = bufs[0], *k = bufs[1], *v = bufs[2], *o = bufs[3], *a = bufs[4], *b = bufs[5], *state = bufs[6];
  gdn_rng rng;
  gdn_rng_seed(&rng, 777);
  double A_log[32], dt_bias[32];
  gdn_bench_gate_params(&rng, Hv, A_log, dt_bias);
  void *A_log_d = gdn_upload(GDN_DTYPE_F32, A_log, Hv), *dt_bias_d = gdn_upload(GDN_DTYPE_F32, dt_bias, Hv);
  gdn_prefill_shape shape = {Hk, Hv, K, V, GDN_DTYPE_BF16, 1, 0, 1, 0.f, GDN_GATE_RAW};
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(q, GDN_DTYPE_BF16, T_CAP, Hk, K);
  io.k = gdn_tensor_3d(k, GDN_DTYPE_BF16, T_CAP, Hk, K);
  io.v = gdn_tensor_3d(v, GDN_DTYPE_BF16, T_CAP, Hv, V);
  io.a = gdn_tensor_2d(a, GDN_DTYPE_BF16, T_CAP, Hv);
  io.b = gdn_tensor_2d(b, GDN_DTYPE_BF16, T_CAP, Hv);
  io.A_log = gdn_tensor_1d(A_log_d, GDN_DTYPE_F32, Hv);
  io.dt_bias = gdn_tensor_1d(dt_bias_d, GDN_DTYPE_F32, Hv);
  io.state = gdn_tensor_4d(state, GDN_DTYPE_F32, SLOTS, Hv, V, K);
  io.o = gdn_tensor_3d(o, GDN_DTYPE_BF16, T_CAP, Hv, V);
  const gdn_prefill_bucket buckets[7] = {{512, 4}, {8192, 1}, {8192, 4}, {32768, 1}, {65536, 8}, {8192, 64}, {512, 1}};
  run_ctx c;
  memset(&c, 0, sizeof c);
  gdn_status st = gdn_prefill_plan_create(&c.plan, &shape, &io, buckets, 7, 0);
  if (st != GDN_SUCCESS) {
    fprintf(stderr, "gdn_prefill_plan_create: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
    exit(1);
  }
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int warmup = 3, reps = 20, host_reps = 100;
  double ns_8x8192 = 0;
  for (int i = 0; i < ncases; ++i) {
    c.n = cases[i].n;
    for (int s = 0; s < c.n; ++s) {
      c.cu[s + 1] = c.cu[s] + cases[i].lens[c.n <= 3 ? s : 0]; /* up to 3 lengths, else all the first */
      c.slots[s] = s;
    }
    const int T = c.cu[c.n];
    const double g_gpu = gdn_bench_median_us(run_graph, &c, stream, warmup, reps);
    const double e_gpu = gdn_bench_median_us(run_eager, &c, stream, warmup, reps);
    const double g_host = gdn_bench_host_us(run_graph, &c, stream, warmup, host_reps);
    st = gdn_prefill_check_error(c.plan);
    if (st != GDN_SUCCESS) {
      fprintf(stderr, "batch rejected on the device: %s\n", gdn_get_last_error());
      exit(1);
    }
    const double nspt = g_gpu * 1e3 / T, fl = floor_us(Hk, Hv, T, c.n);
    printf("%-5s %-10s %7d %6d %12.1f %12.1f %12.2f %10.2f %9.1f %7.1f%%\n", Hk == 16 ? "TP1" : "TP4", cases[i].name, T,
           gdn_prefill_pick_bucket(c.plan, T, c.n), g_gpu, e_gpu, g_host, nspt, fl, 100.0 * fl / g_gpu);
    fflush(stdout);
    if (c.n == 8 && T == 65536) ns_8x8192 = nspt;
    if (g_host > *worst_host) *worst_host = g_host;
  }
  gdn_prefill_plan_destroy(c.plan);
  CUDA_OK(cudaStreamDestroy(stream));
  CUDA_OK(cudaFree(A_log_d));
  CUDA_OK(cudaFree(dt_bias_d));
  return ns_8x8192;
}

int main(void) {
  gdn_gpu_test_init("bench_prefill", 1);
  gdn_rng rng;
  gdn_rng_seed(&rng, 12345);
  /* buffers for the larger shape (TP1); TP4 uses their first part */
  const size_t nqk = (size_t)T_CAP * 16 * K, nv = (size_t)T_CAP * 32 * V, nab = (size_t)T_CAP * 32;
  const size_t ns = (size_t)SLOTS * 32 * V * K;
  void *bufs[7] = {gdn_dmalloc(nqk * 2), gdn_dmalloc(nqk * 2), gdn_dmalloc(nv * 2), gdn_dmalloc(nv * 2),
                   gdn_dmalloc(nab * 2), gdn_dmalloc(nab * 2), gdn_dmalloc(ns * 4)};
  fill_random(bufs[0], nqk, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(bufs[1], nqk, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(bufs[2], nv, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(bufs[4], nab, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(bufs[5], nab, GDN_DTYPE_BF16, 1.0, &rng);
  {
    double *s = gdn_dalloc(ns);
    gdn_fill_normal(&rng, s, ns, 0.05);
    void *tmp = gdn_upload(GDN_DTYPE_F32, s, ns);
    CUDA_OK(cudaMemcpy(bufs[6], tmp, ns * 4, cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaFree(tmp));
    free(s);
  }
  static const bcase cases[] = {{"1x512", 1, {512}},     {"1x8192", 1, {8192}},  {"8x8192", 8, {8192}},
                                {"64x128", 64, {128}},   {"4x2048", 4, {2048}},  {"1x32768", 1, {32768}},
                                {"1+100+300", 3, {1, 100, 300}}};
  const int nc = (int)(sizeof cases / sizeof cases[0]);
  printf("prefill graph vs eager, K=%d V=%d bf16, use_g, l2norm; medians of 20 (GPU) / 100 (host) replays\n", K, V);
  printf("%-5s %-10s %7s %6s %12s %12s %12s %10s %9s %8s\n", "shape", "case", "tokens", "bucket", "graph GPU us",
         "eager GPU us", "graph host us", "ns/token", "floor us", "% floor");
  double worst_host = 0;
  const double ns_tp1 = run_shape(16, 32, cases, nc, bufs, &worst_host);
  run_shape(4, 8, cases, nc, bufs, &worst_host);
  printf("TP1 8x8192: %.2f ns/token; worst host time per replay %.2f us (<= 10: %s)\n", ns_tp1, worst_host,
         worst_host <= 10.0 ? "met" : "MISSED");
  for (int i = 0; i < 7; ++i) CUDA_OK(cudaFree(bufs[i]));
  return 0;
}
