/* gdn-prefill's check: one replay from the initial pool, then sequence 0's first and last
 * value heads, each as a 1-key-head / 1-value-head problem for gdn_ref_prefill (float64)
 * on the inputs as stored. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include "bench_util.h"
#include "gdn/reference.h"
#include "tools/prefill_tool.h"

double tool_rel_l2(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) return NAN;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

/* Value head h of sequence n (slot n) as a problem of its own: inputs, reference o and state. */
typedef struct head_problem {
  double *q, *k, *v, *a, *b, *gk, *state, *o;
  double A_log, dt_bias;
} head_problem;

static void make_problem(const tool_opts *o, const tool_batch *bt, int n, int h, const double *A_log,
                         const double *dt_bias, head_problem *p) {
  const int Hk = tool_rank_hk(o), Hv = tool_rank_hv(o), K = o->K, V = o->V, hk = h / (Hv / Hk);
  const int t0 = bt->cu[n], L = bt->cu[n + 1] - t0;
  p->q = tool_alloc((size_t)L * K * 8), p->k = tool_alloc((size_t)L * K * 8), p->v = tool_alloc((size_t)L * V * 8);
  p->a = tool_alloc((size_t)L * 8), p->b = tool_alloc((size_t)L * 8), p->o = tool_alloc((size_t)L * V * 8);
  p->gk = o->use_gk ? tool_alloc((size_t)L * K * 8) : NULL;
  p->state = tool_alloc((size_t)V * K * 8);
  for (int t = 0; t < L; ++t) {
    const uint64_t tok = (uint64_t)(t0 + t);
    for (int i = 0; i < K; ++i) {
      p->q[(size_t)t * K + i] = tool_input(o, TOOL_ID_Q, (tok * Hk + hk) * K + i);
      p->k[(size_t)t * K + i] = tool_input(o, TOOL_ID_K, (tok * Hk + hk) * K + i);
      if (p->gk) p->gk[(size_t)t * K + i] = tool_input(o, TOOL_ID_GK, (tok * Hv + h) * K + i);
    }
    for (int i = 0; i < V; ++i) p->v[(size_t)t * V + i] = tool_input(o, TOOL_ID_V, (tok * Hv + h) * V + i);
    p->a[t] = tool_input(o, TOOL_ID_A, tok * Hv + h);
    p->b[t] = tool_input(o, TOOL_ID_B, tok * Hv + h);
  }
  const uint64_t s0 = ((uint64_t)bt->slots[n] * Hv + h) * V * K;
  for (size_t i = 0; i < (size_t)V * K; ++i) p->state[i] = tool_input(o, TOOL_ID_STATE, s0 + i);
  p->A_log = A_log[h], p->dt_bias = dt_bias[h];
}

static void free_problem(head_problem *p) {
  double *x[] = {p->q, p->k, p->v, p->a, p->b, p->gk, p->state, p->o};
  for (size_t i = 0; i < sizeof x / sizeof x[0]; ++i) free(x[i]);
}

/* Downloads o and the final state of (sequence n, head h) and compares them with p. */
static void compare(const tool_opts *o, const tool_batch *bt, const tool_gpu_bufs *d, int n, int h,
                    const head_problem *p, tool_check *c) {
  const int Hv = tool_rank_hv(o), V = o->V, K = o->K, t0 = bt->cu[n], L = bt->cu[n + 1] - t0;
  uint16_t *o_raw = tool_alloc((size_t)L * V * 2);
  float *s_raw = tool_alloc((size_t)V * K * 4);
  double *got_o = tool_alloc((size_t)L * V * 8), *got_s = tool_alloc((size_t)V * K * 8);
  TOOL_CU(cudaMemcpy2D(o_raw, (size_t)V * 2, (const uint16_t *)d->o + ((size_t)t0 * Hv + h) * V, (size_t)Hv * V * 2,
                       (size_t)V * 2, (size_t)L, cudaMemcpyDeviceToHost));
  TOOL_CU(cudaMemcpy(s_raw, d->state + ((size_t)bt->slots[n] * Hv + h) * V * K, (size_t)V * K * 4,
                     cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < (size_t)L * V; ++i)
    got_o[i] = o->dtype == GDN_DTYPE_BF16 ? gdn_bf16_to_f32(o_raw[i]) : gdn_f16_to_f32(o_raw[i]);
  for (size_t i = 0; i < (size_t)V * K; ++i) got_s[i] = s_raw[i];
  c->seq = n, c->head = h, c->bound = TOOL_GPU_BOUND;
  c->err_o = tool_rel_l2(got_o, p->o, (size_t)L * V);
  c->err_state = tool_rel_l2(got_s, p->state, (size_t)V * K);
  c->ok = c->err_o <= c->bound && c->err_state <= c->bound; /* NaN fails */
  free(o_raw), free(s_raw), free(got_o), free(got_s);
}

int tool_check_gpu(const tool_opts *o, const tool_batch *b, const tool_gpu_bufs *d, gdn_prefill_plan *plan,
                   cudaStream_t stream, tool_result *r) {
  const int Hv = tool_rank_hv(o), L = b->num_seqs > 0 ? b->cu[1] : 0;
  if (L == 0) {
    printf("check: sequence 0 is empty, nothing to compare\n");
    return 0;
  }
  tool_upload_state(o, d, b->num_seqs);
  TOOL_CU(cudaMemset(d->o, 0xFF, (size_t)d->T_cap * Hv * o->V * 2)); /* NaN: rows never written show */
  TOOL_GDN(gdn_prefill_run(plan, b->cu, b->slots, b->num_seqs, stream));
  TOOL_CU(cudaStreamSynchronize(stream));
  TOOL_GDN(gdn_prefill_check_error(plan));

  double *A_log = tool_alloc((size_t)Hv * 8), *dt_bias = tool_alloc((size_t)Hv * 8);
  tool_gate_params(o, A_log, dt_bias);
  const int heads[TOOL_MAX_CHECKS] = {0, Hv - 1};
  const int nh = Hv > 1 ? 2 : 1;
  int failed = 0;
  r->ref_s = 0;
  for (int i = 0; i < nh; ++i) {
    printf("check: sequence 0 (%d tokens), value head %d vs gdn_ref_prefill (float64)...\n", L, heads[i]);
    fflush(stdout);
    head_problem p;
    make_problem(o, b, 0, heads[i], A_log, dt_bias, &p);
    const int32_t cu[2] = {0, L}, slot[1] = {0};
    const gdn_ref_shape s = {1, cu, 1, 1, o->K, o->V};
    const gdn_ref_prefill_inputs in = {.q = p.q, .k = p.k, .v = p.v, .a = p.a, .b = p.b, .A_log = &p.A_log,
                                       .dt_bias = &p.dt_bias, .gk = p.gk, .use_g = o->use_g,
                                       .l2norm_qk = o->l2norm, .scale = 0};
    const double t0 = gdn_bench_now_us();
    gdn_ref_prefill(&s, &in, p.state, slot, p.o);
    r->ref_s += (gdn_bench_now_us() - t0) * 1e-6;
    tool_check *c = &r->checks[r->num_checks++];
    compare(o, b, d, 0, heads[i], &p, c);
    failed += !c->ok;
    free_problem(&p);
  }
  free(A_log);
  free(dt_bias);
  return failed;
}
