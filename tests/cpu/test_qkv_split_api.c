/* Host API of the fused QKV split: validation errors name the argument, and plan picks
 * the layout kind and vector width expected from the strides and alignment (planned for
 * gdn_device_info_hopper(), no device needed). Pointers are fake: nothing is dereferenced. */
#include <stdint.h>
#include <string.h>
#include "test_util.h"
#include "gdn/device.h"
#include "gdn/qkv_split.h"

/* Fake, 256-byte aligned, far-apart "device" addresses. */
#define ADDR(n) ((void *)(uintptr_t)(0x100000000ull * (uint64_t)(n)))

static gdn_device_info dev;

/* Qwen3-Next TP1: Hk=16, K=128, Hv=32, V=128, D=8192; token-major contiguous. */
static gdn_qkv_split_args base_args(gdn_dtype dt, int64_t T) {
  gdn_qkv_split_args a;
  a.mixed_qkv = gdn_tensor_2d(ADDR(1), dt, T, 8192);
  a.q = gdn_tensor_3d(ADDR(2), dt, T, 16, 128);
  a.k = gdn_tensor_3d(ADDR(3), dt, T, 16, 128);
  a.v = gdn_tensor_3d(ADDR(4), dt, T, 32, 128);
  return a;
}

static gdn_qkv_split_args channel_major(gdn_qkv_split_args a) {
  a.mixed_qkv.strides[0] = 1;
  a.mixed_qkv.strides[1] = a.mixed_qkv.sizes[0];
  return a;
}

/* Expects INVALID_ARGUMENT from validate AND plan, with `name` in the message. */
#define EXPECT_INVALID(args_expr, name, what)                                                        \
  do {                                                                                             \
    gdn_qkv_split_args a_ = (args_expr);                                                           \
    gdn_qkv_split_config c_;                                                                       \
    CHECK_STATUS(gdn_qkv_split_validate(&a_), GDN_ERROR_INVALID_ARGUMENT);                         \
    CHECK(strstr(gdn_get_last_error(), name) != NULL, "%s: message '%s' should name '%s'", what,   \
          gdn_get_last_error(), name);                                                             \
    CHECK_STATUS(gdn_qkv_split_plan(&a_, &dev, &c_), GDN_ERROR_INVALID_ARGUMENT);                  \
  } while (0)

static void test_validation(void) {
  gdn_qkv_split_args a = base_args(GDN_DTYPE_BF16, 100);
  CHECK_OK(gdn_qkv_split_validate(&a));
  CHECK_STATUS(gdn_qkv_split_validate(NULL), GDN_ERROR_INVALID_ARGUMENT);

  /* wrong D */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv = gdn_tensor_2d(ADDR(1), GDN_DTYPE_BF16, 100, 8000);
  EXPECT_INVALID(a, "mixed_qkv", "wrong D");
  CHECK(strstr(gdn_get_last_error(), "8192") != NULL, "wrong D: message '%s' should give the expected D",
        gdn_get_last_error());

  /* mismatched T */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.k.sizes[0] = 99;
  EXPECT_INVALID(a, "k", "T mismatch k");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v.sizes[0] = 101;
  EXPECT_INVALID(a, "v", "T mismatch v");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.sizes[0] = 1;
  EXPECT_INVALID(a, "q", "T mismatch q");

  /* k shaped unlike q */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.k = gdn_tensor_3d(ADDR(3), GDN_DTYPE_BF16, 100, 8, 256);
  EXPECT_INVALID(a, "k", "k shape");

  /* dtype mismatch */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v.dtype = GDN_DTYPE_F16;
  EXPECT_INVALID(a, "v", "dtype mismatch");
  a = base_args(GDN_DTYPE_F32, 100);
  a.q.dtype = GDN_DTYPE_BF16;
  EXPECT_INVALID(a, "q", "dtype mismatch q");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv.dtype = GDN_DTYPE_I32;
  a.q.dtype = a.k.dtype = a.v.dtype = GDN_DTYPE_I32;
  EXPECT_INVALID(a, "mixed_qkv", "int32");

  /* overlaps: an output over the input, two outputs over each other */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.data = (char *)ADDR(1) + 4096;
  EXPECT_INVALID(a, "q", "q overlaps input");
  CHECK(strstr(gdn_get_last_error(), "mixed_qkv") != NULL, "overlap: message '%s' should name mixed_qkv",
        gdn_get_last_error());
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v.data = (char *)ADDR(3) + 2 * 100 * 16 * 128 - 2; /* last element of k */
  EXPECT_INVALID(a, "v", "v overlaps k");
  /* an output overlapping itself (token stride 0, heads on top of each other) */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.k.strides[0] = 0;
  EXPECT_INVALID(a, "k", "k self-overlap");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.strides[1] = 64;
  EXPECT_INVALID(a, "q", "q heads overlap");

  /* NULL data */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.data = NULL;
  EXPECT_INVALID(a, "q", "NULL q");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv.data = NULL;
  EXPECT_INVALID(a, "mixed_qkv", "NULL input");

  /* ranks */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv = gdn_tensor_3d(ADDR(1), GDN_DTYPE_BF16, 100, 1, 8192);
  EXPECT_INVALID(a, "mixed_qkv", "rank 3 input");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v = gdn_tensor_2d(ADDR(4), GDN_DTYPE_BF16, 100, 4096);
  EXPECT_INVALID(a, "v", "rank 2 v");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.rank = 0;
  EXPECT_INVALID(a, "q", "rank 0 q");

  /* negative / zero sizes */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv.sizes[0] = -1;
  EXPECT_INVALID(a, "mixed_qkv", "negative T");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v = gdn_tensor_3d(ADDR(4), GDN_DTYPE_BF16, 100, 0, 128);
  EXPECT_INVALID(a, "v", "zero heads");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.q.strides[0] = -5;
  EXPECT_INVALID(a, "q", "negative stride");

  /* outputs: last stride 1, element alignment */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.v.strides[2] = 2;
  a.v.strides[1] = 256;
  a.v.strides[0] = 32 * 256;
  EXPECT_INVALID(a, "v", "v last stride");
  a = base_args(GDN_DTYPE_F32, 100);
  a.k.data = (char *)ADDR(3) + 2;
  EXPECT_INVALID(a, "k", "k not element aligned");
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv.data = (char *)ADDR(1) + 1;
  EXPECT_INVALID(a, "mixed_qkv", "input not element aligned");

  /* T == 0 is valid, even with NULL data */
  a = base_args(GDN_DTYPE_BF16, 0);
  a.mixed_qkv.data = a.q.data = a.k.data = a.v.data = NULL;
  CHECK_OK(gdn_qkv_split_validate(&a));
  gdn_qkv_split_config c;
  CHECK_OK(gdn_qkv_split_plan(&a, &dev, &c));

  /* plan's own arguments */
  a = base_args(GDN_DTYPE_BF16, 100);
  CHECK_STATUS(gdn_qkv_split_plan(&a, NULL, &c), GDN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(gdn_qkv_split_plan(&a, &dev, NULL), GDN_ERROR_INVALID_ARGUMENT);
}

static gdn_qkv_split_config plan_ok(const gdn_qkv_split_args *a, const char *what) {
  gdn_qkv_split_config c;
  memset(&c, 0, sizeof c);
  gdn_status s = gdn_qkv_split_plan(a, &dev, &c);
  CHECK(s == GDN_SUCCESS, "%s: plan failed: %s (%s)", what, gdn_status_string(s), gdn_get_last_error());
  return c;
}

static void test_plan(void) {
  /* token-major, contiguous and padded rows: 16-byte vectors */
  gdn_qkv_split_args a = base_args(GDN_DTYPE_BF16, 8192);
  gdn_qkv_split_config c = plan_ok(&a, "token-major");
  CHECK(c.layout == GDN_QKV_SPLIT_TOKEN_MAJOR, "token-major: got %s", gdn_qkv_split_layout_name(c.layout));
  CHECK(c.vec_bytes == 16 && c.elem_bytes == 2, "token-major: vec_bytes %d elem_bytes %d", c.vec_bytes, c.elem_bytes);
  CHECK(c.block_x * c.block_y == 256 && c.tile_tokens == c.block_y * c.rows_per_thread, "token-major: block %dx%d",
        c.block_x, c.block_y);
  CHECK(c.D == 8192 && c.Hk == 16 && c.K == 128 && c.Hv == 32 && c.V == 128 && c.dtype == GDN_DTYPE_BF16,
        "token-major: recorded shape");
  a.mixed_qkv.strides[0] = 8192 + 64;
  c = plan_ok(&a, "token-major padded");
  CHECK(c.layout == GDN_QKV_SPLIT_TOKEN_MAJOR && c.vec_bytes == 16, "padded rows: %s vec %d",
        gdn_qkv_split_layout_name(c.layout), c.vec_bytes);
  /* odd row padding: rows only 2-byte aligned */
  a.mixed_qkv.strides[0] = 8192 + 3;
  c = plan_ok(&a, "token-major odd pad");
  CHECK(c.layout == GDN_QKV_SPLIT_TOKEN_MAJOR && c.vec_bytes == 2, "odd pad: %s vec %d",
        gdn_qkv_split_layout_name(c.layout), c.vec_bytes);
  /* 8-byte aligned input pointer: 8-byte vectors */
  a = base_args(GDN_DTYPE_BF16, 8192);
  a.mixed_qkv.data = (char *)ADDR(1) + 8;
  c = plan_ok(&a, "token-major 8-aligned");
  CHECK(c.vec_bytes == 8, "8-byte aligned input: vec %d", c.vec_bytes);
  /* fp32: 16-byte vectors of 4 elements */
  a = base_args(GDN_DTYPE_F32, 8192);
  c = plan_ok(&a, "token-major fp32");
  CHECK(c.vec_bytes == 16 && c.elem_bytes == 4, "fp32: vec %d", c.vec_bytes);

  /* channel-major: [D, T] memory viewed as [T, D]; any T (odd T keeps 16-byte stores) */
  a = channel_major(base_args(GDN_DTYPE_BF16, 8192));
  c = plan_ok(&a, "channel-major");
  CHECK(c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR, "channel-major: got %s", gdn_qkv_split_layout_name(c.layout));
  CHECK(c.vec_bytes == 16 && c.tile_tokens == 128 && c.tile_channels == 128 && c.smem_bytes == 32768 &&
            c.block_x * c.block_y == 256,
        "channel-major: vec %d tile %dx%d smem %d block %dx%d", c.vec_bytes, c.tile_tokens, c.tile_channels,
        c.smem_bytes, c.block_x, c.block_y);
  a = channel_major(base_args(GDN_DTYPE_BF16, 8191));
  a.mixed_qkv.data = (char *)ADDR(1) + 2;
  c = plan_ok(&a, "channel-major odd T");
  CHECK(c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR && c.vec_bytes == 16, "channel-major odd T: %s vec %d",
        gdn_qkv_split_layout_name(c.layout), c.vec_bytes);
  a = channel_major(base_args(GDN_DTYPE_F32, 100));
  a.mixed_qkv.strides[1] = 137; /* padded channel rows */
  c = plan_ok(&a, "channel-major fp32 padded");
  CHECK(c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR && c.vec_bytes == 16 && c.tile_tokens == 64,
        "channel-major fp32: %s vec %d tile_tokens %d", gdn_qkv_split_layout_name(c.layout), c.vec_bytes,
        c.tile_tokens);

  /* generic strides: element-wise */
  a = base_args(GDN_DTYPE_BF16, 100);
  a.mixed_qkv.strides[0] = 2 * 8192;
  a.mixed_qkv.strides[1] = 2;
  c = plan_ok(&a, "generic");
  CHECK(c.layout == GDN_QKV_SPLIT_GENERIC && c.vec_bytes == 2, "generic: %s vec %d",
        gdn_qkv_split_layout_name(c.layout), c.vec_bytes);

  /* D not a multiple of 8: Hk=1, K=3, Hv=1, V=5 -> D = 11, one element per vector */
  const gdn_dtype dts[3] = {GDN_DTYPE_BF16, GDN_DTYPE_F16, GDN_DTYPE_F32};
  for (int i = 0; i < 3; ++i) {
    gdn_qkv_split_args s;
    s.mixed_qkv = gdn_tensor_2d(ADDR(1), dts[i], 77, 11);
    s.q = gdn_tensor_3d(ADDR(2), dts[i], 77, 1, 3);
    s.k = gdn_tensor_3d(ADDR(3), dts[i], 77, 1, 3);
    s.v = gdn_tensor_3d(ADDR(4), dts[i], 77, 1, 5);
    c = plan_ok(&s, "D = 11");
    CHECK(c.layout == GDN_QKV_SPLIT_TOKEN_MAJOR && c.vec_bytes == (int)gdn_dtype_size(dts[i]),
          "D = 11 %s: %s vec %d", gdn_dtype_name(dts[i]), gdn_qkv_split_layout_name(c.layout), c.vec_bytes);
    s = channel_major(s);
    c = plan_ok(&s, "D = 11 channel-major");
    CHECK(c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR && c.vec_bytes == (int)gdn_dtype_size(dts[i]),
          "D = 11 channel-major %s: vec %d", gdn_dtype_name(dts[i]), c.vec_bytes);
  }

  /* misaligned outputs narrow the stores, never fail */
  a = base_args(GDN_DTYPE_BF16, 64);
  a.k.data = (char *)ADDR(3) + 4;
  c = plan_ok(&a, "k 4-aligned");
  CHECK(c.vec_bytes == 4, "k 4-byte aligned: vec %d", c.vec_bytes);
  a = channel_major(base_args(GDN_DTYPE_BF16, 64));
  a.v.data = (char *)ADDR(4) + 2;
  c = plan_ok(&a, "channel-major v 2-aligned");
  CHECK(c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR && c.vec_bytes == 2, "channel-major v 2-aligned: vec %d",
        c.vec_bytes);
  /* padded heads (head stride not K) keep 16-byte vectors when aligned */
  a = base_args(GDN_DTYPE_BF16, 64);
  a.q.strides[1] = 136;
  a.q.strides[0] = 16 * 136;
  c = plan_ok(&a, "padded heads");
  CHECK(c.vec_bytes == 16, "padded heads: vec %d", c.vec_bytes);
  /* ... and a head stride that is not 16-byte aligned narrows them */
  a.q.strides[1] = 131;
  a.q.strides[0] = 16 * 131;
  c = plan_ok(&a, "odd head stride");
  CHECK(c.vec_bytes == 2, "odd head stride: vec %d", c.vec_bytes);
}

int main(void) {
  dev = gdn_device_info_hopper();
  test_validation();
  test_plan();
  return gdn_test_finish("test_qkv_split_api");
}
