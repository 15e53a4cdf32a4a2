/* gdn-prefill: runs the GDN prefill graph (gdn_prefill_plan) on random data at the
 * Qwen3-Next shape, times a replay, and checks a sample against the CPU reference.
 *
 *   gdn-prefill [--seqs S] [--len L | --tokens N] [--reps R] [--tp R] [--seed X]
 *
 * The batch is S sequences (default 8) of L tokens (default 8192) each: 65536 tokens.
 * --tokens N instead spreads N tokens over the S sequences (the first N % S get one more).
 * Shape per tensor-parallel rank: Hk = 16/tp key heads, Hv = 32/tp value heads, K = V = 128,
 * bf16, scalar gate (use_g) and q/k l2norm: Qwen3-Next's Gated DeltaNet layer.
 * Buckets {512,1} {2048,4} {8192,8} {65536,64} (+ one fitting the request if none does);
 * sequence i uses state-pool slot i.
 *
 * Timing: GPU time per replay (CUDA events around each gdn_prefill_run, median of R) and
 * host time per replay (time inside gdn_prefill_run, median). Check: one replay from the
 * initial pool, then for value heads 0 and Hv-1 of the first sequence the 1-key-head /
 * 1-value-head sub-problem is run by gdn_ref_prefill (float64) on the same bf16 inputs;
 * o and the final state must be within rel L2 2e-2 (exit 1 otherwise).
 *
 * Without a CUDA device it runs the CPU reference on a small batch and exits 0. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gdn/device.h"
#include "gdn/prefill.h"
#include "gdn/reference.h"

#define CHECK_BOUND 2e-2

static void die(const char *what, const char *detail) {
  fprintf(stderr, "gdn-prefill: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

#define CU(expr)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (expr);                                                          \
    if (e_ != cudaSuccess) die(#expr, cudaGetErrorString(e_));                        \
  } while (0)

#define GDN(expr)                                                                     \
  do {                                                                                \
    gdn_status s_ = (expr);                                                           \
    if (s_ != GDN_SUCCESS) die(#expr, gdn_get_last_error());                          \
  } while (0)

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- counter-based random inputs: element i of tensor `id` can be regenerated for the
 * reference check without keeping the (GB-sized) inputs on the host. */
enum { ID_Q = 1, ID_K, ID_V, ID_A, ID_B, ID_STATE };

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Zero mean, unit variance (sum of two uniforms), times `scale`, rounded as stored. */
static float gen(uint64_t seed, int id, uint64_t i, float scale) {
  uint64_t r = mix64(mix64(seed + (uint64_t)id) ^ i);
  double u1 = (double)(r >> 32) * (1.0 / 4294967296.0), u2 = (double)(r & 0xFFFFFFFFu) * (1.0 / 4294967296.0);
  return (float)((u1 + u2 - 1.0) * 2.449489742783178 * scale);
}
static float gen_bf16(uint64_t seed, int id, uint64_t i, float scale) {
  return gdn_bf16_to_f32(gdn_f32_to_bf16(gen(seed, id, i, scale)));
}

/* Fills elements [0, n_fill) of a bf16 device buffer with gen(), the rest up to n with 0. */
static void upload_bf16(void *dev, size_t n, size_t n_fill, uint64_t seed, int id, float scale) {
  const size_t chunk = (size_t)1 << 22;
  uint16_t *h = (uint16_t *)malloc(chunk * 2);
  if (!h) die("out of host memory", NULL);
  CU(cudaMemset(dev, 0, n * 2));
  for (size_t base = 0; base < n_fill; base += chunk) {
    size_t m = n_fill - base < chunk ? n_fill - base : chunk;
    for (size_t i = 0; i < m; ++i) h[i] = gdn_f32_to_bf16(gen(seed, id, base + i, scale));
    CU(cudaMemcpy((uint16_t *)dev + base, h, m * 2, cudaMemcpyHostToDevice));
  }
  free(h);
}

static void upload_state(float *dev, size_t n, uint64_t seed) {
  float *h = (float *)malloc(n * 4);
  if (!h) die("out of host memory", NULL);
  for (size_t i = 0; i < n; ++i) h[i] = gen(seed, ID_STATE, i, 0.05f);
  CU(cudaMemcpy(dev, h, n * 4, cudaMemcpyHostToDevice));
  free(h);
}

static double rel_l2(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) return NAN;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

/* Qwen3-Next-like gate parameters: A = exp(A_log) in [1, 16], softplus(dt_bias) log-uniform
 * in [1e-3, 1e-1]. fp32 values. */
static void gate_params(uint64_t seed, int Hv, float *A_log, float *dt_bias) {
  gdn_rng r;
  gdn_rng_seed(&r, seed ^ 0xA10C0DEull);
  for (int h = 0; h < Hv; ++h) {
    A_log[h] = (float)log(1.0 + 15.0 * gdn_rng_uniform(&r));
    double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * gdn_rng_uniform(&r));
    dt_bias[h] = (float)(dt + log(-expm1(-dt)));
  }
}

/* ---- no device: the reference on a small batch */
static int cpu_only(uint64_t seed) {
  printf("no CUDA device found: running the CPU reference on a small batch\n");
  const int N = 2, Hk = 2, Hv = 4, K = 64, V = 64, num_slots = 2;
  const int32_t cu[3] = {0, 100, 200}, slots[2] = {0, 1};
  const int T = cu[N];
  gdn_rng r;
  gdn_rng_seed(&r, seed);
  size_t nqk = (size_t)T * Hk * K, nv = (size_t)T * Hv * V, nab = (size_t)T * Hv, ns = (size_t)num_slots * Hv * V * K;
  double *q = calloc(nqk, 8), *k = calloc(nqk, 8), *v = calloc(nv, 8), *a = calloc(nab, 8), *b = calloc(nab, 8);
  double *s0 = calloc(ns, 8), *s1 = calloc(ns, 8), *s2 = calloc(ns, 8), *o1 = calloc(nv, 8), *o2 = calloc(nv, 8);
  double A_log[4], dt_bias[4];
  if (!q || !k || !v || !a || !b || !s0 || !s1 || !s2 || !o1 || !o2) die("out of host memory", NULL);
  for (size_t i = 0; i < nqk; ++i) q[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)gdn_rng_normal(&r)));
  for (size_t i = 0; i < nqk; ++i) k[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)gdn_rng_normal(&r)));
  for (size_t i = 0; i < nv; ++i) v[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)gdn_rng_normal(&r)));
  for (size_t i = 0; i < nab; ++i) a[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)gdn_rng_normal(&r)));
  for (size_t i = 0; i < nab; ++i) b[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)gdn_rng_normal(&r)));
  for (size_t i = 0; i < ns; ++i) s0[i] = 0.05 * gdn_rng_normal(&r);
  float Af[4], df[4];
  gate_params(seed, Hv, Af, df);
  for (int h = 0; h < Hv; ++h) {
    A_log[h] = Af[h];
    dt_bias[h] = df[h];
  }
  memcpy(s1, s0, ns * 8);
  memcpy(s2, s0, ns * 8);
  gdn_ref_shape s = {N, cu, Hk, Hv, K, V};
  gdn_ref_prefill_inputs in = {.q = q, .k = k, .v = v, .a = a, .b = b, .A_log = A_log, .dt_bias = dt_bias,
                               .gk = NULL, .use_g = 1, .l2norm_qk = 1, .scale = 0};
  double t0 = now_us();
  gdn_ref_prefill(&s, &in, s1, slots, o1);
  double t_rec = now_us() - t0;

  /* the chunked form on the same inputs (gating and l2norm done here), as a cross-check */
  double *qn = calloc(nqk, 8), *kn = calloc(nqk, 8), *g = calloc(nab, 8), *beta = calloc(nab, 8);
  if (!qn || !kn || !g || !beta) die("out of host memory", NULL);
  memcpy(qn, q, nqk * 8);
  memcpy(kn, k, nqk * 8);
  t0 = now_us();
  gdn_ref_l2norm(T, Hk, K, qn);
  gdn_ref_l2norm(T, Hk, K, kn);
  gdn_ref_gating(T, Hv, a, b, A_log, dt_bias, g, beta);
  gdn_ref_chunked(&s, qn, kn, v, g, NULL, beta, 1.0 / sqrt((double)K), s2, slots, o2);
  double t_chk = now_us() - t0;

  double sum = 0, asum = 0, ssum = 0;
  for (size_t i = 0; i < nv; ++i) {
    sum += o1[i];
    asum += fabs(o1[i]);
  }
  for (size_t i = 0; i < ns; ++i) ssum += s1[i];
  printf("reference: %d sequences x 100 tokens, Hk=%d Hv=%d K=%d V=%d, use_g, l2norm, seed %llu\n", N, Hk, Hv, K, V,
         (unsigned long long)seed);
  printf("  recurrent: %.1f ms (%.1f us/token)   chunked: %.1f ms\n", t_rec / 1e3, t_rec / T, t_chk / 1e3);
  printf("  checksum: sum(o) = %.9e  sum|o| = %.9e  sum(state) = %.9e\n", sum, asum, ssum);
  printf("  chunked vs recurrent: o rel L2 %.2e, state rel L2 %.2e\n", rel_l2(o2, o1, nv), rel_l2(s2, s1, ns));
  free(q); free(k); free(v); free(a); free(b); free(s0); free(s1); free(s2); free(o1); free(o2);
  free(qn); free(kn); free(g); free(beta);
  return 0;
}

static void usage(void) {
  printf("usage: gdn-prefill [--seqs S] [--len L | --tokens N] [--reps R] [--tp R] [--seed X]\n"
         "  --seqs S    sequences in the batch (default 8)\n"
         "  --len L     tokens per sequence (default 8192)\n"
         "  --tokens N  total tokens instead, spread over the S sequences\n"
         "  --reps R    timed replays (default 20)\n"
         "  --tp R      tensor-parallel ranks: Hk = 16/R, Hv = 32/R (default 1)\n"
         "  --seed X    input seed (default 1)\n");
}

static int parse_int(const char *opt, const char *s, long lo, long hi) {
  char *end = NULL;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || *end || v < lo || v > hi) {
    fprintf(stderr, "gdn-prefill: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s ? s : "");
    exit(2);
  }
  return (int)v;
}

int main(int argc, char **argv) {
  int S = 8, L = 8192, tokens = -1, reps = 20, tp = 1, len_given = 0;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage();
      return 0;
    } else if (!strcmp(a, "--seqs")) S = parse_int(a, v, 1, 4096), ++i;
    else if (!strcmp(a, "--len")) L = parse_int(a, v, 0, 1 << 24), ++i, len_given = 1;
    else if (!strcmp(a, "--tokens")) tokens = parse_int(a, v, 0, 1 << 26), ++i;
    else if (!strcmp(a, "--reps")) reps = parse_int(a, v, 1, 100000), ++i;
    else if (!strcmp(a, "--tp")) tp = parse_int(a, v, 1, 16), ++i;
    else if (!strcmp(a, "--seed")) seed = (uint64_t)parse_int(a, v, 0, 0x7fffffff), ++i;
    else {
      fprintf(stderr, "gdn-prefill: unknown option '%s'\n", a);
      usage();
      return 2;
    }
  }
  if (len_given && tokens >= 0) {
    fprintf(stderr, "gdn-prefill: give --len or --tokens, not both\n");
    return 2;
  }
  if (16 % tp != 0) {
    fprintf(stderr, "gdn-prefill: --tp %d does not divide the 16 key heads\n", tp);
    return 2;
  }
  if (!gdn_device_available()) return cpu_only(seed);

  const int Hk = 16 / tp, Hv = 32 / tp, K = 128, V = 128;
  int32_t *cu = (int32_t *)malloc(sizeof(int32_t) * (size_t)(S + 1)), *slots = (int32_t *)malloc(sizeof(int32_t) * (size_t)S);
  if (!cu || !slots) die("out of host memory", NULL);
  cu[0] = 0;
  for (int i = 0; i < S; ++i) {
    int len = tokens >= 0 ? tokens / S + (i < tokens % S) : L;
    if ((int64_t)cu[i] + len > (1 << 30)) die("too many tokens", NULL);
    cu[i + 1] = cu[i] + len;
    slots[i] = i;
  }
  const int T = cu[S];

  gdn_prefill_bucket buckets[5] = {{512, 1}, {2048, 4}, {8192, 8}, {65536, 64}, {0, 0}};
  int nb = 4;
  if (T > 65536 || S > 64) buckets[nb++] = (gdn_prefill_bucket){(T + 63) / 64 * 64 > 0 ? (T + 63) / 64 * 64 : 64, S};
  int T_cap = 0;
  for (int i = 0; i < nb; ++i)
    if (buckets[i].max_tokens > T_cap) T_cap = buckets[i].max_tokens;

  struct cudaDeviceProp prop;
  CU(cudaGetDeviceProperties(&prop, 0));
  printf("gdn-prefill: %d x %d tokens (%d), Hk=%d Hv=%d K=%d V=%d bf16, use_g, l2norm, TP %d, seed %llu\n", S,
         tokens >= 0 ? T / (S ? S : 1) : L, T, Hk, Hv, K, V, tp, (unsigned long long)seed);
  printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);

  /* caller buffers at the largest bucket's capacity */
  const size_t nqk = (size_t)T_cap * Hk * K, nv = (size_t)T_cap * Hv * V, nab = (size_t)T_cap * Hv;
  const size_t ns = (size_t)S * Hv * V * K;
  void *q, *k, *v, *a, *b, *o;
  float *A_log_d, *dt_bias_d, *state;
  CU(cudaMalloc(&q, nqk * 2));
  CU(cudaMalloc(&k, nqk * 2));
  CU(cudaMalloc(&v, nv * 2));
  CU(cudaMalloc(&o, nv * 2));
  CU(cudaMalloc(&a, nab * 2));
  CU(cudaMalloc(&b, nab * 2));
  CU(cudaMalloc((void **)&A_log_d, (size_t)Hv * 4));
  CU(cudaMalloc((void **)&dt_bias_d, (size_t)Hv * 4));
  CU(cudaMalloc((void **)&state, ns * 4));
  double t0 = now_us();
  upload_bf16(q, nqk, (size_t)T * Hk * K, seed, ID_Q, 1.f);
  upload_bf16(k, nqk, (size_t)T * Hk * K, seed, ID_K, 1.f);
  upload_bf16(v, nv, (size_t)T * Hv * V, seed, ID_V, 1.f);
  upload_bf16(a, nab, (size_t)T * Hv, seed, ID_A, 1.f);
  upload_bf16(b, nab, (size_t)T * Hv, seed, ID_B, 1.f);
  upload_state(state, ns, seed);
  float *A_log = (float *)malloc((size_t)Hv * 4), *dt_bias = (float *)malloc((size_t)Hv * 4);
  gate_params(seed, Hv, A_log, dt_bias);
  CU(cudaMemcpy(A_log_d, A_log, (size_t)Hv * 4, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(dt_bias_d, dt_bias, (size_t)Hv * 4, cudaMemcpyHostToDevice));
  printf("inputs: %.1f s to generate and upload\n", (now_us() - t0) * 1e-6);

  gdn_prefill_shape shape = {Hk, Hv, K, V, GDN_DTYPE_BF16, 1, 0, 1, 0.f};
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(q, GDN_DTYPE_BF16, T_cap, Hk, K);
  io.k = gdn_tensor_3d(k, GDN_DTYPE_BF16, T_cap, Hk, K);
  io.v = gdn_tensor_3d(v, GDN_DTYPE_BF16, T_cap, Hv, V);
  io.a = gdn_tensor_2d(a, GDN_DTYPE_BF16, T_cap, Hv);
  io.b = gdn_tensor_2d(b, GDN_DTYPE_BF16, T_cap, Hv);
  io.A_log = gdn_tensor_1d(A_log_d, GDN_DTYPE_F32, Hv);
  io.dt_bias = gdn_tensor_1d(dt_bias_d, GDN_DTYPE_F32, Hv);
  io.gk = gdn_tensor_none();
  io.state = gdn_tensor_4d(state, GDN_DTYPE_F32, S, Hv, V, K);
  io.o = gdn_tensor_3d(o, GDN_DTYPE_BF16, T_cap, Hv, V);
  gdn_prefill_plan *plan = NULL;
  t0 = now_us();
  GDN(gdn_prefill_plan_create(&plan, &shape, &io, buckets, nb, 0));
  const double t_plan = now_us() - t0;
  const int bucket = gdn_prefill_pick_bucket(plan, T, S);
  printf("plan: %.1f ms to build and instantiate; buckets", t_plan / 1e3);
  for (int i = 0; i < gdn_prefill_num_buckets(plan); ++i) {
    gdn_prefill_bucket bk = gdn_prefill_bucket_at(plan, i);
    printf(" {%d,%d}%s", bk.max_tokens, bk.max_seqs, i == bucket ? "*" : "");
  }
  printf("  (* = this batch)\n");

  cudaStream_t stream;
  CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  /* warm-up */
  for (int i = 0; i < 2; ++i) GDN(gdn_prefill_run(plan, cu, slots, S, stream));
  CU(cudaStreamSynchronize(stream));
  GDN(gdn_prefill_check_error(plan));

  /* GPU time per replay */
  cudaEvent_t *ev = (cudaEvent_t *)malloc(sizeof(cudaEvent_t) * 2 * (size_t)reps);
  double *t = (double *)malloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < 2 * reps; ++i) CU(cudaEventCreate(&ev[i]));
  for (int i = 0; i < reps; ++i) {
    CU(cudaEventRecord(ev[2 * i], stream));
    GDN(gdn_prefill_run(plan, cu, slots, S, stream));
    CU(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CU(cudaStreamSynchronize(stream));
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CU(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    t[i] = ms * 1e3;
  }
  const double gpu_us = median(t, reps);
  /* host time per replay (no synchronization inside; the queue is drained every 4, untimed:
   * the plan stages descriptors in a ring of 8 and a run further ahead waits for the device) */
  for (int i = 0; i < reps; ++i) {
    double h0 = now_us();
    GDN(gdn_prefill_run(plan, cu, slots, S, stream));
    t[i] = now_us() - h0;
    if (i % 4 == 3) CU(cudaStreamSynchronize(stream));
  }
  CU(cudaStreamSynchronize(stream));
  const double host_us = median(t, reps);
  GDN(gdn_prefill_check_error(plan));
  printf("replay: GPU %.1f us (median of %d), host %.2f us, %.2f ns/token, %.2f Mtokens/s\n", gpu_us, reps, host_us,
         T > 0 ? gpu_us * 1e3 / T : 0.0, T > 0 ? T / gpu_us : 0.0);

  /* check: one replay from the initial pool; sample = value heads 0 and Hv-1 of sequence 0 */
  int fail = 0;
  const int L0 = cu[1] - cu[0];
  if (L0 == 0) {
    printf("check: sequence 0 is empty, nothing to compare\n");
  } else {
    upload_state(state, ns, seed);
    CU(cudaMemset(o, 0xFF, nv * 2));
    GDN(gdn_prefill_run(plan, cu, slots, S, stream));
    CU(cudaStreamSynchronize(stream));
    GDN(gdn_prefill_check_error(plan));
    const int heads[2] = {0, Hv - 1};
    double *sq = calloc((size_t)L0 * K, 8), *sk = calloc((size_t)L0 * K, 8), *sv = calloc((size_t)L0 * V, 8);
    double *sa = calloc((size_t)L0, 8), *sb = calloc((size_t)L0, 8), *so = calloc((size_t)L0 * V, 8);
    double *got = calloc((size_t)L0 * V, 8), *st = calloc((size_t)V * K, 8), *st_got = calloc((size_t)V * K, 8);
    uint16_t *o_raw = (uint16_t *)malloc((size_t)L0 * V * 2);
    float *st_raw = (float *)malloc((size_t)V * K * 4);
    if (!sq || !sk || !sv || !sa || !sb || !so || !got || !st || !st_got || !o_raw || !st_raw)
      die("out of host memory", NULL);
    const int32_t sub_cu[2] = {0, L0}, sub_slot[1] = {0};
    printf("check: sequence 0 (%d tokens), value heads %d and %d vs gdn_ref_prefill (float64), bound %.0e\n", L0,
           heads[0], heads[1], CHECK_BOUND);
    for (int hi = 0; hi < 2; ++hi) {
      const int h = heads[hi], hk = h / (Hv / Hk);
      for (int tt = 0; tt < L0; ++tt) {
        const uint64_t tok = (uint64_t)(cu[0] + tt);
        for (int i = 0; i < K; ++i) {
          sq[(size_t)tt * K + i] = gen_bf16(seed, ID_Q, (tok * Hk + hk) * K + i, 1.f);
          sk[(size_t)tt * K + i] = gen_bf16(seed, ID_K, (tok * Hk + hk) * K + i, 1.f);
        }
        for (int i = 0; i < V; ++i) sv[(size_t)tt * V + i] = gen_bf16(seed, ID_V, (tok * Hv + h) * V + i, 1.f);
        sa[tt] = gen_bf16(seed, ID_A, tok * Hv + h, 1.f);
        sb[tt] = gen_bf16(seed, ID_B, tok * Hv + h, 1.f);
      }
      /* initial state of slot 0 (sequence 0), head h: [V, K] */
      for (size_t i = 0; i < (size_t)V * K; ++i) st[i] = gen(seed, ID_STATE, (size_t)h * V * K + i, 0.05f);
      double al = A_log[h], db = dt_bias[h];
      gdn_ref_shape s = {1, sub_cu, 1, 1, K, V};
      gdn_ref_prefill_inputs in = {.q = sq, .k = sk, .v = sv, .a = sa, .b = sb, .A_log = &al, .dt_bias = &db,
                                   .gk = NULL, .use_g = 1, .l2norm_qk = 1, .scale = 0};
      t0 = now_us();
      gdn_ref_prefill(&s, &in, st, sub_slot, so);
      const double t_ref = now_us() - t0;
      CU(cudaMemcpy2D(o_raw, (size_t)V * 2, (const uint16_t *)o + ((size_t)cu[0] * Hv + h) * V, (size_t)Hv * V * 2,
                      (size_t)V * 2, (size_t)L0, cudaMemcpyDeviceToHost));
      CU(cudaMemcpy(st_raw, state + (size_t)h * V * K, (size_t)V * K * 4, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < (size_t)L0 * V; ++i) got[i] = gdn_bf16_to_f32(o_raw[i]);
      for (size_t i = 0; i < (size_t)V * K; ++i) st_got[i] = st_raw[i];
      const double eo = rel_l2(got, so, (size_t)L0 * V), es = rel_l2(st_got, st, (size_t)V * K);
      const int ok = eo <= CHECK_BOUND && es <= CHECK_BOUND;
      fail |= !ok;
      printf("  head %2d (key head %2d): o rel L2 %.3e, final state rel L2 %.3e  %s  (reference %.1f s)\n", h, hk, eo, es,
             ok ? "PASS" : "FAIL", t_ref * 1e-6);
    }
    free(sq); free(sk); free(sv); free(sa); free(sb); free(so); free(got); free(st); free(st_got); free(o_raw);
    free(st_raw);
  }
  printf("%s\n", fail ? "FAIL" : "PASS");

  for (int i = 0; i < 2 * reps; ++i) cudaEventDestroy(ev[i]);
  free(ev);
  free(t);
  gdn_prefill_plan_destroy(plan);
  cudaStreamDestroy(stream);
  void *bufs[] = {q, k, v, o, a, b, A_log_d, dt_bias_d, state};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) cudaFree(bufs[i]);
  free(A_log);
  free(dt_bias);
  free(cu);
  free(slots);
  return fail ? 1 : 0;
}
