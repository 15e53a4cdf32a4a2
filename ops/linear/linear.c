/* linear: validation (pure host C). The plan itself needs cuBLASLt: see linear.cu. */
#include <stdint.h>
#include "core/check.h"
#include "gdn/linear.h"

gdn_status gdn_linear_validate(const gdn_linear_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: args is NULL");
  GDN_TRY(gdn_check_tensor(&a->x, "x", 2, NULL, GDN_FLOAT16_TYPES));
  int64_t T = a->x.sizes[0], Kin = a->x.sizes[1];
  unsigned act = GDN_DTYPE_MASK(a->x.dtype);
  int64_t wsz[2] = {-1, Kin};
  GDN_TRY(gdn_check_tensor(&a->w, "w", 2, wsz, act));
  int64_t N = a->w.sizes[0];
  int64_t ysz[2] = {T, N};
  GDN_TRY(gdn_check_tensor(&a->y, "y", 2, ysz, act));
  int64_t bsz[1] = {N};
  GDN_TRY(gdn_check_optional(&a->bias, "bias", 1, bsz, act | GDN_DTYPE_MASK(GDN_DTYPE_F32)));
  if (Kin < 1) return gdn_fail(GDN_ERROR_UNSUPPORTED, "x: size[1] (Kin) is 0; an empty reduction is not supported");
  if (T > INT32_MAX || N > INT32_MAX || Kin > INT32_MAX)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "linear: T %lld, N %lld, Kin %lld must each fit int32", (long long)T, (long long)N,
                    (long long)Kin);
  GDN_TRY(gdn_check_inner_contiguous(&a->x, "x"));
  GDN_TRY(gdn_check_inner_contiguous(&a->w, "w"));
  GDN_TRY(gdn_check_inner_contiguous(&a->y, "y"));
  if (gdn_tensor_present(&a->bias)) GDN_TRY(gdn_check_inner_contiguous(&a->bias, "bias"));
  /* Rows must not overlap (leading dimension >= row length). */
  if (T > 1 && a->x.strides[0] < Kin)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "x: row stride %lld is below Kin = %lld", (long long)a->x.strides[0], (long long)Kin);
  if (N > 1 && a->w.strides[0] < Kin)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "w: row stride %lld is below Kin = %lld", (long long)a->w.strides[0], (long long)Kin);
  if (T > 1 && a->y.strides[0] < N)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "y: row stride %lld is below N = %lld", (long long)a->y.strides[0], (long long)N);
  if (a->accumulate != 0 && a->accumulate != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "accumulate is %d, expected 0 or 1", a->accumulate);
  GDN_TRY(gdn_check_no_self_overlap(&a->y, "y"));
  GDN_TRY(gdn_check_disjoint(&a->y, "y", &a->x, "x"));
  GDN_TRY(gdn_check_disjoint(&a->y, "y", &a->w, "w"));
  GDN_TRY(gdn_check_disjoint(&a->y, "y", &a->bias, "bias"));
  return GDN_SUCCESS;
}
