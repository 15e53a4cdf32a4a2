/* gdn-prefill: counter-based random inputs, generated on the host and uploaded in pieces. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include "bench_util.h"
#include "gdn/reference.h"
#include "tools/prefill_tool.h"

void tool_die(const char *what, const char *detail) {
  fprintf(stderr, "gdn-prefill: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

void *tool_alloc(size_t bytes) {
  void *p = calloc(1, bytes ? bytes : 1);
  if (p == NULL) tool_die("out of host memory", NULL);
  return p;
}

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Zero mean, unit variance (sum of two uniforms). */
static double gen(uint64_t seed, int id, uint64_t i) {
  const uint64_t r = mix64(mix64(seed + (uint64_t)id) ^ i);
  const double u1 = (double)(r >> 32) * (1.0 / 4294967296.0), u2 = (double)(r & 0xFFFFFFFFu) * (1.0 / 4294967296.0);
  return (u1 + u2 - 1.0) * 2.449489742783178;
}

static uint16_t to_16(gdn_dtype dt, double x) {
  return dt == GDN_DTYPE_BF16 ? gdn_f32_to_bf16((float)x) : gdn_f32_to_f16((float)x);
}
static double from_16(gdn_dtype dt, uint16_t x) { return dt == GDN_DTYPE_BF16 ? gdn_bf16_to_f32(x) : gdn_f16_to_f32(x); }

/* Before rounding: states N(0, 0.05^2); per-key log gates -0.05 |N(0, 1)| (<= 0). */
static double raw_input(const tool_opts *o, int id, uint64_t i) {
  const double x = gen(o->seed, id, i);
  return id == TOOL_ID_STATE ? 0.05 * x : id == TOOL_ID_GK ? -0.05 * fabs(x) : x;
}

double tool_input(const tool_opts *o, int id, uint64_t i) {
  const double x = raw_input(o, id, i);
  return id == TOOL_ID_STATE ? (double)(float)x : from_16(o->dtype, to_16(o->dtype, x));
}

void tool_gate_params(const tool_opts *o, double *A_log, double *dt_bias) {
  gdn_rng r;
  gdn_rng_seed(&r, o->seed ^ 0xA10C0DEull);
  gdn_bench_gate_params(&r, tool_rank_hv(o), A_log, dt_bias);
  for (int h = 0; h < tool_rank_hv(o); ++h) {
    A_log[h] = (float)A_log[h];
    dt_bias[h] = (float)dt_bias[h];
  }
}

/* Elements [0, n_fill) of input `id` into a 16-bit (or, for the state, fp32) device
 * buffer of n elements; the rest zero. */
static void upload(const tool_opts *o, void *dev, int id, size_t n, size_t n_fill, double *done, double total) {
  const size_t chunk = (size_t)1 << 22, es = id == TOOL_ID_STATE ? 4 : 2;
  char *h = (char *)tool_alloc(chunk * es);
  TOOL_CU(cudaMemset(dev, 0, n * es));
  for (size_t base = 0; base < n_fill; base += chunk) {
    const size_t m = n_fill - base < chunk ? n_fill - base : chunk;
    for (size_t i = 0; i < m; ++i) {
      const double x = raw_input(o, id, base + i);
      if (es == 4) ((float *)h)[i] = (float)x;
      else ((uint16_t *)h)[i] = to_16(o->dtype, x);
    }
    TOOL_CU(cudaMemcpy((char *)dev + base * es, h, m * es, cudaMemcpyHostToDevice));
    *done += (double)m;
    tool_progress("inputs", *done, total);
  }
  free(h);
}

void tool_upload_inputs(const tool_opts *o, const tool_gpu_bufs *d, int tokens, int slots) {
  const size_t Hk = (size_t)tool_rank_hk(o), Hv = (size_t)tool_rank_hv(o), K = (size_t)o->K, V = (size_t)o->V;
  const size_t cap = (size_t)d->T_cap, t = (size_t)tokens;
  double done = 0, total = (double)t * (2 * Hk * K + Hv * V + 2 * Hv + (o->use_gk ? Hv * K : 0)) +
                           (double)slots * Hv * V * K;
  upload(o, d->q, TOOL_ID_Q, cap * Hk * K, t * Hk * K, &done, total);
  upload(o, d->k, TOOL_ID_K, cap * Hk * K, t * Hk * K, &done, total);
  upload(o, d->v, TOOL_ID_V, cap * Hv * V, t * Hv * V, &done, total);
  upload(o, d->a, TOOL_ID_A, cap * Hv, t * Hv, &done, total);
  upload(o, d->b, TOOL_ID_B, cap * Hv, t * Hv, &done, total);
  if (o->use_gk) upload(o, d->gk, TOOL_ID_GK, cap * Hv * K, t * Hv * K, &done, total);
  upload(o, d->state, TOOL_ID_STATE, (size_t)slots * Hv * V * K, (size_t)slots * Hv * V * K, &done, total);
  double *A_log = (double *)tool_alloc(Hv * 8), *dt_bias = (double *)tool_alloc(Hv * 8);
  float *f = (float *)tool_alloc(2 * Hv * 4);
  tool_gate_params(o, A_log, dt_bias);
  for (size_t h = 0; h < Hv; ++h) f[h] = (float)A_log[h], f[Hv + h] = (float)dt_bias[h];
  TOOL_CU(cudaMemcpy(d->A_log, f, Hv * 4, cudaMemcpyHostToDevice));
  TOOL_CU(cudaMemcpy(d->dt_bias, f + Hv, Hv * 4, cudaMemcpyHostToDevice));
  free(A_log);
  free(dt_bias);
  free(f);
}

void tool_upload_state(const tool_opts *o, const tool_gpu_bufs *d, int slots) {
  const size_t n = (size_t)slots * tool_rank_hv(o) * o->V * o->K;
  double done = 0;
  upload(o, d->state, TOOL_ID_STATE, n, n, &done, (double)n);
}
