/* CPU float64 reference of the whole GDN layer (in_proj -> conv1d -> GDN -> gated RMSNorm
 * -> out_proj) composed from the per-operator references, and its tensor-parallel sharding. */
#include <stdlib.h>
#include <string.h>
#include "gdn/batch.h"
#include "gdn/reference.h"
#include "ref/ref_common.h"

/* Offsets of the W_in row blocks (the layout of gdn/layer.h). */
typedef struct lay {
  int64_t q, k, v, D, z, b, a, Dtot;
} lay;

static lay layout(int Hk, int Hv, int K, int V) {
  lay l;
  l.q = 0;
  l.k = (int64_t)Hk * K;
  l.v = 2 * l.k;
  l.D = l.v + (int64_t)Hv * V;
  l.z = l.D;
  l.b = l.z + (int64_t)Hv * V;
  l.a = l.b + Hv;
  l.Dtot = l.a + Hv;
  return l;
}

/* dst[t, 0:n] = src[t, col:col+n] for a [T, ld] source. */
static void take_cols(int T, int64_t ld, const double *src, int64_t col, int64_t n, double *dst) {
  for (int t = 0; t < T; ++t) memcpy(dst + (size_t)t * n, src + (size_t)t * ld + col, (size_t)n * sizeof(double));
}

void gdn_ref_layer(const gdn_ref_layer_shape *s, const gdn_ref_layer_weights *w, int num_seqs,
                   const int32_t *cu_seqlens, const int32_t *slots, const double *x, double *state,
                   double *conv_state, double *y) {
  const int T = cu_seqlens[num_seqs];
  const lay l = layout(s->Hk, s->Hv, s->K, s->V);
  const int64_t HkK = (int64_t)s->Hk * s->K, HvV = (int64_t)s->Hv * s->V;

  /* in_proj */
  double *mixed = ref_dalloc((size_t)T * l.Dtot);
  gdn_ref_linear(T, (int)l.Dtot, s->hidden, x, w->w_in, NULL, 0, mixed);

  /* conv1d + SiLU over the q|k|v channels */
  double *conv_in = ref_dalloc((size_t)T * l.D), *conv_out = ref_dalloc((size_t)T * l.D);
  take_cols(T, l.Dtot, mixed, 0, l.D, conv_in);
  gdn_ref_conv1d(num_seqs, cu_seqlens, slots, (int)l.D, s->W, conv_in, w->conv_weight, w->conv_bias, conv_state,
                 conv_out);
  double *q = ref_dalloc((size_t)T * HkK), *k = ref_dalloc((size_t)T * HkK), *v = ref_dalloc((size_t)T * HvV);
  take_cols(T, l.D, conv_out, l.q, HkK, q);
  take_cols(T, l.D, conv_out, l.k, HkK, k);
  take_cols(T, l.D, conv_out, l.v, HvV, v);

  /* gating + l2norm + recurrence */
  double *z = ref_dalloc((size_t)T * HvV), *a = ref_dalloc((size_t)T * s->Hv), *b = ref_dalloc((size_t)T * s->Hv);
  take_cols(T, l.Dtot, mixed, l.z, HvV, z);
  take_cols(T, l.Dtot, mixed, l.b, s->Hv, b);
  take_cols(T, l.Dtot, mixed, l.a, s->Hv, a);
  gdn_ref_shape rs = {num_seqs, cu_seqlens, s->Hk, s->Hv, s->K, s->V};
  gdn_ref_prefill_inputs in;
  memset(&in, 0, sizeof in);
  in.q = q;
  in.k = k;
  in.v = v;
  in.a = a;
  in.b = b;
  in.A_log = w->A_log;
  in.dt_bias = w->dt_bias;
  in.gk = NULL;
  in.use_g = s->use_g;
  in.l2norm_qk = s->l2norm_qk;
  in.scale = s->scale;
  double *o = ref_dalloc((size_t)T * HvV);
  gdn_ref_prefill(&rs, &in, state, slots, o);

  /* gated RMSNorm, out_proj */
  double *normed = ref_dalloc((size_t)T * HvV);
  gdn_ref_gated_rmsnorm(T, s->Hv, s->V, o, z, w->norm_weight, s->rms_eps > 0 ? s->rms_eps : 1e-6, normed);
  gdn_ref_linear(T, s->hidden, (int)HvV, normed, w->w_out, NULL, 0, y);

  free(mixed);
  free(conv_in);
  free(conv_out);
  free(q);
  free(k);
  free(v);
  free(z);
  free(a);
  free(b);
  free(o);
  free(normed);
}

/* ---------------------------------------------------------------- sharding */

static int shard_ok(const gdn_ref_layer_shape *f, int rank, int nranks) {
  return nranks >= 1 && rank >= 0 && rank < nranks && f->Hk % nranks == 0 && f->Hv % nranks == 0;
}

int64_t gdn_ref_layer_shard_row(const gdn_ref_layer_shape *f, int rank, int nranks, int64_t row) {
  const int hk = f->Hk / nranks, hv = f->Hv / nranks;
  const lay L = layout(f->Hk, f->Hv, f->K, f->V), l = layout(hk, hv, f->K, f->V);
  /* Every block of the shard is one contiguous run of the full block, starting at the rank's first head. */
  const int64_t kq = (int64_t)rank * hk * f->K, vz = (int64_t)rank * hv * f->V, ba = (int64_t)rank * hv;
  if (row < l.k) return L.q + kq + row;
  if (row < l.v) return L.k + kq + (row - l.k);
  if (row < l.D) return L.v + vz + (row - l.v);
  if (row < l.b) return L.z + vz + (row - l.z);
  if (row < l.a) return L.b + ba + (row - l.b);
  return L.a + ba + (row - l.a);
}

static double *copy_of(const double *src, size_t n) {
  double *d = ref_dalloc(n);
  memcpy(d, src, n * sizeof(double));
  return d;
}

int gdn_ref_layer_shard_make(const gdn_ref_layer_shape *f, const gdn_ref_layer_weights *w, int rank, int nranks,
                             gdn_ref_layer_shard *out) {
  if (!shard_ok(f, rank, nranks)) return -1;
  memset(out, 0, sizeof *out);
  gdn_ref_layer_shape s = *f;
  s.Hk = f->Hk / nranks;
  s.Hv = f->Hv / nranks;
  out->shape = s;
  const lay l = layout(s.Hk, s.Hv, s.K, s.V);
  const int64_t HvV_full = (int64_t)f->Hv * f->V, HvV = (int64_t)s.Hv * s.V;

  out->w_in = ref_dalloc((size_t)l.Dtot * s.hidden);
  out->conv_weight = ref_dalloc((size_t)l.D * s.W);
  if (w->conv_bias != NULL) out->conv_bias = ref_dalloc((size_t)l.D);
  for (int64_t r = 0; r < l.Dtot; ++r) {
    const int64_t fr = gdn_ref_layer_shard_row(f, rank, nranks, r);
    memcpy(out->w_in + (size_t)r * s.hidden, w->w_in + (size_t)fr * s.hidden, (size_t)s.hidden * sizeof(double));
    if (r < l.D) {
      memcpy(out->conv_weight + (size_t)r * s.W, w->conv_weight + (size_t)fr * s.W, (size_t)s.W * sizeof(double));
      if (w->conv_bias != NULL) out->conv_bias[r] = w->conv_bias[fr];
    }
  }
  if (w->A_log != NULL) out->A_log = copy_of(w->A_log + (size_t)rank * s.Hv, (size_t)s.Hv);
  if (w->dt_bias != NULL) out->dt_bias = copy_of(w->dt_bias + (size_t)rank * s.Hv, (size_t)s.Hv);
  out->norm_weight = copy_of(w->norm_weight, (size_t)s.V);
  out->w_out = ref_dalloc((size_t)s.hidden * HvV);
  for (int n = 0; n < s.hidden; ++n)
    memcpy(out->w_out + (size_t)n * HvV, w->w_out + (size_t)n * HvV_full + (size_t)rank * HvV,
           (size_t)HvV * sizeof(double));

  out->weights.w_in = out->w_in;
  out->weights.conv_weight = out->conv_weight;
  out->weights.conv_bias = out->conv_bias;
  out->weights.A_log = out->A_log;
  out->weights.dt_bias = out->dt_bias;
  out->weights.norm_weight = out->norm_weight;
  out->weights.w_out = out->w_out;
  return 0;
}

void gdn_ref_layer_shard_free(gdn_ref_layer_shard *sh) {
  if (sh == NULL) return;
  free(sh->w_in);
  free(sh->conv_weight);
  free(sh->conv_bias);
  free(sh->A_log);
  free(sh->dt_bias);
  free(sh->norm_weight);
  free(sh->w_out);
  memset(sh, 0, sizeof *sh);
}

void gdn_ref_layer_shard_state(const gdn_ref_layer_shape *f, int rank, int nranks, int num_slots, const double *state,
                               double *shard_state) {
  const int hv = f->Hv / nranks;
  const size_t head = (size_t)f->V * f->K, part = (size_t)hv * head;
  for (int s = 0; s < num_slots; ++s)
    memcpy(shard_state + (size_t)s * part, state + ((size_t)s * f->Hv + (size_t)rank * hv) * head,
           part * sizeof(double));
}

void gdn_ref_layer_shard_conv_state(const gdn_ref_layer_shape *f, int rank, int nranks, int num_slots,
                                    const double *conv_state, double *shard_conv_state) {
  const lay L = layout(f->Hk, f->Hv, f->K, f->V), l = layout(f->Hk / nranks, f->Hv / nranks, f->K, f->V);
  const int S = f->W - 1;
  for (int s = 0; s < num_slots; ++s)
    for (int j = 0; j < S; ++j)
      for (int64_t c = 0; c < l.D; ++c)
        shard_conv_state[((size_t)s * S + j) * l.D + c] =
            conv_state[((size_t)s * S + j) * L.D + gdn_ref_layer_shard_row(f, rank, nranks, c)];
}
