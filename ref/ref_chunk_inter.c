/* Across-chunk stages of the chunked form: the chunk state scan (h, v_new, final state)
 * and the chunk output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_common.h"

void ref_chunk_delta_h(const gdn_ref_shape *s, int Hkk, const double *kk, const double *w, const double *u,
                       const double *g_cum, const double *gk_cum, double *state, const int32_t *slots,
                       double *h, double *v_new, int h_after_update) {
  const int K = s->K, V = s->V, Hv = s->Hv;
  const size_t KV = (size_t)K * V;
  double *S = ref_dalloc(KV), *vn = ref_dalloc((size_t)GDN_CHUNK * V);
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int n = 0; n < s->num_seqs; ++n) {
    const int slot = ref_slot(slots, n);
    for (int hv = 0; hv < Hv; ++hv) {
      const int hq = ref_key_head(s, Hkk, hv);
      ref_state_load(s, state, slot, hv, S);
      for (int c = ch.first[n]; c < ch.first[n + 1]; ++c) {
        const int t0 = ch.list[c].t0, len = ch.list[c].len, t_last = t0 + len - 1;
        double *hc = h ? h + ref_at(c, hv, Hv, (int)KV) : NULL;
        if (hc && !h_after_update) memcpy(hc, S, KV * sizeof(double));
        /* v_new = u - w S, every token against the state entering the chunk. */
        for (int i = 0; i < len; ++i) {
          const double *wi = w + ref_at(t0 + i, hv, Hv, K), *ui = u + ref_at(t0 + i, hv, Hv, V);
          double *vi = vn + (size_t)i * V;
          for (int vv = 0; vv < V; ++vv) vi[vv] = ui[vv];
          for (int k = 0; k < K; ++k)
            for (int vv = 0; vv < V; ++vv) vi[vv] -= wi[k] * S[(size_t)k * V + vv];
          if (v_new) memcpy(v_new + ref_at(t0 + i, hv, Hv, V), vi, (size_t)V * sizeof(double));
        }
        /* Decay S to the chunk end; token i's contribution decays from i to the end. */
        if (g_cum) {
          const double g_last = g_cum[(size_t)t_last * Hv + hv];
          for (int i = 0; i < len; ++i) {
            const double f = exp(g_last - g_cum[(size_t)(t0 + i) * Hv + hv]);
            for (int vv = 0; vv < V; ++vv) vn[(size_t)i * V + vv] *= f;
          }
          const double f = exp(g_last);
          for (size_t e = 0; e < KV; ++e) S[e] *= f;
        }
        if (gk_cum) {
          const double *gk_last = gk_cum + ref_at(t_last, hv, Hv, K);
          for (int k = 0; k < K; ++k) {
            const double f = exp(gk_last[k]);
            for (int vv = 0; vv < V; ++vv) S[(size_t)k * V + vv] *= f;
          }
        }
        /* S += kk^T v_new (per-key decay to the chunk end is already inside kk). */
        for (int i = 0; i < len; ++i) {
          const double *ki = kk + ref_at(t0 + i, hq, Hkk, K), *vi = vn + (size_t)i * V;
          for (int k = 0; k < K; ++k)
            for (int vv = 0; vv < V; ++vv) S[(size_t)k * V + vv] += ki[k] * vi[vv];
        }
        if (hc && h_after_update) memcpy(hc, S, KV * sizeof(double));
      }
      ref_state_store(s, state, slot, hv, S);
    }
  }
  ref_chunks_free(&ch);
  free(S);
  free(vn);
}

void gdn_ref_chunk_delta_h(const gdn_ref_shape *s, int Hkk, const double *kk, const double *w, const double *u,
                           const double *g_cum, const double *gk_cum, double *state, const int32_t *slots, double *h,
                           double *v_new) {
  ref_chunk_delta_h(s, Hkk, kk, w, u, g_cum, gk_cum, state, slots, h, v_new, 0);
}

void ref_chunk_o(const gdn_ref_shape *s, const double *q, const double *k, const double *v_new, const double *h,
                 const double *g_cum, const double *gk_cum, double scale, double *o) {
  const int K = s->K, V = s->V, Hk = s->Hk, Hv = s->Hv;
  const int per_key = gk_cum != NULL;
  double *G = ref_dalloc((size_t)GDN_CHUNK * K);
  ref_chunks ch;
  ref_chunks_init(s, &ch);
  for (int c = 0; c < ch.count; ++c) {
    const int t0 = ch.list[c].t0, len = ch.list[c].len;
    for (int hv = 0; hv < Hv; ++hv) {
      const int hk = ref_key_head(s, Hk, hv);
      const double *hc = h + ref_at(c, hv, Hv, K * V); /* [K, V] */
      for (int i = 0; i < len; ++i) ref_log_decay(s, g_cum, gk_cum, t0 + i, hv, G + (size_t)i * K);
      for (int i = 0; i < len; ++i) {
        const double *qi = q + ref_at(t0 + i, hk, Hk, K), *Gi = G + (size_t)i * K;
        double *oi = o + ref_at(t0 + i, hv, Hv, V);
        /* Inter-chunk: (q_i exp(G_i))^T h_c. */
        for (int vv = 0; vv < V; ++vv) oi[vv] = 0.0;
        for (int kk = 0; kk < K; ++kk) {
          const double qe = qi[kk] * exp(Gi[kk]);
          for (int vv = 0; vv < V; ++vv) oi[vv] += qe * hc[(size_t)kk * V + vv];
        }
        /* Intra-chunk: causal, decayed q_i . k_j over v_new_j. */
        for (int j = 0; j <= i; ++j) {
          const double a = ref_decayed_dot(qi, k + ref_at(t0 + j, hk, Hk, K), Gi, G + (size_t)j * K, K, per_key);
          const double *vj = v_new + ref_at(t0 + j, hv, Hv, V);
          for (int vv = 0; vv < V; ++vv) oi[vv] += a * vj[vv];
        }
        for (int vv = 0; vv < V; ++vv) oi[vv] *= scale;
      }
    }
  }
  ref_chunks_free(&ch);
  free(G);
}

void gdn_ref_chunk_o(const gdn_ref_shape *s, const double *q, const double *k, const double *v_new, const double *h,
                     const double *g_cum, double scale, double *o) {
  ref_chunk_o(s, q, k, v_new, h, g_cum, NULL, scale, o);
}
