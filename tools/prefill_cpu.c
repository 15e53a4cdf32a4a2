/* gdn-prefill without a GPU: the float64 reference's two independent forms on the
 * options' batch and shape, inputs rounded as the GPU run stores them. The recurrence
 * (gdn_ref_prefill) and the chunked form (gdn_ref_chunked, after gating and l2norm here)
 * must agree to TOOL_CPU_BOUND. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "gdn/reference.h"
#include "tools/prefill_tool.h"

static double *inputs(const tool_opts *o, int id, size_t n) {
  double *x = (double *)tool_alloc(n * 8);
  for (size_t i = 0; i < n; ++i) x[i] = tool_input(o, id, i);
  return x;
}

int tool_run_cpu(const tool_opts *o, const tool_batch *bt, tool_result *r) {
  const int Hk = tool_rank_hk(o), Hv = tool_rank_hv(o), K = o->K, V = o->V, N = bt->num_seqs, T = bt->num_tokens;
  const size_t nqk = (size_t)T * Hk * K, nv = (size_t)T * Hv * V, nab = (size_t)T * Hv, ns = (size_t)N * Hv * V * K;
  double *q = inputs(o, TOOL_ID_Q, nqk), *k = inputs(o, TOOL_ID_K, nqk), *v = inputs(o, TOOL_ID_V, nv);
  double *a = inputs(o, TOOL_ID_A, nab), *b = inputs(o, TOOL_ID_B, nab);
  double *gk = o->use_gk ? inputs(o, TOOL_ID_GK, nab * K) : NULL;
  double *s_rec = inputs(o, TOOL_ID_STATE, ns), *s_chk = (double *)tool_alloc(ns * 8);
  double *o_rec = (double *)tool_alloc(nv * 8), *o_chk = (double *)tool_alloc(nv * 8);
  double *A_log = (double *)tool_alloc((size_t)Hv * 8), *dt_bias = (double *)tool_alloc((size_t)Hv * 8);
  tool_gate_params(o, A_log, dt_bias);
  memcpy(s_chk, s_rec, ns * 8);
  const gdn_ref_shape s = {N, bt->cu, Hk, Hv, K, V};

  printf("reference: recurrent form...\n");
  fflush(stdout);
  const gdn_ref_prefill_inputs in = {.q = q, .k = k, .v = v, .a = a, .b = b, .A_log = A_log, .dt_bias = dt_bias,
                                     .gk = gk, .use_g = o->use_g, .l2norm_qk = o->l2norm, .scale = 0};
  double t0 = gdn_bench_now_us();
  gdn_ref_prefill(&s, &in, s_rec, bt->slots, o_rec);

  printf("reference: chunked form...\n");
  fflush(stdout);
  double *g = (double *)tool_alloc(nab * 8), *beta = (double *)tool_alloc(nab * 8);
  if (o->l2norm) {
    gdn_ref_l2norm(T, Hk, K, q);
    gdn_ref_l2norm(T, Hk, K, k);
  }
  gdn_ref_gating(T, Hv, a, b, A_log, dt_bias, g, beta);
  gdn_ref_chunked(&s, q, k, v, o->use_g ? g : NULL, gk, beta, 1.0 / sqrt((double)K), s_chk, bt->slots, o_chk);
  r->ref_s = (gdn_bench_now_us() - t0) * 1e-6;

  tool_check *c = &r->checks[r->num_checks++];
  c->seq = -1, c->head = -1, c->bound = TOOL_CPU_BOUND; /* every sequence and head */
  c->err_o = tool_rel_l2(o_chk, o_rec, nv);
  c->err_state = tool_rel_l2(s_chk, s_rec, ns);
  c->ok = c->err_o <= c->bound && c->err_state <= c->bound;
  double *bufs[] = {q, k, v, a, b, gk, s_rec, s_chk, o_rec, o_chk, A_log, dt_bias, g, beta};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) free(bufs[i]);
  return !c->ok;
}
