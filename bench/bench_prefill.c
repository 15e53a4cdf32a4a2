/* The prefill graph (gdn_prefill_run: descriptor upload + one graph launch) vs eager
 * launches of the same operators (gdn_prefill_run_eager), Qwen3-Next TP1 shape (Hk=16,
 * Hv=32, K=V=128, bf16, scalar gate + q/k l2norm), one plan with buckets {512,1},
 * {8192,1}, {65536,8}, {8192,64} over a 64-slot state pool (sequence i -> slot i).
 *
 * GPU us: median over replays, each bracketed by its own CUDA events (includes the
 * descriptor copy; gdn_bench_median_us). Host us: median time spent inside the run call,
 * with at most 4 replays queued (gdn_bench_host_us).
 * ns/token = graph GPU us * 1000 / tokens. speedup = eager GPU us / graph GPU us.
 * Targets: <= 36 ns/token at 8x8192; host time per replay <= 10 us. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "gdn/prefill.h"
#include "gdn/reference.h"
#include "gpu_util.h"

enum { HK = 16, HV = 32, K = 128, V = 128, T_CAP = 65536, SLOTS = 64 };

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

int main(void) {
  gdn_gpu_test_init("bench_prefill", 1);
  gdn_rng rng;
  gdn_rng_seed(&rng, 12345);
  const size_t nqk = (size_t)T_CAP * HK * K, nv = (size_t)T_CAP * HV * V, nab = (size_t)T_CAP * HV;
  const size_t ns = (size_t)SLOTS * HV * V * K;
  void *q = gdn_dmalloc(nqk * 2), *k = gdn_dmalloc(nqk * 2), *v = gdn_dmalloc(nv * 2), *o = gdn_dmalloc(nv * 2);
  void *a = gdn_dmalloc(nab * 2), *b = gdn_dmalloc(nab * 2), *state = gdn_dmalloc(ns * 4);
  fill_random(q, nqk, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(k, nqk, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(v, nv, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(a, nab, GDN_DTYPE_BF16, 1.0, &rng);
  fill_random(b, nab, GDN_DTYPE_BF16, 1.0, &rng);
  {
    double *s = gdn_dalloc(ns);
    gdn_fill_normal(&rng, s, ns, 0.05);
    void *tmp = gdn_upload(GDN_DTYPE_F32, s, ns);
    CUDA_OK(cudaMemcpy(state, tmp, ns * 4, cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaFree(tmp));
    free(s);
  }
  double A_log[HV], dt_bias[HV];
  gdn_bench_gate_params(&rng, HV, A_log, dt_bias);
  void *A_log_d = gdn_upload(GDN_DTYPE_F32, A_log, HV), *dt_bias_d = gdn_upload(GDN_DTYPE_F32, dt_bias, HV);

  const gdn_prefill_shape shape = {.Hk = HK, .Hv = HV, .K = K, .V = V, .dtype = GDN_DTYPE_BF16, .use_g = 1,
                                   .l2norm_qk = 1, .gate = GDN_GATE_RAW};
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(q, GDN_DTYPE_BF16, T_CAP, HK, K);
  io.k = gdn_tensor_3d(k, GDN_DTYPE_BF16, T_CAP, HK, K);
  io.v = gdn_tensor_3d(v, GDN_DTYPE_BF16, T_CAP, HV, V);
  io.a = gdn_tensor_2d(a, GDN_DTYPE_BF16, T_CAP, HV);
  io.b = gdn_tensor_2d(b, GDN_DTYPE_BF16, T_CAP, HV);
  io.A_log = gdn_tensor_1d(A_log_d, GDN_DTYPE_F32, HV);
  io.dt_bias = gdn_tensor_1d(dt_bias_d, GDN_DTYPE_F32, HV);
  io.gk = gdn_tensor_none();
  io.state = gdn_tensor_4d(state, GDN_DTYPE_F32, SLOTS, HV, V, K);
  io.o = gdn_tensor_3d(o, GDN_DTYPE_BF16, T_CAP, HV, V);
  const gdn_prefill_bucket buckets[4] = {{512, 1}, {8192, 1}, {65536, 8}, {8192, 64}};
  run_ctx c;
  memset(&c, 0, sizeof c);
  gdn_status st = gdn_prefill_plan_create(&c.plan, &shape, &io, buckets, 4, 0);
  if (st != GDN_SUCCESS) {
    fprintf(stderr, "gdn_prefill_plan_create: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
    return 1;
  }
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  const struct { int n, len; } cases[4] = {{1, 512}, {1, 8192}, {8, 8192}, {64, 128}};
  const int warmup = 3, reps = 20, host_reps = 200;
  printf("prefill graph vs eager, Qwen3-Next TP1 (Hk=%d Hv=%d K=%d V=%d bf16, use_g, l2norm); medians of %d (GPU) / %d "
         "(host) replays\n",
         HK, HV, K, V, reps, host_reps);
  printf("%-8s %7s %6s %13s %13s %14s %14s %13s %8s\n", "case", "tokens", "bucket", "graph GPU us", "eager GPU us",
         "graph host us", "eager host us", "ns/token", "speedup");
  double ns_8x8192 = 0, worst_host = 0;
  for (int i = 0; i < 4; ++i) {
    c.n = cases[i].n;
    for (int s = 0; s < c.n; ++s) {
      c.cu[s + 1] = c.cu[s] + cases[i].len;
      c.slots[s] = s;
    }
    const int T = c.cu[c.n];
    const double g_gpu = gdn_bench_median_us(run_graph, &c, stream, warmup, reps);
    const double e_gpu = gdn_bench_median_us(run_eager, &c, stream, warmup, reps);
    const double g_host = gdn_bench_host_us(run_graph, &c, stream, warmup, host_reps);
    const double e_host = gdn_bench_host_us(run_eager, &c, stream, warmup, host_reps);
    st = gdn_prefill_check_error(c.plan);
    if (st != GDN_SUCCESS) {
      fprintf(stderr, "batch rejected on the device: %s\n", gdn_get_last_error());
      return 1;
    }
    char name[32];
    snprintf(name, sizeof name, "%dx%d", c.n, cases[i].len);
    const double nspt = g_gpu * 1e3 / T;
    printf("%-8s %7d %6d %13.1f %13.1f %14.2f %14.2f %13.2f %7.2fx\n", name, T, gdn_prefill_pick_bucket(c.plan, T, c.n),
           g_gpu, e_gpu, g_host, e_host, nspt, e_gpu / g_gpu);
    fflush(stdout);
    if (c.n == 8 && cases[i].len == 8192) ns_8x8192 = nspt;
    if (g_host > worst_host) worst_host = g_host;
  }
  printf("target: <= 36 ns/token at 8x8192: %.2f ns/token  %s\n", ns_8x8192, ns_8x8192 <= 36.0 ? "met" : "MISSED");
  printf("target: host time per replay <= 10 us: worst %.2f us  %s\n", worst_host, worst_host <= 10.0 ? "met" : "MISSED");

  gdn_prefill_plan_destroy(c.plan);
  CUDA_OK(cudaStreamDestroy(stream));
  void *bufs[] = {q, k, v, o, a, b, state, A_log_d, dt_bias_d};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) CUDA_OK(cudaFree(bufs[i]));
  return 0;
}
