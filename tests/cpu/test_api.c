/* Host API: status strings, tensor validation helpers (status + message naming the argument),
 * the chunk-count bound, and bf16/fp16 conversions. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/check.h"
#include "gdn/batch.h"
#include "test_util.h"

static void test_status_strings(void) {
  for (int i = 0; i < GDN_NUM_STATUS; ++i) {
    const char *si = gdn_status_string((gdn_status)i);
    CHECK(si != NULL && si[0] != '\0', "status %d has an empty string", i);
    CHECK(si && strcmp(si, gdn_status_string((gdn_status)GDN_NUM_STATUS)) != 0, "status %d reads as unknown", i);
    for (int j = 0; j < i; ++j)
      CHECK(si && strcmp(si, gdn_status_string((gdn_status)j)) != 0, "status %d and %d share \"%s\"", i, j, si ? si : "");
  }
  CHECK(gdn_status_string((gdn_status)-1) != NULL, "unknown status must still have a string");
}

/* The call fails with INVALID_ARGUMENT and the message names the argument. */
#define CHECK_INVALID(expr, name)                                                                 \
  do {                                                                                            \
    gdn_clear_last_error();                                                                       \
    CHECK_STATUS(expr, GDN_ERROR_INVALID_ARGUMENT);                                               \
    CHECK(strstr(gdn_get_last_error(), name) != NULL, "message \"%s\" does not name \"%s\"",       \
          gdn_get_last_error(), name);                                                            \
  } while (0)

static void test_tensor_check(void) {
  float buf[64];
  gdn_tensor ok = gdn_tensor_2d(buf, GDN_DTYPE_F32, 8, 8);
  CHECK_OK(gdn_tensor_check(&ok, "x"));
  CHECK(gdn_tensor_numel(&ok) == 64 && gdn_tensor_is_contiguous(&ok), "2d helper");
  gdn_tensor empty = gdn_tensor_2d(NULL, GDN_DTYPE_BF16, 0, 8);
  CHECK_OK(gdn_tensor_check(&empty, "empty"));

  CHECK_INVALID(gdn_tensor_check(NULL, "null_desc"), "null_desc");
  gdn_tensor t = ok;
  t.rank = 0;
  CHECK_INVALID(gdn_tensor_check(&t, "rank0_arg"), "rank0_arg");
  t.rank = GDN_MAX_RANK + 1;
  CHECK_INVALID(gdn_tensor_check(&t, "rank5_arg"), "rank5_arg");
  t = ok;
  t.dtype = (gdn_dtype)17;
  CHECK_INVALID(gdn_tensor_check(&t, "dtype_arg"), "dtype_arg");
  t = ok;
  t.sizes[1] = -2;
  CHECK_INVALID(gdn_tensor_check(&t, "neg_size"), "neg_size");
  t = ok;
  t.strides[0] = -8;
  CHECK_INVALID(gdn_tensor_check(&t, "neg_stride"), "neg_stride");
  t = ok;
  t.sizes[0] = INT64_MAX / 4;
  t.strides[0] = INT64_MAX / 4;
  CHECK_INVALID(gdn_tensor_check(&t, "huge_extent"), "huge_extent");
  t = ok;
  t.data = NULL;
  CHECK_INVALID(gdn_tensor_check(&t, "null_data"), "null_data");
}

static void test_check_tensor(void) {
  uint16_t buf[4 * 6 * 8];
  gdn_tensor x = gdn_tensor_3d(buf, GDN_DTYPE_BF16, 4, 6, 8);
  const int64_t want[3] = {4, 6, 8}, any_first[3] = {-1, 6, 8}, wrong[3] = {4, 6, 16};
  CHECK_OK(gdn_check_tensor(&x, "q", 3, want, GDN_FLOAT16_TYPES));
  CHECK_OK(gdn_check_tensor(&x, "q", 3, any_first, GDN_FLOAT_TYPES));
  CHECK_OK(gdn_check_tensor(&x, "q", 3, NULL, GDN_DTYPE_MASK(GDN_DTYPE_BF16)));
  CHECK_INVALID(gdn_check_tensor(&x, "q_rank", 2, want, GDN_FLOAT16_TYPES), "q_rank");
  CHECK_INVALID(gdn_check_tensor(&x, "q_size", 3, wrong, GDN_FLOAT16_TYPES), "q_size");
  CHECK_INVALID(gdn_check_tensor(&x, "q_dtype", 3, want, GDN_DTYPE_MASK(GDN_DTYPE_F32)), "q_dtype");
  gdn_tensor bad = x;
  bad.sizes[0] = -1;
  CHECK_INVALID(gdn_check_tensor(&bad, "q_struct", 3, NULL, GDN_FLOAT16_TYPES), "q_struct");

  gdn_tensor none = gdn_tensor_none();
  CHECK_OK(gdn_check_optional(&none, "gk", 3, wrong, GDN_FLOAT_TYPES));
  CHECK_OK(gdn_check_optional(NULL, "gk", 3, wrong, GDN_FLOAT_TYPES));
  CHECK_INVALID(gdn_check_optional(&x, "gk_opt", 3, wrong, GDN_FLOAT_TYPES), "gk_opt");

  gdn_tensor y = gdn_tensor_3d(buf, GDN_DTYPE_F16, 4, 6, 8);
  CHECK_OK(gdn_check_same_dtype(&x, "q", &x, "k"));
  CHECK_INVALID(gdn_check_same_dtype(&x, "q_dt", &y, "k_dt"), "k_dt");
}

static void test_inner_contiguous(void) {
  float buf[64];
  gdn_tensor t = gdn_tensor_2d(buf, GDN_DTYPE_F32, 4, 8);
  CHECK_OK(gdn_check_inner_contiguous(&t, "v"));
  t.strides[1] = 2;
  t.sizes[1] = 4;
  CHECK_INVALID(gdn_check_inner_contiguous(&t, "v_strided"), "v_strided");
  t.sizes[1] = 1; /* a size-1 last dim may have any stride */
  t.strides[1] = 5;
  CHECK_OK(gdn_check_inner_contiguous(&t, "v"));
}

static void test_aligned(void) {
  _Alignas(64) uint16_t buf[256];
  gdn_tensor t = gdn_tensor_2d(buf, GDN_DTYPE_BF16, 4, 64); /* rows of 128 bytes */
  CHECK_OK(gdn_check_aligned(&t, "k", 16));
  gdn_tensor off = gdn_tensor_2d(buf + 1, GDN_DTYPE_BF16, 3, 64);
  CHECK_INVALID(gdn_check_aligned(&off, "k_ptr", 16), "k_ptr");
  gdn_tensor stride = t;
  stride.sizes[1] = 8;
  stride.strides[0] = 12; /* 24 bytes per row */
  CHECK_INVALID(gdn_check_aligned(&stride, "k_stride", 16), "k_stride");
  gdn_tensor inner = gdn_tensor_2d(buf, GDN_DTYPE_BF16, 1, 4); /* 8-byte last dim, one row */
  CHECK_INVALID(gdn_check_aligned(&inner, "k_inner", 16), "k_inner");
  CHECK_OK(gdn_check_aligned(&inner, "k", 8));
}

static void test_disjoint(void) {
  float buf[64];
  gdn_tensor a = gdn_tensor_1d(buf, GDN_DTYPE_F32, 32), b = gdn_tensor_1d(buf + 32, GDN_DTYPE_F32, 32);
  gdn_tensor c = gdn_tensor_1d(buf + 31, GDN_DTYPE_F32, 8), none = gdn_tensor_none();
  CHECK_OK(gdn_check_disjoint(&a, "a", &b, "b")); /* adjacent, not overlapping */
  CHECK_OK(gdn_check_disjoint(&b, "b", &a, "a"));
  CHECK_OK(gdn_check_disjoint(&a, "a", &none, "none"));
  gdn_clear_last_error();
  CHECK_STATUS(gdn_check_disjoint(&a, "out_a", &c, "in_c"), GDN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(gdn_get_last_error(), "out_a") && strstr(gdn_get_last_error(), "in_c"),
        "overlap message \"%s\" must name both", gdn_get_last_error());
  CHECK_INVALID(gdn_check_disjoint(&c, "c2", &b, "b2"), "c2");
  CHECK_INVALID(gdn_check_disjoint(&a, "self1", &a, "self2"), "self1");
}

/* Brute force: best[s][t] = max over s sequences (each possibly empty) of total length <= t
 * of sum ceil(len / 64). The bound must cover every such batch. */
static void test_batch_max_chunks(void) {
  enum { MAX_T = 300, MAX_S = 6 };
  static int best[MAX_S + 1][MAX_T + 1];
  for (int t = 0; t <= MAX_T; ++t) best[0][t] = 0;
  for (int sq = 1; sq <= MAX_S; ++sq)
    for (int t = 0; t <= MAX_T; ++t) {
      int m = 0;
      for (int len = 0; len <= t; ++len) {
        int v = (len + GDN_CHUNK - 1) / GDN_CHUNK + best[sq - 1][t - len];
        if (v > m) m = v;
      }
      best[sq][t] = m;
    }
  int bad = 0;
  for (int sq = 0; sq <= MAX_S; ++sq)
    for (int t = 0; t <= MAX_T; ++t) {
      int32_t bound = gdn_batch_max_chunks(t, sq);
      if (bound < best[sq][t]) {
        if (++bad <= 5) CHECK(0, "gdn_batch_max_chunks(%d, %d) = %d < %d achievable", t, sq, bound, best[sq][t]);
      }
    }
  CHECK(bad == 0, "%d (max_tokens, max_seqs) pairs under-bounded", bad);
  CHECK(gdn_batch_max_chunks(0, 0) == 0, "empty capacity");
  CHECK(gdn_batch_max_chunks(64, 1) == 1 && gdn_batch_max_chunks(65, 1) == 2, "one-sequence bound");
  /* 1023 one-token sequences + one of 2^20 - 1023 tokens: 1023 + 16369 chunks. */
  CHECK(gdn_batch_max_chunks(1 << 20, 1024) >= 17392, "large bound %d", gdn_batch_max_chunks(1 << 20, 1024));
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static void test_bf16(gdn_rng *r) {
  CHECK(gdn_f32_to_bf16(1.0f) == 0x3F80, "bf16(1)");
  CHECK(gdn_f32_to_bf16(-2.0f) == 0xC000, "bf16(-2)");
  CHECK(gdn_f32_to_bf16(0.0f) == 0x0000 && gdn_f32_to_bf16(-0.0f) == 0x8000, "bf16(+-0)");
  CHECK(gdn_f32_to_bf16(1.0f + 0x1p-8f) == 0x3F80, "bf16 tie to even (down)");
  CHECK(gdn_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82, "bf16 tie to even (up)");
  CHECK(gdn_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81, "bf16 above the tie rounds up");
  CHECK(gdn_f32_to_bf16(INFINITY) == 0x7F80 && gdn_f32_to_bf16(-INFINITY) == 0xFF80, "bf16(inf)");
  CHECK(gdn_f32_to_bf16(3.4028235e38f) == 0x7F80, "bf16(FLT_MAX) rounds to inf");
  uint16_t nan16 = gdn_f32_to_bf16(NAN);
  CHECK((nan16 & 0x7F80) == 0x7F80 && (nan16 & 0x7F), "bf16(NaN) = 0x%04x is not NaN", nan16);
  CHECK(gdn_bf16_to_f32(0x3FC0) == 1.5f && gdn_bf16_to_f32(0x0001) == 0x1p-133f, "bf16 decode");

  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) { /* every non-NaN bf16 survives the round trip */
    float f = gdn_bf16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    bad += gdn_f32_to_bf16(f) != h;
  }
  CHECK(bad == 0, "%d bf16 values do not round-trip", bad);

  bad = 0;
  for (int i = 0; i < 200000; ++i) { /* the result is a nearest bf16, ties to even */
    uint32_t u = (uint32_t)gdn_rng_next(r);
    float x;
    memcpy(&x, &u, 4);
    if (!isfinite(x) || fabsf(x) > 3.3e38f) continue;
    uint16_t h = gdn_f32_to_bf16(x);
    double got = gdn_bf16_to_f32(h), lo = gdn_bf16_to_f32((uint16_t)(f32_bits(x) >> 16));
    double hi = gdn_bf16_to_f32((uint16_t)((f32_bits(x) >> 16) + 1));
    double dl = fabs((double)x - lo), dh = fabs((double)x - hi), dg = fabs((double)x - got);
    int ok = dg <= dl && dg <= dh && (got == lo || got == hi);
    if (dl == dh) ok = ok && (h & 1u) == 0;
    bad += !ok;
  }
  CHECK(bad == 0, "%d random floats not rounded to the nearest-even bf16", bad);
}

static void test_f16(gdn_rng *r) {
  CHECK(gdn_f32_to_f16(1.0f) == 0x3C00 && gdn_f32_to_f16(-2.0f) == 0xC000, "f16(1), f16(-2)");
  CHECK(gdn_f32_to_f16(65504.0f) == 0x7BFF, "f16(max)");
  CHECK(gdn_f32_to_f16(65519.0f) == 0x7BFF, "f16 just below the overflow tie");
  CHECK(gdn_f32_to_f16(65520.0f) == 0x7C00, "f16 overflow tie rounds to inf");
  CHECK(gdn_f32_to_f16(1.0f + 0x1p-11f) == 0x3C00, "f16 tie to even (down)");
  CHECK(gdn_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3C02, "f16 tie to even (up)");
  CHECK(gdn_f32_to_f16(0x1p-24f) == 0x0001, "f16 min subnormal");
  CHECK(gdn_f32_to_f16(0x1p-25f) == 0x0000, "f16 half min subnormal ties to 0");
  CHECK(gdn_f32_to_f16(1.5f * 0x1p-25f) == 0x0001, "f16 above half min subnormal");
  CHECK(gdn_f32_to_f16(1.5f * 0x1p-24f) == 0x0002, "f16 subnormal tie to even (up)");
  CHECK(gdn_f32_to_f16(2.5f * 0x1p-24f) == 0x0002, "f16 subnormal tie to even (down)");
  CHECK(gdn_f32_to_f16(1023.5f * 0x1p-24f) == 0x0400, "f16 subnormal carries into the first normal");
  CHECK(gdn_f32_to_f16(0x1p-26f) == 0x0000 && gdn_f32_to_f16(-0x1p-30f) == 0x8000, "f16 underflow keeps the sign");
  CHECK(gdn_f32_to_f16(INFINITY) == 0x7C00 && gdn_f32_to_f16(-INFINITY) == 0xFC00, "f16(inf)");
  uint16_t nan16 = gdn_f32_to_f16(NAN);
  CHECK((nan16 & 0x7C00) == 0x7C00 && (nan16 & 0x3FF), "f16(NaN) = 0x%04x is not NaN", nan16);
  CHECK(gdn_f16_to_f32(0x3555) == 0x1.554p-2f && gdn_f16_to_f32(0x8001) == -0x1p-24f, "f16 decode");

  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = gdn_f16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    bad += gdn_f32_to_f16(f) != h;
  }
  CHECK(bad == 0, "%d fp16 values do not round-trip", bad);

  bad = 0;
  for (int i = 0; i < 200000; ++i) { /* nearest fp16 with ties to even, over the finite range */
    float x = (float)(ldexp(gdn_rng_uniform(r) * 2.0 - 1.0, (int)(gdn_rng_next(r) % 44) - 28));
    uint16_t h = gdn_f32_to_f16(x);
    double got = gdn_f16_to_f32(h);
    if (fabs((double)x) > 65504.0) continue;
    uint16_t mag = h & 0x7FFF, sign = h & 0x8000;
    double up = mag < 0x7BFF ? gdn_f16_to_f32((uint16_t)(sign | (mag + 1))) : got;
    double down = mag > 0 ? gdn_f16_to_f32((uint16_t)(sign | (mag - 1))) : got;
    double dg = fabs((double)x - got), du = fabs((double)x - up), dd = fabs((double)x - down);
    int ok = dg <= du && dg <= dd;
    if ((dg == du && up != got) || (dg == dd && down != got)) ok = ok && (h & 1u) == 0;
    bad += !ok;
  }
  CHECK(bad == 0, "%d random floats not rounded to the nearest-even fp16", bad);
}

int main(void) {
  gdn_rng r;
  gdn_rng_seed(&r, gdn_test_seed("test_api"));
  test_status_strings();
  test_tensor_check();
  test_check_tensor();
  test_inner_contiguous();
  test_aligned();
  test_disjoint();
  test_batch_max_chunks();
  test_bf16(&r);
  test_f16(&r);
  return gdn_test_finish("test_api");
}
