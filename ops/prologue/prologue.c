/* Host side of the prologue: validation and the fixed launch configuration. */
#include "core/check.h"
#include "gdn/prologue.h"

gdn_status gdn_prologue_validate(const gdn_prologue_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: args is NULL");
  GDN_TRY(gdn_check_batch(&a->batch));
  const int64_t T = a->batch.max_tokens;
  const gdn_tensor *shape_src = gdn_tensor_present(&a->b) ? &a->b : &a->a;
  if (!gdn_tensor_present(shape_src))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: neither a nor b is given (need [T, Hv] inputs)");
  GDN_TRY(gdn_check_tensor(shape_src, shape_src == &a->b ? "b" : "a", 2, NULL, GDN_FLOAT_TYPES));
  const int64_t Hv = shape_src->sizes[1];
  int64_t s2[2] = {-1, Hv}, s1[1] = {Hv};
  if (a->use_g) {
    GDN_TRY(gdn_check_tensor(&a->a, "a", 2, s2, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_rows(&a->a, "a", T, "token"));
    if (!a->precomputed) {
      GDN_TRY(gdn_check_tensor(&a->A_log, "A_log", 1, s1, GDN_FLOAT_TYPES));
      GDN_TRY(gdn_check_tensor(&a->dt_bias, "dt_bias", 1, s1, GDN_FLOAT_TYPES));
    }
  }
  if (gdn_tensor_present(&a->beta)) {
    GDN_TRY(gdn_check_tensor(&a->b, "b", 2, s2, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_rows(&a->b, "b", T, "token"));
    GDN_TRY(gdn_check_tensor(&a->beta, "beta", 2, s2, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->beta, "beta", T, "token"));
  }
  GDN_TRY(gdn_check_optional(&a->g_cum, "g_cum", 2, s2, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
  if (gdn_tensor_present(&a->g_cum)) GDN_TRY(gdn_check_rows(&a->g_cum, "g_cum", T, "token"));
  if (gdn_tensor_present(&a->gk)) {
    GDN_TRY(gdn_check_tensor(&a->gk, "gk", 3, NULL, GDN_FLOAT_TYPES));
    int64_t s3[3] = {-1, Hv, a->gk.sizes[2]};
    GDN_TRY(gdn_check_tensor(&a->gk, "gk", 3, s3, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_rows(&a->gk, "gk", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&a->gk, "gk"));
    GDN_TRY(gdn_check_tensor(&a->gk_cum, "gk_cum", 3, s3, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(&a->gk_cum, "gk_cum", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(&a->gk_cum, "gk_cum"));
  } else if (gdn_tensor_present(&a->gk_cum)) {
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gk_cum is given but gk is not");
  }
  if (!gdn_tensor_present(&a->g_cum) && !gdn_tensor_present(&a->gk_cum) && !gdn_tensor_present(&a->beta))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: no output (g_cum, gk_cum, beta) is given");
  if (gdn_tensor_present(&a->g_cum) && !a->use_g)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "g_cum is requested but use_g is 0");
  const gdn_tensor *outs[3] = {&a->g_cum, &a->gk_cum, &a->beta};
  const char *on[3] = {"g_cum", "gk_cum", "beta"};
  const gdn_tensor *ins[5] = {&a->a, &a->b, &a->A_log, &a->dt_bias, &a->gk};
  const char *in[5] = {"a", "b", "A_log", "dt_bias", "gk"};
  GDN_TRY(gdn_check_outputs(outs, on, 3, ins, in, 5));
  return GDN_SUCCESS;
}

gdn_status gdn_prologue_plan(const gdn_prologue_args *a, const gdn_device_info *dev, gdn_prologue_config *cfg) {
  gdn_clear_last_error();
  GDN_TRY(gdn_prologue_validate(a));
  if (cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: cfg is NULL");
  (void)dev;
  /* 32 (head, key) columns per block, lane = column (coalesced); the chunk's 64 tokens
   * split over 8 warps that scan in registers and combine through shared memory. */
  cfg->threads = 256;
  return GDN_SUCCESS;
}
