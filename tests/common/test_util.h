/* Minimal test harness: checks that count failures, random data, bf16/fp16 helpers,
 * relative-error norms. Every test draws fresh random inputs from a seed printed on
 * failure (GDN_TEST_SEED overrides it). */
#ifndef GDN_TEST_UTIL_H
#define GDN_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "gdn/reference.h"
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

extern int gdn_test_failures;
extern int gdn_test_checks;

#define CHECK(cond, ...)                                                          \
  do {                                                                            \
    ++gdn_test_checks;                                                            \
    if (!(cond)) {                                                                \
      ++gdn_test_failures;                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
      fprintf(stderr, __VA_ARGS__);                                               \
      fprintf(stderr, "\n");                                                      \
    }                                                                             \
  } while (0)

/* Expects `expr` to return `want`; prints the last-error message either way. */
#define CHECK_STATUS(expr, want)                                                  \
  do {                                                                            \
    gdn_status got_ = (expr);                                                     \
    CHECK(got_ == (want), "%s returned %s (%s), expected %s", #expr,              \
          gdn_status_string(got_), gdn_get_last_error(), gdn_status_string(want)); \
  } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, GDN_SUCCESS)

/* Expects `expr` to fail with `want` and a last-error message naming `name`. */
#define CHECK_FAIL_NAMES(expr, want, name)                                                            \
  do {                                                                                                \
    gdn_clear_last_error();                                                                           \
    CHECK_STATUS(expr, want);                                                                         \
    CHECK(strstr(gdn_get_last_error(), name) != NULL, "message '%s' does not name '%s'", gdn_get_last_error(), name); \
  } while (0)

/* Uniform in [0, n) (0 when n <= 1). */
int gdn_test_rand_int(gdn_rng *r, int n);
/* perm = a uniformly random permutation of 0 .. n-1. */
void gdn_test_shuffle(gdn_rng *r, int *perm, int n);

/* Scan launch-config overrides for the next plan call: GDN_CHUNK_H_BV, _NUM_WARPS,
 * _NUM_STAGES, and the kernel: column_split -1 planned, 0 row groups, 1 the column split
 * (mma.sync: GDN_CHUNK_H_WGMMA=0), 2 its warpgroup form (GDN_CHUNK_H_WGMMA=1), 3 the
 * key-row warpgroup scan (GDN_CHUNK_H_KEY_ROWS=1, chunk_delta_h); plans that cannot have the
 * asked kernel fail with GDN_ERROR_UNSUPPORTED. 0..2 also set GDN_CHUNK_H_KEY_ROWS=0. bv == 0
 * clears them all. */
void gdn_test_scan_env(int bv, int warps, int stages, int column_split);

/* 1 when GDN_TEST_SMALL is set: small shapes only (compute-sanitizer runs, ci/gpu sanitize). */
int gdn_test_small(void);

/* Prints the "N passed, N failed" closing line and returns the exit code. */
int gdn_test_finish(const char *name);

/* Seed: GDN_TEST_SEED or a time-based one; printed so a failure can be replayed. */
uint64_t gdn_test_seed(const char *name);

void gdn_fill_normal(gdn_rng *r, double *x, size_t n, double stddev);
void gdn_fill_uniform(gdn_rng *r, double *x, size_t n, double lo, double hi);
/* Rounds every value to the precision of dtype (bf16/fp16/fp32) in place. */
void gdn_round_to(gdn_dtype dtype, double *x, size_t n);
/* Packs doubles into a host buffer of `dtype` (bf16/fp16/fp32/int32). */
void gdn_pack(gdn_dtype dtype, const double *x, size_t n, void *out);
void gdn_unpack(gdn_dtype dtype, const void *in, size_t n, double *x);

/* ||a - b|| / max(||b||, tiny); NaN if any element of a is NaN or Inf. */
double gdn_rel_l2(const double *a, const double *b, size_t n);
/* max |a - b| / (atol + rtol |b|) over elements. */
double gdn_max_scaled_err(const double *a, const double *b, size_t n, double atol, double rtol);
/* Count of NaN/Inf elements. */
size_t gdn_count_nonfinite(const double *a, size_t n);

void *gdn_xmalloc(size_t bytes);
double *gdn_dalloc(size_t n);

#ifdef __cplusplus
}
#endif
#endif
