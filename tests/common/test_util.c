#include "test_util.h"

#include <math.h>
#include <string.h>
#include <time.h>

int gdn_test_failures = 0;
int gdn_test_checks = 0;

int gdn_test_rand_int(gdn_rng *r, int n) { return n <= 1 ? 0 : (int)(gdn_rng_next(r) % (uint64_t)n); }

void gdn_test_shuffle(gdn_rng *r, int *perm, int n) {
  for (int i = 0; i < n; ++i) perm[i] = i;
  for (int i = n - 1; i > 0; --i) {
    const int j = gdn_test_rand_int(r, i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static void set_int_env(const char *name, int value) {
  char buf[16];
  snprintf(buf, sizeof buf, "%d", value);
  setenv(name, buf, 1);
}

void gdn_test_scan_env(int bv, int warps, int stages, int column_split) {
  unsetenv("GDN_CHUNK_H_BV");
  unsetenv("GDN_CHUNK_H_NUM_WARPS");
  unsetenv("GDN_CHUNK_H_NUM_STAGES");
  unsetenv("GDN_CHUNK_H_COLUMN_SPLIT");
  unsetenv("GDN_CHUNK_H_WGMMA");
  unsetenv("GDN_CHUNK_H_KEY_ROWS");
  if (bv == 0) return;
  set_int_env("GDN_CHUNK_H_BV", bv);
  set_int_env("GDN_CHUNK_H_NUM_WARPS", warps);
  set_int_env("GDN_CHUNK_H_NUM_STAGES", stages);
  if (column_split >= 0) set_int_env("GDN_CHUNK_H_KEY_ROWS", column_split == 3);
  if (column_split >= 0 && column_split <= 2) set_int_env("GDN_CHUNK_H_COLUMN_SPLIT", column_split >= 1);
  if (column_split == 1 || column_split == 2) set_int_env("GDN_CHUNK_H_WGMMA", column_split == 2);
}

int gdn_test_finish(const char *name) {
  int passed = gdn_test_checks - gdn_test_failures;
  printf("%s: %d passed, %d failed\n", name, passed, gdn_test_failures);
  return gdn_test_failures == 0 ? 0 : 1;
}

uint64_t gdn_test_seed(const char *name) {
  const char *s = getenv("GDN_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
  printf("%s: seed %llu (set GDN_TEST_SEED to replay)\n", name, (unsigned long long)seed);
  return seed;
}

void gdn_fill_normal(gdn_rng *r, double *x, size_t n, double stddev) {
  for (size_t i = 0; i < n; ++i) x[i] = stddev * gdn_rng_normal(r);
}

void gdn_fill_uniform(gdn_rng *r, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * gdn_rng_uniform(r);
}

void gdn_round_to(gdn_dtype dtype, double *x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case GDN_DTYPE_BF16: x[i] = gdn_bf16_to_f32(gdn_f32_to_bf16((float)x[i])); break;
      case GDN_DTYPE_F16: x[i] = gdn_f16_to_f32(gdn_f32_to_f16((float)x[i])); break;
      case GDN_DTYPE_F32: x[i] = (float)x[i]; break;
      default: break;
    }
  }
}

void gdn_pack(gdn_dtype dtype, const double *x, size_t n, void *out) {
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case GDN_DTYPE_BF16: ((uint16_t *)out)[i] = gdn_f32_to_bf16((float)x[i]); break;
      case GDN_DTYPE_F16: ((uint16_t *)out)[i] = gdn_f32_to_f16((float)x[i]); break;
      case GDN_DTYPE_F32: ((float *)out)[i] = (float)x[i]; break;
      case GDN_DTYPE_I32: ((int32_t *)out)[i] = (int32_t)x[i]; break;
      case GDN_DTYPE_I64: ((int64_t *)out)[i] = (int64_t)x[i]; break;
    }
  }
}

void gdn_unpack(gdn_dtype dtype, const void *in, size_t n, double *x) {
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case GDN_DTYPE_BF16: x[i] = gdn_bf16_to_f32(((const uint16_t *)in)[i]); break;
      case GDN_DTYPE_F16: x[i] = gdn_f16_to_f32(((const uint16_t *)in)[i]); break;
      case GDN_DTYPE_F32: x[i] = ((const float *)in)[i]; break;
      case GDN_DTYPE_I32: x[i] = ((const int32_t *)in)[i]; break;
      case GDN_DTYPE_I64: x[i] = (double)((const int64_t *)in)[i]; break;
    }
  }
}

double gdn_rel_l2(const double *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) return NAN;
    double d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

double gdn_max_scaled_err(const double *a, const double *b, size_t n, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) return INFINITY;
    double e = fabs(a[i] - b[i]) / (atol + rtol * fabs(b[i]));
    if (e > worst) worst = e;
  }
  return worst;
}

size_t gdn_count_nonfinite(const double *a, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) c += !isfinite(a[i]);
  return c;
}

void *gdn_xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", bytes);
    exit(2);
  }
  return p;
}

double *gdn_dalloc(size_t n) {
  double *p = (double *)gdn_xmalloc(n * sizeof(double));
  memset(p, 0, n * sizeof(double));
  return p;
}

int gdn_test_small(void) {
  const char *s = getenv("GDN_TEST_SMALL");
  return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}
