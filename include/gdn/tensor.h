/* Strided tensor descriptors shared by every gdngraph operator. */
#ifndef GDN_TENSOR_H
#define GDN_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "gdn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gdn_dtype {
  GDN_DTYPE_BF16 = 0,
  GDN_DTYPE_F16 = 1,
  GDN_DTYPE_F32 = 2,
  GDN_DTYPE_I32 = 3,
  GDN_DTYPE_I64 = 4
} gdn_dtype;

#define GDN_MAX_RANK 4

/* A view of device (or host) memory. sizes and strides are in elements; strides
 * must be >= 0. An optional tensor is "absent" when data == NULL. */
typedef struct gdn_tensor {
  void *data;
  gdn_dtype dtype;
  int rank;
  int64_t sizes[GDN_MAX_RANK];
  int64_t strides[GDN_MAX_RANK];
} gdn_tensor;

size_t gdn_dtype_size(gdn_dtype dtype);   /* 0 for an unknown dtype */
const char *gdn_dtype_name(gdn_dtype dtype);

/* Row-major contiguous descriptors. */
gdn_tensor gdn_tensor_1d(void *data, gdn_dtype dtype, int64_t s0);
gdn_tensor gdn_tensor_2d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1);
gdn_tensor gdn_tensor_3d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1, int64_t s2);
gdn_tensor gdn_tensor_4d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1, int64_t s2, int64_t s3);
/* The absent optional tensor. */
gdn_tensor gdn_tensor_none(void);

int64_t gdn_tensor_numel(const gdn_tensor *t);
int gdn_tensor_is_contiguous(const gdn_tensor *t);
/* Bytes from data to one past the last addressable element (0 when empty). */
int64_t gdn_tensor_span_bytes(const gdn_tensor *t);

/* Structural check of a descriptor: rank 1..4, known dtype, sizes and strides
 * >= 0, data non-null when it has elements. `name` is used in the message. */
gdn_status gdn_tensor_check(const gdn_tensor *t, const char *name);

#ifdef __cplusplus
}
#endif
#endif
