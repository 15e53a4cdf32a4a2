/* Internal validation helpers shared by every operator (host code, no CUDA calls). */
#ifndef GDN_CORE_CHECK_H
#define GDN_CORE_CHECK_H

#include <stdarg.h>
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GDN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GDN_PRINTF(a, b)
#endif

/* Records the thread's last-error message and returns `status`. */
gdn_status gdn_fail(gdn_status status, const char *fmt, ...) GDN_PRINTF(2, 3);

/* Keeps the last-error message across cleanup code that may overwrite it:
 *   gdn_saved_error e; gdn_save_error(&e); destroy(...); return gdn_restore_error(&e, st, "plan: "); */
typedef struct gdn_saved_error { char msg[1024]; } gdn_saved_error;
void gdn_save_error(gdn_saved_error *e);
gdn_status gdn_restore_error(const gdn_saved_error *e, gdn_status status, const char *prefix);

/* Evaluates a gdn_status expression and returns it from the caller on failure. */
#define GDN_TRY(expr)                      \
  do {                                     \
    gdn_status gdn_try_s_ = (expr);        \
    if (gdn_try_s_ != GDN_SUCCESS) return gdn_try_s_; \
  } while (0)

#define GDN_DTYPE_MASK(d) (1u << (unsigned)(d))
#define GDN_FLOAT16_TYPES (GDN_DTYPE_MASK(GDN_DTYPE_BF16) | GDN_DTYPE_MASK(GDN_DTYPE_F16))
#define GDN_FLOAT_TYPES (GDN_FLOAT16_TYPES | GDN_DTYPE_MASK(GDN_DTYPE_F32))

/* gdn_tensor_check (core/tensor.c) also requires the data pointer to be aligned to the
 * element size: a misaligned pointer would fault inside a kernel (a sticky CUDA error). */

/* Structural check + rank + sizes (a size of -1 in `sizes` matches any) + dtype in mask. */
gdn_status gdn_check_tensor(const gdn_tensor *t, const char *name, int rank, const int64_t *sizes,
                            unsigned dtype_mask);
/* Same, for an optional tensor: an absent one (data == NULL) passes. */
gdn_status gdn_check_optional(const gdn_tensor *t, const char *name, int rank, const int64_t *sizes,
                              unsigned dtype_mask);
/* Last dimension has stride 1. */
gdn_status gdn_check_inner_contiguous(const gdn_tensor *t, const char *name);
/* data pointer and every stride except the last (in bytes) are multiples of `bytes`. */
gdn_status gdn_check_aligned(const gdn_tensor *t, const char *name, int bytes);
/* The byte extents of the two tensors do not intersect (conservative for interleaved views). */
gdn_status gdn_check_disjoint(const gdn_tensor *a, const char *aname, const gdn_tensor *b,
                              const char *bname);
/* An output's elements are distinct: sorted by stride, every dimension of size > 1 steps
 * past everything the smaller-stride dimensions reach (zero or colliding strides fail). */
gdn_status gdn_check_no_self_overlap(const gdn_tensor *t, const char *name);
/* The check every operator and plan runs on what it writes: each present output has
 * distinct elements and overlaps no present input and no other output (absent tensors,
 * NULL entries or data == NULL, are skipped). The message names both tensors. */
gdn_status gdn_check_outputs(const gdn_tensor *const *outs, const char *const *out_names, int num_outs,
                             const gdn_tensor *const *ins, const char *const *in_names, int num_ins);
/* Same dtype. */
gdn_status gdn_check_same_dtype(const gdn_tensor *a, const char *aname, const gdn_tensor *b,
                                const char *bname);
/* Largest element offset + 1 fits in int64 bytes and the tensor is addressable. */
int gdn_tensor_present(const gdn_tensor *t);

/* The gdn_batch view is usable: device pointers set, capacities consistent. */
struct gdn_batch;
gdn_status gdn_check_batch(const struct gdn_batch *b);
/* The tensor's first dimension covers `capacity` rows (name, what: for the message). */
gdn_status gdn_check_rows(const gdn_tensor *t, const char *name, int64_t capacity, const char *what);

/* An RMSNorm epsilon: 0 (the op's default) or finite and at least FLT_MIN (a positive
 * subnormal would reach the kernels' flushing rsqrt as 0). `name` as the message says it. */
gdn_status gdn_check_norm_eps(double eps, const char *name);

/* Reads an integer override from the environment. Returns 0 when unset, 1 when set
 * and parsed into *value, -1 when set but not an integer (a message is recorded). */
int gdn_env_int(const char *name, int *value);

#ifdef __cplusplus
}
#endif
#endif
