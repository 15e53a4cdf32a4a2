/* Tensor descriptors and the shape/stride/alignment checks every operator uses. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/check.h"

size_t gdn_dtype_size(gdn_dtype dtype) {
  switch (dtype) {
    case GDN_DTYPE_BF16: case GDN_DTYPE_F16: return 2;
    case GDN_DTYPE_F32: case GDN_DTYPE_I32: return 4;
    case GDN_DTYPE_I64: return 8;
    default: return 0;
  }
}

const char *gdn_dtype_name(gdn_dtype dtype) {
  switch (dtype) {
    case GDN_DTYPE_BF16: return "bf16";
    case GDN_DTYPE_F16: return "fp16";
    case GDN_DTYPE_F32: return "fp32";
    case GDN_DTYPE_I32: return "int32";
    case GDN_DTYPE_I64: return "int64";
    default: return "unknown";
  }
}

static gdn_tensor make_contiguous(void *data, gdn_dtype dtype, int rank, const int64_t *sizes) {
  gdn_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.rank = rank;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    t.sizes[d] = sizes[d];
    t.strides[d] = stride;
    stride *= sizes[d] > 0 ? sizes[d] : 1;
  }
  return t;
}

gdn_tensor gdn_tensor_1d(void *data, gdn_dtype dtype, int64_t s0) {
  int64_t s[1] = {s0};
  return make_contiguous(data, dtype, 1, s);
}
gdn_tensor gdn_tensor_2d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1) {
  int64_t s[2] = {s0, s1};
  return make_contiguous(data, dtype, 2, s);
}
gdn_tensor gdn_tensor_3d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1, int64_t s2) {
  int64_t s[3] = {s0, s1, s2};
  return make_contiguous(data, dtype, 3, s);
}
gdn_tensor gdn_tensor_4d(void *data, gdn_dtype dtype, int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
  int64_t s[4] = {s0, s1, s2, s3};
  return make_contiguous(data, dtype, 4, s);
}
gdn_tensor gdn_tensor_none(void) {
  gdn_tensor t;
  memset(&t, 0, sizeof t);
  return t;
}

int64_t gdn_tensor_numel(const gdn_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; ++d) n *= t->sizes[d];
  return n;
}

int gdn_tensor_is_contiguous(const gdn_tensor *t) {
  int64_t stride = 1;
  for (int d = t->rank - 1; d >= 0; --d) {
    if (t->sizes[d] != 1 && t->strides[d] != stride) return 0;
    stride *= t->sizes[d];
  }
  return 1;
}

int64_t gdn_tensor_span_bytes(const gdn_tensor *t) {
  if (gdn_tensor_numel(t) == 0) return 0;
  int64_t last = 0;
  for (int d = 0; d < t->rank; ++d) last += (t->sizes[d] - 1) * t->strides[d];
  return (last + 1) * (int64_t)gdn_dtype_size(t->dtype);
}

int gdn_tensor_present(const gdn_tensor *t) { return t != NULL && t->data != NULL; }

gdn_status gdn_tensor_check(const gdn_tensor *t, const char *name) {
  gdn_clear_last_error();
  if (t == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: descriptor is NULL", name);
  if (t->rank < 1 || t->rank > GDN_MAX_RANK)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: rank %d is outside 1..%d", name, t->rank, GDN_MAX_RANK);
  if (gdn_dtype_size(t->dtype) == 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: unknown dtype %d", name, (int)t->dtype);
  /* Keep every element offset (in bytes) inside int64 so kernels can index with 64-bit math. */
  int64_t span = 0;
  for (int d = 0; d < t->rank; ++d) {
    if (t->sizes[d] < 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[%d] = %lld is negative", name, d, (long long)t->sizes[d]);
    if (t->strides[d] < 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: stride[%d] = %lld is negative (unsupported)", name, d,
                      (long long)t->strides[d]);
    if (t->sizes[d] > 0 && t->strides[d] > (INT64_MAX / 8 - span) / t->sizes[d])
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: extent overflows 64-bit offsets", name);
    if (t->sizes[d] > 0) span += (t->sizes[d] - 1) * t->strides[d];
  }
  if (t->data == NULL && gdn_tensor_numel(t) > 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: data is NULL", name);
  if ((uintptr_t)t->data % gdn_dtype_size(t->dtype) != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: data pointer %p is not aligned to its %s element size (%zu bytes)",
                    name, t->data, gdn_dtype_name(t->dtype), gdn_dtype_size(t->dtype));
  return GDN_SUCCESS;
}

gdn_status gdn_check_tensor(const gdn_tensor *t, const char *name, int rank, const int64_t *sizes,
                            unsigned dtype_mask) {
  GDN_TRY(gdn_tensor_check(t, name));
  if (t->rank != rank)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: expected rank %d, got %d", name, rank, t->rank);
  for (int d = 0; sizes != NULL && d < rank; ++d) {
    if (sizes[d] >= 0 && t->sizes[d] != sizes[d])
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[%d] is %lld, expected %lld", name, d,
                      (long long)t->sizes[d], (long long)sizes[d]);
  }
  if (!(dtype_mask & GDN_DTYPE_MASK(t->dtype)))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: dtype %s is not accepted here", name, gdn_dtype_name(t->dtype));
  return GDN_SUCCESS;
}

gdn_status gdn_check_optional(const gdn_tensor *t, const char *name, int rank, const int64_t *sizes,
                              unsigned dtype_mask) {
  if (t == NULL || t->data == NULL) return GDN_SUCCESS;
  return gdn_check_tensor(t, name, rank, sizes, dtype_mask);
}

gdn_status gdn_check_inner_contiguous(const gdn_tensor *t, const char *name) {
  if (t->sizes[t->rank - 1] > 1 && t->strides[t->rank - 1] != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: last dimension must have stride 1, has %lld", name,
                    (long long)t->strides[t->rank - 1]);
  return GDN_SUCCESS;
}

gdn_status gdn_check_norm_eps(double eps, const char *name) {
  if (!(eps >= 0.0) || !isfinite(eps) || (eps > 0.0 && eps < FLT_MIN))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "%s = %g: expected 0 (the default 1e-6) or a finite value from FLT_MIN (1.2e-38) up", name, eps);
  return GDN_SUCCESS;
}

gdn_status gdn_check_aligned(const gdn_tensor *t, const char *name, int bytes) {
  size_t es = gdn_dtype_size(t->dtype);
  if ((uintptr_t)t->data % (uintptr_t)bytes != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: data pointer %p is not %d-byte aligned", name, t->data, bytes);
  for (int d = 0; d < t->rank - 1; ++d) {
    if (t->sizes[d] > 1 && (t->strides[d] * (int64_t)es) % bytes != 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: stride[%d] = %lld elements is not a multiple of %d bytes",
                      name, d, (long long)t->strides[d], bytes);
  }
  if (((int64_t)t->sizes[t->rank - 1] * (int64_t)es) % bytes != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: last dimension (%lld x %zu bytes) is not a multiple of %d bytes",
                    name, (long long)t->sizes[t->rank - 1], es, bytes);
  return GDN_SUCCESS;
}

gdn_status gdn_check_disjoint(const gdn_tensor *a, const char *aname, const gdn_tensor *b, const char *bname) {
  int64_t na = gdn_tensor_span_bytes(a), nb = gdn_tensor_span_bytes(b);
  if (na == 0 || nb == 0 || a->data == NULL || b->data == NULL) return GDN_SUCCESS;
  uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
  if (a0 < b0 + (uintptr_t)nb && b0 < a0 + (uintptr_t)na)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s overlaps %s in memory", aname, bname);
  return GDN_SUCCESS;
}

gdn_status gdn_check_no_self_overlap(const gdn_tensor *t, const char *name) {
  int dims[GDN_MAX_RANK], n = 0;
  for (int d = 0; d < t->rank; ++d)
    if (t->sizes[d] > 1) dims[n++] = d;
  /* insertion sort of the dimensions by stride (at most 4) */
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && t->strides[dims[j]] < t->strides[dims[j - 1]]; --j) {
      int x = dims[j];
      dims[j] = dims[j - 1];
      dims[j - 1] = x;
    }
  int64_t reach = 0; /* largest element offset the smaller-stride dimensions reach */
  for (int i = 0; i < n; ++i) {
    const int d = dims[i];
    if (t->strides[d] <= reach)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                      "%s: dimension %d (size %lld, stride %lld) overlaps the dimensions with smaller strides: an output "
                      "must not write one element twice",
                      name, d, (long long)t->sizes[d], (long long)t->strides[d]);
    reach += (t->sizes[d] - 1) * t->strides[d];
  }
  return GDN_SUCCESS;
}

gdn_status gdn_check_outputs(const gdn_tensor *const *outs, const char *const *out_names, int num_outs,
                             const gdn_tensor *const *ins, const char *const *in_names, int num_ins) {
  for (int i = 0; i < num_outs; ++i) {
    if (!gdn_tensor_present(outs[i])) continue;
    GDN_TRY(gdn_check_no_self_overlap(outs[i], out_names[i]));
    for (int j = 0; j < num_ins; ++j)
      if (gdn_tensor_present(ins[j])) GDN_TRY(gdn_check_disjoint(outs[i], out_names[i], ins[j], in_names[j]));
    for (int j = i + 1; j < num_outs; ++j)
      if (gdn_tensor_present(outs[j])) GDN_TRY(gdn_check_disjoint(outs[i], out_names[i], outs[j], out_names[j]));
  }
  return GDN_SUCCESS;
}

gdn_status gdn_check_same_dtype(const gdn_tensor *a, const char *aname, const gdn_tensor *b, const char *bname) {
  if (a->dtype != b->dtype)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s is %s but %s is %s; they must match", aname,
                    gdn_dtype_name(a->dtype), bname, gdn_dtype_name(b->dtype));
  return GDN_SUCCESS;
}

int gdn_env_int(const char *name, int *value) {
  const char *s = getenv(name);
  if (s == NULL || *s == '\0') return 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v < INT_MIN || v > INT_MAX) {
    gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "environment variable %s='%s' is not an integer", name, s);
    return -1;
  }
  *value = (int)v;
  return 1;
}
