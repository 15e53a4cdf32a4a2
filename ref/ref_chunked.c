/* The whole chunked forward composed from the stages (per-key gates included), and its
 * deliberately broken variants for proving that tests can fail. Never calls the recurrence. */
#include <stdlib.h>

#include "ref/ref_common.h"

void gdn_ref_chunked_perturbed(const gdn_ref_shape *s, const double *q, const double *k, const double *v,
                               const double *g, const double *gk, const double *beta, double scale, double *state,
                               const int32_t *slots, double *o, int perturbation) {
  const int T = gdn_ref_num_tokens(s), NT = gdn_ref_num_chunks(s);
  const int K = s->K, V = s->V, Hk = s->Hk, Hv = s->Hv;
  const size_t TH = (size_t)T * Hv;

  double *g_cum = NULL, *gk_cum = NULL, *kg = NULL;
  if (g) gdn_ref_chunk_cumsum(s, 1, g, g_cum = ref_dalloc(TH));
  if (gk) gdn_ref_chunk_cumsum(s, K, gk, gk_cum = ref_dalloc(TH * K));

  double *A_inv = ref_dalloc(TH * GDN_CHUNK), *w = ref_dalloc(TH * K), *u = ref_dalloc(TH * V);
  ref_kkt_solve(s, k, beta, g_cum, gk_cum, A_inv, perturbation == 1);
  gdn_ref_wy(s, k, v, beta, A_inv, g_cum, gk_cum, w, u);

  /* The scan applies the scalar gate itself (via g_cum); a per-key gate must already be in
   * the key it adds to the state: kg = k exp(gk_last - gk), one per value head. */
  if (gk) gdn_ref_gate_qk(s, q, k, NULL, gk_cum, NULL, kg = ref_dalloc(TH * K));

  double *h = ref_dalloc((size_t)NT * Hv * K * V), *v_new = ref_dalloc(TH * V);
  ref_chunk_delta_h(s, gk ? Hv : Hk, gk ? kg : k, w, u, g_cum, gk_cum, state, slots, h, v_new, perturbation == 2);
  ref_chunk_o(s, q, k, v_new, h, g_cum, gk_cum, scale, o);

  free(g_cum);
  free(gk_cum);
  free(kg);
  free(A_inv);
  free(w);
  free(u);
  free(h);
  free(v_new);
}

void gdn_ref_chunked(const gdn_ref_shape *s, const double *q, const double *k, const double *v, const double *g,
                     const double *gk, const double *beta, double scale, double *state, const int32_t *slots,
                     double *o) {
  gdn_ref_chunked_perturbed(s, q, k, v, g, gk, beta, scale, state, slots, o, 0);
}
