/* The elementwise prologue (gating, l2norm), the token-by-token recurrence (the oracle) and
 * the whole prefill from raw inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_common.h"

/* log(1 + e^x) without overflow for large x. */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* 1 / (1 + e^-x) without overflow for very negative x. */
static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* g or beta may be NULL to skip that output (a, A_log, dt_bias are only read for g). */
void gdn_ref_gating(int T, int Hv, const double *a, const double *b, const double *A_log, const double *dt_bias,
                    double *g, double *beta) {
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < Hv; ++h) {
      size_t i = (size_t)t * Hv + h;
      if (g) g[i] = -exp(A_log[h]) * softplus(a[i] + dt_bias[h]);
      if (beta) beta[i] = sigmoid(b[i]);
    }
  }
}

void gdn_ref_l2norm(int T, int H, int D, double *x) {
  for (size_t r = 0; r < (size_t)T * H; ++r) {
    double *row = x + r * D, ss = 0.0;
    for (int d = 0; d < D; ++d) ss += row[d] * row[d];
    double norm = sqrt(ss + GDN_L2NORM_EPS);
    for (int d = 0; d < D; ++d) row[d] /= norm;
  }
}

/* One token of one head: S <- diag(exp(gamma)) S; v' = beta (v - S^T k); S += k v'^T;
 * o = scale S^T q. S is [K, V]; tmp holds V values. */
static void recurrent_step(int K, int V, double *S, const double *gamma, const double *q, const double *k,
                           const double *v, double beta, double scale, double *tmp, double *o) {
  for (int kk = 0; kk < K; ++kk) {
    double decay = exp(gamma[kk]);
    for (int vv = 0; vv < V; ++vv) S[(size_t)kk * V + vv] *= decay;
  }
  for (int vv = 0; vv < V; ++vv) tmp[vv] = 0.0;
  for (int kk = 0; kk < K; ++kk)
    for (int vv = 0; vv < V; ++vv) tmp[vv] += S[(size_t)kk * V + vv] * k[kk]; /* S^T k */
  for (int vv = 0; vv < V; ++vv) tmp[vv] = beta * (v[vv] - tmp[vv]);    /* v' */
  for (int kk = 0; kk < K; ++kk)
    for (int vv = 0; vv < V; ++vv) S[(size_t)kk * V + vv] += k[kk] * tmp[vv];
  for (int vv = 0; vv < V; ++vv) o[vv] = 0.0;
  for (int kk = 0; kk < K; ++kk)
    for (int vv = 0; vv < V; ++vv) o[vv] += S[(size_t)kk * V + vv] * q[kk];
  for (int vv = 0; vv < V; ++vv) o[vv] *= scale;
}

void gdn_ref_recurrent_io(const gdn_ref_shape *s, const double *q, const double *k, const double *v, const double *g,
                          const double *gk, const double *beta, double scale, double *state, const gdn_ref_state_io *io,
                          double *o) {
  const int K = s->K, V = s->V, Hk = s->Hk, Hv = s->Hv;
  double *S = ref_dalloc((size_t)K * V), *gamma = ref_dalloc((size_t)K), *tmp = ref_dalloc((size_t)V);
  double *state_out = io->state_out ? io->state_out : state;
  const int32_t *slots_out = io->state_out || io->slots_out ? io->slots_out : io->slots_in;
  for (int n = 0; n < s->num_seqs; ++n) {
    const int slot_in = ref_slot(io->slots_in, n), slot_out = ref_slot(slots_out, n);
    const int ck0 = io->checkpoints && io->checkpoint_offsets ? io->checkpoint_offsets[n] : -1;
    for (int h = 0; h < Hv; ++h) {
      int hk = ref_key_head(s, Hk, h);
      ref_state_load(s, state, slot_in, h, S);
      for (int t = s->cu_seqlens[n]; t < s->cu_seqlens[n + 1]; ++t) {
        ref_log_decay(s, g, gk, t, h, gamma);
        recurrent_step(K, V, S, gamma, q + ref_at(t, hk, Hk, K), k + ref_at(t, hk, Hk, K), v + ref_at(t, h, Hv, V),
                       beta[(size_t)t * Hv + h], scale, tmp, o + ref_at(t, h, Hv, V));
        const int done = t + 1 - s->cu_seqlens[n];
        if (ck0 >= 0 && done % io->checkpoint_every == 0)
          ref_state_store(s, io->checkpoints, ck0 + done / io->checkpoint_every - 1, h, S);
      }
      ref_state_store(s, state_out, slot_out, h, S);
    }
  }
  free(S);
  free(gamma);
  free(tmp);
}

void gdn_ref_recurrent(const gdn_ref_shape *s, const double *q, const double *k, const double *v, const double *g,
                       const double *gk, const double *beta, double scale, double *state, const int32_t *slots,
                       double *o) {
  gdn_ref_state_io io;
  memset(&io, 0, sizeof io);
  io.slots_in = slots;
  gdn_ref_recurrent_io(s, q, k, v, g, gk, beta, scale, state, &io, o);
}

void gdn_ref_prefill(const gdn_ref_shape *s, const gdn_ref_prefill_inputs *in, double *state, const int32_t *slots,
                     double *o) {
  const int T = gdn_ref_num_tokens(s), Hk = s->Hk, Hv = s->Hv, K = s->K;
  size_t nqk = (size_t)T * Hk * K;
  double *q = ref_dalloc(nqk), *k = ref_dalloc(nqk);
  double *g = in->use_g ? ref_dalloc((size_t)T * Hv) : NULL, *beta = ref_dalloc((size_t)T * Hv);
  if (nqk) {
    memcpy(q, in->q, nqk * sizeof(double));
    memcpy(k, in->k, nqk * sizeof(double));
  }
  if (in->l2norm_qk) {
    gdn_ref_l2norm(T, Hk, K, q);
    gdn_ref_l2norm(T, Hk, K, k);
  }
  gdn_ref_gating(T, Hv, in->a, in->b, in->A_log, in->dt_bias, g, beta);
  double scale = in->scale > 0 ? in->scale : 1.0 / sqrt((double)K);
  gdn_ref_recurrent(s, q, k, in->v, g, in->gk, beta, scale, state, slots, o);
  free(q);
  free(k);
  free(g);
  free(beta);
}
