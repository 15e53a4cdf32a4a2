/* allreduce: validation (pure host C). */
#include "core/check.h"
#include "gdn/allreduce.h"

gdn_status gdn_allreduce_validate(ncclComm_t comm, const void *buffer, size_t count, gdn_dtype dtype) {
  gdn_clear_last_error();
  if (comm == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "allreduce: comm is NULL");
  if (!(GDN_FLOAT_TYPES & GDN_DTYPE_MASK(dtype)) || gdn_dtype_size(dtype) == 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "allreduce: dtype %s is not accepted (bf16, fp16, fp32)", gdn_dtype_name(dtype));
  if (count > 0 && buffer == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "allreduce: buffer is NULL with count %zu", count);
  if (count > ((size_t)1 << 62) / gdn_dtype_size(dtype))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "allreduce: count %zu is too large", count);
  return GDN_SUCCESS;
}
