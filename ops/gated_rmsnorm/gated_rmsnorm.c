/* gated_rmsnorm: validation and launch-config choice (pure host C). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "gdn/gated_rmsnorm.h"

static int same_view(const gdn_tensor *a, const gdn_tensor *b) {
  if (a->data != b->data || a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int d = 0; d < a->rank; ++d)
    if (a->sizes[d] > 1 && a->strides[d] != b->strides[d]) return 0;
  return 1;
}

/* out may be exactly `in` (each lane reads its elements before writing them), else disjoint. */
static gdn_status alias_ok(const gdn_tensor *out, const gdn_tensor *in, const char *name) {
  gdn_tensor head = *in; /* compare on out's rows only */
  head.sizes[0] = out->sizes[0];
  if (same_view(out, &head)) return GDN_SUCCESS;
  return gdn_check_disjoint(out, "out", in, name);
}

gdn_status gdn_gated_rmsnorm_validate(const gdn_gated_rmsnorm_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gated_rmsnorm: args is NULL");
  GDN_TRY(gdn_check_tensor(&a->out, "out", 3, NULL, GDN_FLOAT_TYPES));
  int64_t T = a->out.sizes[0], H = a->out.sizes[1], V = a->out.sizes[2];
  if (H < 1 || V < 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "out: heads %lld and head dim %lld must be >= 1", (long long)H, (long long)V);
  if (V > (1 << 20)) return gdn_fail(GDN_ERROR_UNSUPPORTED, "out: head dim %lld is above 2^20", (long long)V);
  int64_t sz[3] = {-1, H, V};
  GDN_TRY(gdn_check_tensor(&a->x, "x", 3, sz, GDN_FLOAT_TYPES));
  GDN_TRY(gdn_check_tensor(&a->z, "z", 3, sz, GDN_DTYPE_MASK(a->out.dtype)));
  if (a->x.sizes[0] < T)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "x: size[0] is %lld, expected >= out.size[0] = %lld", (long long)a->x.sizes[0], (long long)T);
  if (a->z.sizes[0] < T)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "z: size[0] is %lld, expected >= out.size[0] = %lld", (long long)a->z.sizes[0], (long long)T);
  if (T * H > INT32_MAX) return gdn_fail(GDN_ERROR_UNSUPPORTED, "out: %lld rows exceed int32", (long long)(T * H));
  int64_t wsz[1] = {V};
  GDN_TRY(gdn_check_tensor(&a->weight, "weight", 1, wsz, GDN_FLOAT_TYPES));
  GDN_TRY(gdn_check_inner_contiguous(&a->x, "x"));
  GDN_TRY(gdn_check_inner_contiguous(&a->z, "z"));
  GDN_TRY(gdn_check_inner_contiguous(&a->out, "out"));
  GDN_TRY(gdn_check_norm_eps(a->eps, "eps"));
  if (a->batch.header != NULL && (a->batch.max_tokens < 0 || a->batch.max_tokens > T))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch.max_tokens is %d, expected 0..out.size[0] = %lld", a->batch.max_tokens,
                    (long long)T);
  GDN_TRY(gdn_check_no_self_overlap(&a->out, "out"));
  GDN_TRY(alias_ok(&a->out, &a->x, "x"));
  GDN_TRY(alias_ok(&a->out, &a->z, "z"));
  GDN_TRY(gdn_check_disjoint(&a->out, "out", &a->weight, "weight"));
  return GDN_SUCCESS;
}

static int view_aligned(const gdn_tensor *t, int64_t elems) {
  int64_t bytes = elems * (int64_t)gdn_dtype_size(t->dtype);
  if ((uintptr_t)t->data % (uintptr_t)bytes != 0) return 0;
  for (int d = 0; d < t->rank - 1; ++d)
    if (t->sizes[d] > 1 && (t->strides[d] * (int64_t)gdn_dtype_size(t->dtype)) % bytes != 0) return 0;
  return 1;
}

static int vec_fits(const gdn_gated_rmsnorm_args *a, int vec) {
  const gdn_tensor *ts[3] = {&a->x, &a->z, &a->out};
  if (a->out.sizes[2] % vec != 0) return 0;
  for (int i = 0; i < 3; ++i) {
    if ((int64_t)vec * (int64_t)gdn_dtype_size(ts[i]->dtype) > 16) return 0;
    if (!view_aligned(ts[i], vec)) return 0;
  }
  return 1;
}

gdn_status gdn_gated_rmsnorm_check_config(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg) {
  gdn_clear_last_error();
  GDN_TRY(gdn_gated_rmsnorm_validate(args));
  if (cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gated_rmsnorm: config is NULL");
  if (cfg->vec != 1 && cfg->vec != 2 && cfg->vec != 4 && cfg->vec != 8)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gated_rmsnorm config: vec is %d, expected 1, 2, 4 or 8", cfg->vec);
  if (!vec_fits(args, cfg->vec))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "gated_rmsnorm config: vec %d does not fit V = %lld, 16-byte accesses or the alignment of x/z/out; re-plan",
                    cfg->vec, (long long)args->out.sizes[2]);
  if (cfg->warps_per_block < 1 || cfg->warps_per_block > 32)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gated_rmsnorm config: warps_per_block is %d, expected 1..32", cfg->warps_per_block);
  return GDN_SUCCESS;
}

gdn_status gdn_gated_rmsnorm_plan(const gdn_gated_rmsnorm_args *args, const gdn_device_info *dev,
                                  gdn_gated_rmsnorm_config *cfg) {
  gdn_clear_last_error();
  GDN_TRY(gdn_gated_rmsnorm_validate(args));
  if (dev == NULL || cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gated_rmsnorm_plan: dev and cfg must not be NULL");
  gdn_gated_rmsnorm_config c;
  c.vec = 1;
  for (int v = 8; v > 1; v /= 2)
    if (vec_fits(args, v)) {
      c.vec = v;
      break;
    }
  c.warps_per_block = 8; /* 8 warps: 16 rows of V = 128 (bf16) a block */
  GDN_TRY(gdn_gated_rmsnorm_check_config(args, &c));
  *cfg = c;
  return GDN_SUCCESS;
}
