/* Host checks of a forward's shape and of the caller's tensors against it, shared by the
 * prefill plan ("io.q: ...") and the per-call entry ("args.q: ..."): every message names
 * the caller's argument, never a workspace tensor the caller did not pass. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "core/check.h"
#include "graph/forward_check.h"

gdn_status gdn_fwd_check_shape(const gdn_prefill_shape *s) {
  if (s->Hk <= 0 || s->Hv <= 0 || s->Hv % s->Hk != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: Hk = %d must divide Hv = %d (both > 0)", s->Hk, s->Hv);
  if (s->K != 64 && s->K != 128 && s->K != 256)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "shape: K = %d is not one of 64, 128, 256", s->K);
  if (s->V < 32 || s->V % 32 != 0)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "shape: V = %d is not a positive multiple of 32", s->V);
  if (s->dtype != GDN_DTYPE_BF16 && s->dtype != GDN_DTYPE_F16)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: dtype %s is not bf16 or fp16", gdn_dtype_name(s->dtype));
  if (!isfinite(s->scale)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: scale is not finite");
  if (s->gate != GDN_GATE_RAW && s->gate != GDN_GATE_PRECOMPUTED)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: gate = %d is not a gdn_gate_mode", (int)s->gate);
  return GDN_SUCCESS;
}

/* A [T, heads, dim] token tensor of the shape's dtype: T >= rows, rows 16-byte aligned. */
static gdn_status check_tokens(const gdn_tensor *t, const char *name, int64_t rows, int64_t heads, const char *heads_of,
                               int64_t dim, const char *dim_of, gdn_dtype dtype) {
  if (!gdn_tensor_present(t)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required, data is NULL", name);
  GDN_TRY(gdn_tensor_check(t, name));
  if (t->rank != 3) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: expected rank 3 [T, heads, dim], got %d", name, t->rank);
  if (t->sizes[1] != heads)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[1] is %lld, expected %s = %lld", name, (long long)t->sizes[1],
                    heads_of, (long long)heads);
  if (t->sizes[2] != dim)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[2] is %lld, expected %s = %lld", name, (long long)t->sizes[2],
                    dim_of, (long long)dim);
  if (t->dtype != dtype)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: dtype %s differs from shape.dtype %s", name, gdn_dtype_name(t->dtype),
                    gdn_dtype_name(dtype));
  GDN_TRY(gdn_check_rows(t, name, rows, "token"));
  GDN_TRY(gdn_check_inner_contiguous(t, name));
  return gdn_check_aligned(t, name, 16);
}

/* A per-token, per-head float input [T, Hv] (any float dtype and strides). */
static gdn_status check_head_rows(const gdn_tensor *t, const char *name, int64_t rows, int64_t Hv, unsigned mask) {
  if (!gdn_tensor_present(t)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required by the shape's gating", name);
  int64_t sz[2] = {-1, Hv};
  GDN_TRY(gdn_check_tensor(t, name, 2, sz, mask));
  return gdn_check_rows(t, name, rows, "token");
}

static gdn_status check_state(const gdn_tensor *t, const char *name, const gdn_prefill_shape *s) {
  if (!gdn_tensor_present(t)) return GDN_SUCCESS;
  int64_t sz[4] = {-1, s->Hv, s->V, s->K};
  return gdn_check_tensor(t, name, 4, sz, GDN_FLOAT_TYPES);
}

/* The caller's fields, as messages name them ("<prefix>.<field>"). */
enum { F_Q, F_K, F_V, F_O, F_A, F_B, F_ALOG, F_DTB, F_G, F_BETA, F_GK, F_SI, F_SO, F_CK, F_NZ, F_NW, F_COUNT };
static const char *const kFields[F_COUNT] = {"q",    "k",    "v",        "o",         "a",           "b",
                                             "A_log", "dt_bias", "g", "beta", "gk", "state_in", "state_out",
                                             "checkpoints", "norm_z", "norm_weight"};

gdn_status gdn_fwd_check_tensors(const gdn_prefill_shape *s, const gdn_fwd_tensors *t, int64_t rows, const char *prefix) {
  char names[F_COUNT][64];
  const char *n[F_COUNT];
  for (int i = 0; i < F_COUNT; ++i) {
    snprintf(names[i], sizeof names[i], "%s.%s", prefix, kFields[i]);
    n[i] = names[i];
  }
  GDN_TRY(check_tokens(&t->q, n[F_Q], rows, s->Hk, "shape.Hk", s->K, "shape.K", s->dtype));
  GDN_TRY(check_tokens(&t->k, n[F_K], rows, s->Hk, "shape.Hk", s->K, "shape.K", s->dtype));
  GDN_TRY(check_tokens(&t->v, n[F_V], rows, s->Hv, "shape.Hv", s->V, "shape.V", s->dtype));
  GDN_TRY(check_tokens(&t->o, n[F_O], rows, s->Hv, "shape.Hv", s->V, "shape.V", s->dtype));
  if (s->gate == GDN_GATE_PRECOMPUTED) {
    if (s->use_g) GDN_TRY(check_head_rows(&t->g, n[F_G], rows, s->Hv, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(check_head_rows(&t->beta, n[F_BETA], rows, s->Hv, GDN_FLOAT_TYPES));
  } else {
    if (s->use_g) {
      GDN_TRY(check_head_rows(&t->a, n[F_A], rows, s->Hv, GDN_FLOAT_TYPES));
      int64_t s1[1] = {s->Hv};
      if (!gdn_tensor_present(&t->A_log))
        return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required by shape.use_g", n[F_ALOG]);
      if (!gdn_tensor_present(&t->dt_bias))
        return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required by shape.use_g", n[F_DTB]);
      GDN_TRY(gdn_check_tensor(&t->A_log, n[F_ALOG], 1, s1, GDN_FLOAT_TYPES));
      GDN_TRY(gdn_check_tensor(&t->dt_bias, n[F_DTB], 1, s1, GDN_FLOAT_TYPES));
    }
    GDN_TRY(check_head_rows(&t->b, n[F_B], rows, s->Hv, GDN_FLOAT_TYPES));
  }
  if (s->use_gk) {
    if (!gdn_tensor_present(&t->gk)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required by shape.use_gk", n[F_GK]);
    int64_t sz[3] = {-1, s->Hv, s->K};
    GDN_TRY(gdn_check_tensor(&t->gk, n[F_GK], 3, sz, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_rows(&t->gk, n[F_GK], rows, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&t->gk, n[F_GK]));
  }
  GDN_TRY(check_state(&t->state_in, n[F_SI], s));
  GDN_TRY(check_state(&t->state_out, n[F_SO], s));
  GDN_TRY(check_state(&t->checkpoints, n[F_CK], s));
  if (gdn_tensor_present(&t->checkpoints) && (t->checkpoint_every <= 0 || t->checkpoint_every % 64 != 0))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s.checkpoint_every = %d is not a positive multiple of 64", prefix,
                    t->checkpoint_every);

  if (gdn_tensor_present(&t->norm_z) || gdn_tensor_present(&t->norm_weight)) { /* the output norm */
    if (!gdn_tensor_present(&t->norm_weight))
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: required with %s", n[F_NW], n[F_NZ]);
    GDN_TRY(check_tokens(&t->norm_z, n[F_NZ], rows, s->Hv, "shape.Hv", s->V, "shape.V", s->dtype));
    int64_t sz[1] = {s->V};
    GDN_TRY(gdn_check_tensor(&t->norm_weight, n[F_NW], 1, sz, GDN_FLOAT_TYPES));
    char eps_name[64];
    snprintf(eps_name, sizeof eps_name, "%s.norm_eps", prefix);
    GDN_TRY(gdn_check_norm_eps(t->norm_eps, eps_name));
  }

  /* What the forward writes must be distinct and must not overlap anything it reads.
   * A pool updated in place is one output (state_in = state_out). */
  const int in_place = gdn_tensor_present(&t->state_in) && gdn_fwd_same_view(&t->state_in, &t->state_out);
  const gdn_tensor *outs[3] = {&t->o, gdn_tensor_present(&t->state_out) ? &t->state_out : NULL, &t->checkpoints};
  const char *out_names[3] = {n[F_O], in_place ? n[F_SI] : n[F_SO], n[F_CK]};
  const gdn_tensor *ins[13] = {&t->q, &t->k, &t->v, &t->a, &t->b, &t->A_log, &t->dt_bias, &t->g, &t->beta, &t->gk,
                               in_place ? NULL : &t->state_in, &t->norm_z, &t->norm_weight};
  const char *in_names[13] = {n[F_Q], n[F_K], n[F_V], n[F_A], n[F_B], n[F_ALOG], n[F_DTB], n[F_G], n[F_BETA],
                              n[F_GK], n[F_SI], n[F_NZ], n[F_NW]};
  return gdn_check_outputs(outs, out_names, 3, ins, in_names, 13);
}

int gdn_fwd_same_view(const gdn_tensor *a, const gdn_tensor *b) {
  if (a->data != b->data || a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int d = 0; d < a->rank; ++d)
    if (a->sizes[d] != b->sizes[d] || a->strides[d] != b->strides[d]) return 0;
  return 1;
}
