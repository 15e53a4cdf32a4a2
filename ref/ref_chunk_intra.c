/* Within-chunk stages of the chunked form: cumsum of the log gates, (I + A)^-1,
 * the WY factors w and u, and the gated q / k. */
#include <math.h>
#include <stdlib.h>

#include "ref/ref_common.h"

void gdn_ref_chunk_cumsum(const gdn_ref_shape *s, int inner, const double *x, double *x_cum) {
  const int Hv = s->Hv;
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int c = 0; c < ch.count; ++c) {
    const ref_chunk *cc = &ch.list[c];
    for (int h = 0; h < Hv; ++h) {
      for (int d = 0; d < inner; ++d) {
        double acc = 0.0;
        for (int t = cc->t0; t < cc->t0 + cc->len; ++t) {
          acc += x[ref_at(t, h, Hv, inner) + d];
          x_cum[ref_at(t, h, Hv, inner) + d] = acc;
        }
      }
    }
  }
  ref_chunks_free(&ch);
}

/* Loads G_t (chunk-local cumulative log decay per key) of value head h for the chunk's tokens
 * into G [len, K]. */
static void load_chunk_G(const gdn_ref_shape *s, const ref_chunk *cc, int h, const double *g_cum,
                         const double *gk_cum, double *G) {
  for (int i = 0; i < cc->len; ++i) ref_log_decay(s, g_cum, gk_cum, cc->t0 + i, h, G + (size_t)i * s->K);
}

void ref_kkt_solve(const gdn_ref_shape *s, const double *k, const double *beta, const double *g_cum,
                   const double *gk_cum, double *A_inv, int flip_decay) {
  enum { BT = GDN_CHUNK };
  const int K = s->K, Hk = s->Hk, Hv = s->Hv;
  double *G = ref_dalloc((size_t)BT * K), *A = ref_dalloc(BT * BT), *Ti = ref_dalloc(BT * BT);
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int c = 0; c < ch.count; ++c) {
    const ref_chunk *cc = &ch.list[c];
    const int t0 = cc->t0, len = cc->len;
    for (int h = 0; h < Hv; ++h) {
      const int hk = ref_key_head(s, Hk, h);
      load_chunk_G(s, cc, h, g_cum, gk_cum, G);
      /* A: strictly lower triangular, A[i][j] = beta_i sum_k k_i k_j exp(G_i - G_j). */
      for (int i = 0; i < len; ++i) {
        const double *ki = k + ref_at(t0 + i, hk, Hk, K), *Gi = G + (size_t)i * K;
        for (int j = 0; j < i; ++j) {
          const double *kj = k + ref_at(t0 + j, hk, Hk, K), *Gj = G + (size_t)j * K;
          double dot = flip_decay ? ref_decayed_dot(ki, kj, Gj, Gi, K, gk_cum != NULL)
                                  : ref_decayed_dot(ki, kj, Gi, Gj, K, gk_cum != NULL);
          A[i * BT + j] = beta[(size_t)(t0 + i) * Hv + h] * dot;
        }
      }
      /* (I + A) Ti = I by forward substitution; Ti is unit lower triangular:
       * Ti[i][j] = [i == j] - sum_{m=j}^{i-1} A[i][m] Ti[m][j]. */
      for (int i = 0; i < len; ++i) {
        for (int j = 0; j <= i; ++j) {
          double acc = i == j ? 1.0 : 0.0;
          for (int m = j; m < i; ++m) acc -= A[i * BT + m] * Ti[m * BT + j];
          Ti[i * BT + j] = acc;
        }
      }
      for (int i = 0; i < len; ++i) {
        double *row = A_inv + ref_at(t0 + i, h, Hv, BT);
        for (int j = 0; j < BT; ++j) row[j] = j <= i ? Ti[i * BT + j] : 0.0;
      }
    }
  }
  ref_chunks_free(&ch);
  free(G);
  free(A);
  free(Ti);
}

void gdn_ref_kkt_solve(const gdn_ref_shape *s, const double *k, const double *beta, const double *g_cum,
                       const double *gk_cum, double *A_inv) {
  ref_kkt_solve(s, k, beta, g_cum, gk_cum, A_inv, 0);
}

void gdn_ref_wy(const gdn_ref_shape *s, const double *k, const double *v, const double *beta, const double *A_inv,
                const double *g_cum, const double *gk_cum, double *w, double *u) {
  enum { BT = GDN_CHUNK };
  const int K = s->K, V = s->V, Hk = s->Hk, Hv = s->Hv;
  /* kb_j = beta_j k_j exp(G_j), vb_j = beta_j v_j for the chunk's tokens. */
  double *G = ref_dalloc((size_t)BT * K), *kb = ref_dalloc((size_t)BT * K), *vb = ref_dalloc((size_t)BT * V);
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int c = 0; c < ch.count; ++c) {
    const ref_chunk *cc = &ch.list[c];
    const int t0 = cc->t0, len = cc->len;
    for (int h = 0; h < Hv; ++h) {
      const int hk = ref_key_head(s, Hk, h);
      load_chunk_G(s, cc, h, g_cum, gk_cum, G);
      for (int j = 0; j < len; ++j) {
        const double b = beta[(size_t)(t0 + j) * Hv + h];
        const double *kj = k + ref_at(t0 + j, hk, Hk, K), *vj = v + ref_at(t0 + j, h, Hv, V);
        for (int kk = 0; kk < K; ++kk) kb[(size_t)j * K + kk] = b * kj[kk] * exp(G[(size_t)j * K + kk]);
        for (int vv = 0; vv < V; ++vv) vb[(size_t)j * V + vv] = b * vj[vv];
      }
      for (int i = 0; i < len; ++i) {
        const double *Ai = A_inv + ref_at(t0 + i, h, Hv, BT);
        double *wi = w + ref_at(t0 + i, h, Hv, K), *ui = u + ref_at(t0 + i, h, Hv, V);
        for (int kk = 0; kk < K; ++kk) wi[kk] = 0.0;
        for (int vv = 0; vv < V; ++vv) ui[vv] = 0.0;
        for (int j = 0; j <= i; ++j) {
          for (int kk = 0; kk < K; ++kk) wi[kk] += Ai[j] * kb[(size_t)j * K + kk];
          for (int vv = 0; vv < V; ++vv) ui[vv] += Ai[j] * vb[(size_t)j * V + vv];
        }
      }
    }
  }
  ref_chunks_free(&ch);
  free(G);
  free(kb);
  free(vb);
}

/* qg or kg may be NULL to skip that output. */
void gdn_ref_gate_qk(const gdn_ref_shape *s, const double *q, const double *k, const double *g_cum,
                     const double *gk_cum, double *qg, double *kg) {
  const int K = s->K, Hk = s->Hk, Hv = s->Hv;
  double *G = ref_dalloc((size_t)GDN_CHUNK * K);
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int c = 0; c < ch.count; ++c) {
    const ref_chunk *cc = &ch.list[c];
    for (int h = 0; h < Hv; ++h) {
      const int hk = ref_key_head(s, Hk, h);
      load_chunk_G(s, cc, h, g_cum, gk_cum, G);
      const double *G_last = G + (size_t)(cc->len - 1) * K;
      for (int i = 0; i < cc->len; ++i) {
        const int t = cc->t0 + i;
        const double *Gi = G + (size_t)i * K, *qt = q + ref_at(t, hk, Hk, K), *kt = k + ref_at(t, hk, Hk, K);
        for (int kk = 0; kk < K; ++kk) {
          if (qg) qg[ref_at(t, h, Hv, K) + kk] = qt[kk] * exp(Gi[kk]);
          if (kg) kg[ref_at(t, h, Hv, K) + kk] = kt[kk] * exp(G_last[kk] - Gi[kk]);
        }
      }
    }
  }
  ref_chunks_free(&ch);
  free(G);
}
