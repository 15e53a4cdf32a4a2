/* Validation, kernel choice and parameters of chunk_intra. */
#include <string.h>
#include "core/check.h"
#include "gdn/chunk_intra.h"
#include "ops/chunk_intra/intra_params.h"

static gdn_status check_tokens(const gdn_tensor *t, const char *name, int64_t T, int64_t heads, int64_t dim,
                               unsigned mask) {
  int64_t sz[3] = {-1, heads, dim};
  GDN_TRY(gdn_check_tensor(t, name, 3, sz, mask));
  GDN_TRY(gdn_check_rows(t, name, T, "token"));
  GDN_TRY(gdn_check_inner_contiguous(t, name));
  return gdn_check_aligned(t, name, 16);
}

static int needs_per_key(const gdn_chunk_intra_args *a) {
  return gdn_tensor_present(&a->gk) || gdn_tensor_present(&a->qg) || gdn_tensor_present(&a->kg);
}

static int gdn_intra_wants_wu(const gdn_chunk_intra_args *a) {
  if (a->mode == GDN_INTRA_KKT_SOLVE) return 0;
  return !(a->mode == GDN_INTRA_FUSED && gdn_tensor_present(&a->tu) && !gdn_tensor_present(&a->w) &&
           !gdn_tensor_present(&a->u));
}

gdn_status gdn_chunk_intra_validate(const gdn_chunk_intra_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "chunk_intra: args is NULL");
  if (a->mode != GDN_INTRA_FUSED && a->mode != GDN_INTRA_KKT_SOLVE && a->mode != GDN_INTRA_WY)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "mode = %d is not a gdn_intra_mode", (int)a->mode);
  GDN_TRY(gdn_check_batch(&a->batch));
  const int64_t T = a->batch.max_tokens;
  GDN_TRY(gdn_check_tensor(&a->beta, "beta", 2, NULL, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
  GDN_TRY(gdn_check_rows(&a->beta, "beta", T, "token"));
  const int64_t Hv = a->beta.sizes[1];
  GDN_TRY(gdn_check_tensor(&a->k, "k", 3, NULL, GDN_FLOAT16_TYPES));
  const int64_t Hk = a->k.sizes[1], K = a->k.sizes[2];
  const unsigned mask16 = GDN_DTYPE_MASK(a->k.dtype);
  if (K != 64 && K != 128 && K != 256)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "k: head dim K = %lld is not one of 64, 128, 256", (long long)K);
  if (Hk <= 0 || Hv % Hk != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "k: %lld heads do not divide Hv = %lld", (long long)Hk, (long long)Hv);
  GDN_TRY(check_tokens(&a->k, "k", T, Hk, K, mask16));
  int64_t s2[2] = {-1, Hv};
  if (gdn_tensor_present(&a->g)) {
    GDN_TRY(gdn_check_tensor(&a->g, "g", 2, s2, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->g, "g", T, "token"));
  }
  if (gdn_tensor_present(&a->gk)) {
    int64_t s3[3] = {-1, Hv, K};
    GDN_TRY(gdn_check_tensor(&a->gk, "gk", 3, s3, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->gk, "gk", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&a->gk, "gk"));
  }
  const int has_tu = gdn_tensor_present(&a->tu);
  if (has_tu && a->mode != GDN_INTRA_FUSED) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "tu is an output of the FUSED mode only");
  if (has_tu && needs_per_key(a))
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "tu (the folded WY form) belongs to the scalar-gate path; with gk emit w and u");
  if (has_tu) GDN_TRY(check_tokens(&a->tu, "tu", T, Hv, 64, mask16));
  /* FUSED emits w and u unless only tu is asked for (chunk_scan_o then applies the WY form) */
  const int wants_wu = gdn_intra_wants_wu(a);
  int64_t V = 0;
  if (wants_wu) {
    GDN_TRY(gdn_check_tensor(&a->v, "v", 3, NULL, mask16));
    V = a->v.sizes[2];
    if (V < 32 || V % 32 != 0)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "v: head dim V = %lld is not a positive multiple of 32", (long long)V);
    GDN_TRY(check_tokens(&a->v, "v", T, Hv, V, mask16));
    GDN_TRY(check_tokens(&a->w, "w", T, Hv, K, mask16));
    GDN_TRY(check_tokens(&a->u, "u", T, Hv, V, mask16));
  } else if (a->mode == GDN_INTRA_KKT_SOLVE && (gdn_tensor_present(&a->w) || gdn_tensor_present(&a->u))) {
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "w/u are outputs of the FUSED and WY modes, not KKT_SOLVE");
  }
  const unsigned amask = mask16 | GDN_DTYPE_MASK(GDN_DTYPE_F32);
  int64_t sa[3] = {-1, Hv, 64};
  if (a->mode != GDN_INTRA_FUSED || gdn_tensor_present(&a->A_inv)) {
    GDN_TRY(gdn_check_tensor(&a->A_inv, "A_inv", 3, sa, amask));
    GDN_TRY(gdn_check_rows(&a->A_inv, "A_inv", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&a->A_inv, "A_inv"));
  }
  const int any_scan_out = gdn_tensor_present(&a->qg) || gdn_tensor_present(&a->kg) || gdn_tensor_present(&a->aqk) ||
                           gdn_tensor_present(&a->qf) || gdn_tensor_present(&a->kf);
  if (a->mode != GDN_INTRA_FUSED && any_scan_out)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "qg/kg/aqk/qf/kf are outputs of the FUSED mode only");
  if ((gdn_tensor_present(&a->qf) || gdn_tensor_present(&a->kf)) && needs_per_key(a))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "qf/kf belong to the scalar-gate path; with gk the factors are folded into qg/kg");
  if ((gdn_tensor_present(&a->qf) || gdn_tensor_present(&a->kf)) && !gdn_tensor_present(&a->aqk))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "qf/kf are emitted together with aqk");
  if (gdn_tensor_present(&a->qg) || gdn_tensor_present(&a->aqk)) {
    GDN_TRY(gdn_check_tensor(&a->q, "q", 3, NULL, mask16));
    if (a->q.sizes[1] <= 0 || Hv % a->q.sizes[1] != 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "q: %lld heads do not divide Hv = %lld", (long long)a->q.sizes[1],
                      (long long)Hv);
    GDN_TRY(check_tokens(&a->q, "q", T, a->q.sizes[1], K, mask16));
  }
  if (gdn_tensor_present(&a->qg)) GDN_TRY(check_tokens(&a->qg, "qg", T, Hv, K, mask16));
  if (gdn_tensor_present(&a->kg)) GDN_TRY(check_tokens(&a->kg, "kg", T, Hv, K, mask16));
  if (gdn_tensor_present(&a->aqk)) {
    GDN_TRY(gdn_check_tensor(&a->aqk, "aqk", 3, sa, mask16));
    GDN_TRY(gdn_check_rows(&a->aqk, "aqk", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&a->aqk, "aqk"));
    GDN_TRY(gdn_check_aligned(&a->aqk, "aqk", 16));
  }
  if (gdn_tensor_present(&a->qf)) {
    GDN_TRY(gdn_check_tensor(&a->qf, "qf", 2, s2, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->qf, "qf", T, "token"));
  }
  if (gdn_tensor_present(&a->kf)) {
    GDN_TRY(gdn_check_tensor(&a->kf, "kf", 2, s2, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->kf, "kf", T, "token"));
  }
  /* outputs vs inputs and each other (A_inv is an input of the WY mode) */
  const int wy = a->mode == GDN_INTRA_WY;
  const gdn_tensor *ins[7] = {&a->k, &a->v, &a->q, &a->beta, &a->g, &a->gk, wy ? &a->A_inv : NULL};
  const char *in_n[7] = {"k", "v", "q", "beta", "g", "gk", "A_inv"};
  const gdn_tensor *outs[9] = {wy ? NULL : &a->A_inv, &a->w, &a->u, &a->qg, &a->kg, &a->aqk, &a->qf, &a->kf, &a->tu};
  const char *out_n[9] = {"A_inv", "w", "u", "qg", "kg", "aqk", "qf", "kf", "tu"};
  GDN_TRY(gdn_check_outputs(outs, out_n, 9, ins, in_n, 7));
  return GDN_SUCCESS;
}

/* The folded-form kernel (intra_group.cuh): FUSED with only aqk / tu (/ qf / kf) out. */
static int folded_form(const gdn_chunk_intra_args *a) {
  return a->mode == GDN_INTRA_FUSED && !needs_per_key(a) && !gdn_intra_wants_wu(a) && !gdn_tensor_present(&a->A_inv) &&
         gdn_tensor_present(&a->tu) && gdn_tensor_present(&a->aqk);
}

/* Value heads per CTA: in the folded form the group sharing q and k (one q head per k head). */
static int heads_per_cta(const gdn_chunk_intra_args *a) {
  if (!folded_form(a)) return 1;
  const int64_t Hv = a->beta.sizes[1], Hk = a->k.sizes[1], Hq = a->q.sizes[1];
  const int64_t G = Hv / Hk;
  return (Hq == Hk && G >= 2 && G <= 16) ? (int)G : 1;
}

gdn_status gdn_chunk_intra_plan(const gdn_chunk_intra_args *a, const gdn_device_info *dev, gdn_chunk_intra_config *cfg) {
  gdn_clear_last_error();
  GDN_TRY(gdn_chunk_intra_validate(a));
  if (dev == NULL || cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "chunk_intra plan: dev/cfg is NULL");
  const int K = (int)a->k.sizes[2];
  const int V = gdn_intra_wants_wu(a) ? (int)a->v.sizes[2] : 0;
  cfg->per_key = needs_per_key(a);
  cfg->folded = folded_form(a);
  cfg->heads_per_cta = heads_per_cta(a);
  cfg->threads = cfg->per_key ? 256 : 128;
  cfg->smem_bytes = cfg->per_key ? gdn_intra_gk_smem(K)
                    : cfg->folded ? gdn_intra_group_smem(K, cfg->heads_per_cta)
                                             : gdn_intra_fast_smem(K, V);
  if (cfg->smem_bytes > dev->smem_per_block_optin)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "chunk_intra K=%d V=%d needs %zu bytes of shared memory; the device allows %zu", K,
                    V, cfg->smem_bytes, dev->smem_per_block_optin);
  return GDN_SUCCESS;
}

/* Internal (used by the launch file): params from validated args. */
gdn_status gdn_chunk_intra_params(const gdn_chunk_intra_args *a, const gdn_chunk_intra_config *cfg,
                                  gdn_intra_params *p) {
  GDN_TRY(gdn_chunk_intra_validate(a));
  if (cfg == NULL || cfg->per_key != needs_per_key(a) || cfg->folded != folded_form(a) ||
      cfg->heads_per_cta != heads_per_cta(a))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "chunk_intra: cfg was not planned for these args");
  memset(p, 0, sizeof *p);
  p->cu_seqlens = a->batch.cu_seqlens;
  p->chunk_offsets = a->batch.chunk_offsets;
  p->chunk_seq = a->batch.chunk_seq;
  p->header = a->batch.header;
  p->Hv = (int)a->beta.sizes[1];
  p->K = (int)a->k.sizes[2];
  p->V = gdn_intra_wants_wu(a) ? (int)a->v.sizes[2] : 0;
  p->group_k = p->Hv / (int)a->k.sizes[1];
  p->k = a->k.data; p->k_st = a->k.strides[0]; p->k_sh = a->k.strides[1];
  if (p->V) { p->v = a->v.data; p->v_st = a->v.strides[0]; p->v_sh = a->v.strides[1]; }
  if (gdn_tensor_present(&a->q) && (gdn_tensor_present(&a->qg) || gdn_tensor_present(&a->aqk))) {
    p->q = a->q.data; p->q_st = a->q.strides[0]; p->q_sh = a->q.strides[1];
    p->group_q = p->Hv / (int)a->q.sizes[1];
  } else {
    p->group_q = 1;
  }
  p->beta = (const float *)a->beta.data; p->beta_st = a->beta.strides[0]; p->beta_sh = a->beta.strides[1];
  if (gdn_tensor_present(&a->g)) { p->g = (const float *)a->g.data; p->g_st = a->g.strides[0]; p->g_sh = a->g.strides[1]; }
  if (gdn_tensor_present(&a->gk)) { p->gk = (const float *)a->gk.data; p->gk_st = a->gk.strides[0]; p->gk_sh = a->gk.strides[1]; }
  if (gdn_tensor_present(&a->A_inv)) {
    p->a_inv = a->A_inv.data; p->a_f32 = a->A_inv.dtype == GDN_DTYPE_F32;
    p->a_st = a->A_inv.strides[0]; p->a_sh = a->A_inv.strides[1];
    p->load_a = a->mode == GDN_INTRA_WY;
    p->store_a = a->mode != GDN_INTRA_WY;
  }
  if (gdn_tensor_present(&a->tu)) { p->tu = a->tu.data; p->tu_st = a->tu.strides[0]; p->tu_sh = a->tu.strides[1]; }
  if (p->V) {
    p->w = a->w.data; p->w_st = a->w.strides[0]; p->w_sh = a->w.strides[1];
    p->u = a->u.data; p->u_st = a->u.strides[0]; p->u_sh = a->u.strides[1];
  }
  if (gdn_tensor_present(&a->qg)) { p->qg = a->qg.data; p->qg_st = a->qg.strides[0]; p->qg_sh = a->qg.strides[1]; }
  if (gdn_tensor_present(&a->kg)) { p->kg = a->kg.data; p->kg_st = a->kg.strides[0]; p->kg_sh = a->kg.strides[1]; }
  if (gdn_tensor_present(&a->aqk)) { p->aqk = a->aqk.data; p->aqk_st = a->aqk.strides[0]; p->aqk_sh = a->aqk.strides[1]; }
  if (gdn_tensor_present(&a->qf)) { p->qf = (float *)a->qf.data; p->qf_st = a->qf.strides[0]; p->qf_sh = a->qf.strides[1]; }
  if (gdn_tensor_present(&a->kf)) { p->kf = (float *)a->kf.data; p->kf_st = a->kf.strides[0]; p->kf_sh = a->kf.strides[1]; }
  p->scale = a->scale;
  p->l2norm = a->l2norm;
  p->heads_per_cta = cfg->heads_per_cta;
  return GDN_SUCCESS;
}
