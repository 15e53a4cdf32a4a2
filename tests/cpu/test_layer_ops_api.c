/* Host-side API checks of the layer operators (conv1d, gated_rmsnorm, linear, allreduce):
 * validation messages/status, plan choices, config checks, and hand-computed values of
 * the float64 layer reference. No device needed: the pointers are never dereferenced. */
#include <math.h>
#include <string.h>
#include "gdn/allreduce.h"
#include "gdn/conv1d.h"
#include "gdn/gated_rmsnorm.h"
#include "gdn/linear.h"
#include "gdn/reference.h"
#include "test_util.h"

/* Distinct fake device regions, 256 MiB apart, 256-byte aligned. */
static void *fake(int i) { return (void *)((uintptr_t)0x100000000ull + (uintptr_t)i * (uintptr_t)0x10000000ull); }

static gdn_conv1d_args conv_args(void) {
  const int T = 64, Hk = 2, K = 32, Hv = 4, V = 32, D = 2 * Hk * K + Hv * V, W = 4;
  gdn_conv1d_args a;
  memset(&a, 0, sizeof a);
  a.mixed = gdn_tensor_2d(fake(0), GDN_DTYPE_BF16, T, D + 40);
  a.weight = gdn_tensor_2d(fake(1), GDN_DTYPE_F32, D, W);
  a.bias = gdn_tensor_1d(fake(2), GDN_DTYPE_F32, D);
  a.conv_state = gdn_tensor_3d(fake(3), GDN_DTYPE_BF16, 8, W - 1, D);
  a.q = gdn_tensor_3d(fake(4), GDN_DTYPE_BF16, T, Hk, K);
  a.k = gdn_tensor_3d(fake(5), GDN_DTYPE_BF16, T, Hk, K);
  a.v = gdn_tensor_3d(fake(6), GDN_DTYPE_BF16, T, Hv, V);
  a.batch.header = (const gdn_batch_header *)fake(7);
  a.batch.cu_seqlens = (const int32_t *)fake(8);
  a.batch.max_seqs = 4;
  a.batch.max_tokens = T;
  return a;
}

static void test_conv1d(void) {
  gdn_device_info dev = gdn_device_info_hopper();
  gdn_conv1d_args a = conv_args(), b;
  gdn_conv1d_config cfg;
  CHECK_OK(gdn_conv1d_validate(&a));
  CHECK_OK(gdn_conv1d_plan(&a, &dev, &cfg));
  CHECK(cfg.vec == 8 && cfg.threads == 32 && cfg.tile_tokens == 16, "plan: vec %d threads %d tile %d", cfg.vec, cfg.threads,
        cfg.tile_tokens);
  /* 65536 tokens x 1 channel block of one warp: each thread keeps 8 x 16 bytes of loads in
   * flight, so ~32 KB per SM takes 8 warps per SM: 132 x 8 = 1056 blocks, i.e. 32-token tiles. */
  a.batch.max_tokens = 65536;
  a.mixed.sizes[0] = a.q.sizes[0] = a.k.sizes[0] = a.v.sizes[0] = 65536;
  CHECK_OK(gdn_conv1d_plan(&a, &dev, &cfg));
  CHECK(cfg.tile_tokens == 32, "long batch: tile %d, expected 32", cfg.tile_tokens);
  a = conv_args();
  /* The layer's shape (Qwen3-Next TP1, D = 8192): 8 channel blocks of 128 threads need 264
   * blocks: 128-token tiles from 8192 tokens up; 16 (the shortest) at 512 tokens. */
  {
    gdn_conv1d_args l = conv_args();
    const int64_t Dl = 2 * 16 * 128 + 32 * 128, caps[3] = {512, 8192, 65536}, want[3] = {16, 128, 128};
    l.mixed = gdn_tensor_2d(fake(0), GDN_DTYPE_BF16, 65536, Dl + 4096 + 64); /* 1.6 GB: regions 0..6 */
    l.weight = gdn_tensor_2d(fake(16), GDN_DTYPE_BF16, Dl, 4);
    l.bias = gdn_tensor_none();
    l.conv_state = gdn_tensor_3d(fake(17), GDN_DTYPE_BF16, 8, 3, Dl);
    l.q = gdn_tensor_3d(fake(18), GDN_DTYPE_BF16, 65536, 16, 128);
    l.k = gdn_tensor_3d(fake(20), GDN_DTYPE_BF16, 65536, 16, 128);
    l.v = gdn_tensor_3d(fake(22), GDN_DTYPE_BF16, 65536, 32, 128);
    for (int i = 0; i < 3; ++i) {
      l.batch.max_tokens = (int)caps[i];
      CHECK_OK(gdn_conv1d_plan(&l, &dev, &cfg));
      CHECK(cfg.vec == 8 && cfg.threads == 128 && cfg.tile_tokens == want[i], "layer shape, %lld tokens: vec %d threads %d tile %d",
            (long long)caps[i], cfg.vec, cfg.threads, cfg.tile_tokens);
    }
  }

  b = a;
  b.weight.sizes[1] = 5;
  b.weight.strides[0] = 5;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_UNSUPPORTED);
  b = a;
  b.weight.sizes[1] = 1;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_UNSUPPORTED);
  b = a;
  b.mixed.sizes[1] = 200;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(gdn_get_last_error(), "mixed") != NULL, "message names mixed: '%s'", gdn_get_last_error());
  b = a;
  b.k.sizes[2] = 16;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.v.dtype = GDN_DTYPE_F16;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.mixed.dtype = GDN_DTYPE_F32;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.conv_state.sizes[1] = 4;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.conv_state.dtype = GDN_DTYPE_F32;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.conv_state = gdn_tensor_none();
  b.bias = gdn_tensor_none();
  CHECK_OK(gdn_conv1d_validate(&b));
  b = a;
  b.bias.dtype = GDN_DTYPE_F16;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.batch.header = NULL;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.batch.max_tokens = 65;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.q.strides[2] = 2;
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.k.data = b.q.data; /* same memory */
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.q.data = (char *)b.mixed.data + 64; /* inside mixed */
  CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);

  /* q|k|v as column slices of one [T, D] buffer: interleaved rows, accepted. */
  {
    const int D = 256;
    char *base = (char *)fake(9);
    b = a;
    b.q.data = base;
    b.k.data = base + 64 * 2;
    b.v.data = base + 128 * 2;
    b.q.strides[0] = b.k.strides[0] = b.v.strides[0] = D;
    CHECK_OK(gdn_conv1d_validate(&b));
    b.k.data = base + 32 * 2; /* overlaps q's rows */
    CHECK_STATUS(gdn_conv1d_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  }

  /* Config checks: vec vs alignment, threads, tile. */
  CHECK_OK(gdn_conv1d_plan(&a, &dev, &cfg));
  b = a;
  b.mixed.strides[0] = a.mixed.sizes[1] + 1; /* odd row stride: only vec 1 fits */
  CHECK_STATUS(gdn_conv1d_check_config(&b, &cfg), GDN_ERROR_INVALID_ARGUMENT);
  gdn_conv1d_config c2;
  CHECK_OK(gdn_conv1d_plan(&b, &dev, &c2));
  CHECK(c2.vec == 1, "odd row stride: vec %d, expected 1", c2.vec);
  c2 = cfg;
  c2.threads = 48;
  CHECK_STATUS(gdn_conv1d_check_config(&a, &c2), GDN_ERROR_INVALID_ARGUMENT);
  c2 = cfg;
  c2.tile_tokens = 0;
  CHECK_STATUS(gdn_conv1d_check_config(&a, &c2), GDN_ERROR_INVALID_ARGUMENT);
  c2 = cfg;
  c2.vec = 3;
  CHECK_STATUS(gdn_conv1d_check_config(&a, &c2), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.q.sizes[2] = b.k.sizes[2] = 12; /* K = 12: vec 4 */
  b.mixed.sizes[1] = 2 * 2 * 12 + 4 * 32;
  b.weight.sizes[0] = b.bias.sizes[0] = b.conv_state.sizes[2] = b.mixed.sizes[1];
  b.q.strides[1] = b.k.strides[1] = 12;
  b.q.strides[0] = b.k.strides[0] = 24;
  b.conv_state.strides[1] = b.mixed.sizes[1];
  b.conv_state.strides[0] = 3 * b.mixed.sizes[1];
  b.weight.strides[0] = 4;
  CHECK_OK(gdn_conv1d_plan(&b, &dev, &c2));
  CHECK(c2.vec == 4, "K = 12: vec %d, expected 4", c2.vec);

  setenv("GDN_CONV1D_TILE", "5", 1);
  CHECK_OK(gdn_conv1d_plan(&a, &dev, &c2));
  CHECK(c2.tile_tokens == 5, "GDN_CONV1D_TILE=5: tile %d", c2.tile_tokens);
  setenv("GDN_CONV1D_TILE", "abc", 1);
  CHECK_STATUS(gdn_conv1d_plan(&a, &dev, &c2), GDN_ERROR_INVALID_ARGUMENT);
  setenv("GDN_CONV1D_TILE", "0", 1);
  CHECK_STATUS(gdn_conv1d_plan(&a, &dev, &c2), GDN_ERROR_UNSUPPORTED);
  unsetenv("GDN_CONV1D_TILE");
}

static gdn_gated_rmsnorm_args rms_args(void) {
  const int T = 64, H = 4, V = 128;
  gdn_gated_rmsnorm_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_3d(fake(0), GDN_DTYPE_BF16, T, H, V);
  a.z = gdn_tensor_3d(fake(1), GDN_DTYPE_BF16, T, H, V);
  a.z.strides[0] = 3 * H * V; /* a column slice of a wider projection output */
  a.weight = gdn_tensor_1d(fake(2), GDN_DTYPE_F32, V);
  a.out = gdn_tensor_3d(fake(3), GDN_DTYPE_BF16, T, H, V);
  return a;
}

static void test_rmsnorm(void) {
  gdn_device_info dev = gdn_device_info_hopper();
  gdn_gated_rmsnorm_args a = rms_args(), b;
  gdn_gated_rmsnorm_config cfg;
  CHECK_OK(gdn_gated_rmsnorm_validate(&a));
  CHECK_OK(gdn_gated_rmsnorm_plan(&a, &dev, &cfg));
  CHECK(cfg.vec == 8, "plan: vec %d, expected 8", cfg.vec);
  b = a;
  b.x.dtype = GDN_DTYPE_F32;
  CHECK_OK(gdn_gated_rmsnorm_plan(&b, &dev, &cfg));
  CHECK(cfg.vec == 4, "fp32 x: vec %d, expected 4 (16-byte accesses)", cfg.vec);
  b = a;
  b.out.sizes[2] = b.x.sizes[2] = b.z.sizes[2] = b.weight.sizes[0] = 30;
  CHECK_OK(gdn_gated_rmsnorm_plan(&b, &dev, &cfg));
  CHECK(cfg.vec == 2, "V = 30: vec %d, expected 2", cfg.vec);

  b = a;
  b.eps = -1.0;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.eps = NAN;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.eps = 1e-40; /* subnormal in fp32: the flushing rsqrt would see 0 */
  CHECK_FAIL_NAMES(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "eps");
  b.eps = 1e-30;
  CHECK_OK(gdn_gated_rmsnorm_validate(&b));
  b = a;
  b.z.dtype = GDN_DTYPE_F16; /* z and out share a dtype */
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.sizes[0] = 10;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.weight.sizes[0] = 64;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.z.strides[2] = 2;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.out = b.x; /* exactly in place: fine */
  CHECK_OK(gdn_gated_rmsnorm_validate(&b));
  b.out.data = (char *)b.x.data + 256; /* partial overlap */
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.batch.header = (const gdn_batch_header *)fake(9);
  b.batch.max_tokens = 65;
  CHECK_STATUS(gdn_gated_rmsnorm_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b.batch.max_tokens = 64;
  CHECK_OK(gdn_gated_rmsnorm_validate(&b));
  b = a;
  CHECK_OK(gdn_gated_rmsnorm_plan(&b, &dev, &cfg));
  cfg.warps_per_block = 0;
  CHECK_STATUS(gdn_gated_rmsnorm_check_config(&b, &cfg), GDN_ERROR_INVALID_ARGUMENT);
  cfg.warps_per_block = 4;
  b.z.data = (char *)b.z.data + 2; /* 2-byte aligned z: vec 8 no longer fits */
  CHECK_STATUS(gdn_gated_rmsnorm_check_config(&b, &cfg), GDN_ERROR_INVALID_ARGUMENT);
}

static void test_linear(void) {
  gdn_linear_args a, b;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_2d(fake(0), GDN_DTYPE_BF16, 64, 256);
  a.w = gdn_tensor_2d(fake(1), GDN_DTYPE_BF16, 128, 256);
  a.y = gdn_tensor_2d(fake(2), GDN_DTYPE_BF16, 64, 128);
  a.bias = gdn_tensor_1d(fake(3), GDN_DTYPE_F32, 128);
  CHECK_OK(gdn_linear_validate(&a));
  b = a;
  b.w.dtype = GDN_DTYPE_F16;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.dtype = b.w.dtype = b.y.dtype = GDN_DTYPE_F32;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.y.sizes[1] = 127;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.bias.sizes[0] = 64;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.bias.dtype = GDN_DTYPE_F16;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.sizes[1] = b.w.sizes[1] = 0;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_UNSUPPORTED);
  b = a;
  b.x.strides[0] = 128;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.strides[0] = 512; /* a column slice of a wider buffer: fine */
  CHECK_OK(gdn_linear_validate(&b));
  b = a;
  b.y.data = (char *)a.x.data + 1024;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.accumulate = 2;
  CHECK_STATUS(gdn_linear_validate(&b), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.sizes[0] = b.y.sizes[0] = 0; /* T = 0 is valid (an empty node) */
  CHECK_OK(gdn_linear_validate(&b));
  CHECK_STATUS(gdn_linear_validate(NULL), GDN_ERROR_INVALID_ARGUMENT);
}

static void test_allreduce(void) {
  ncclComm_t comm = (ncclComm_t)fake(0);
  CHECK_OK(gdn_allreduce_validate(comm, fake(1), 100, GDN_DTYPE_BF16));
  CHECK_OK(gdn_allreduce_validate(comm, NULL, 0, GDN_DTYPE_F32));
  CHECK_STATUS(gdn_allreduce_validate(NULL, fake(1), 100, GDN_DTYPE_BF16), GDN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(gdn_allreduce_validate(comm, fake(1), 100, GDN_DTYPE_I32), GDN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(gdn_allreduce_validate(comm, NULL, 100, GDN_DTYPE_F16), GDN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(gdn_allreduce_validate(comm, fake(1), 100, (gdn_dtype)17), GDN_ERROR_INVALID_ARGUMENT);
}

static double silu(double x) { return x / (1.0 + exp(-x)); }

static void test_reference(void) {
  /* conv1d, D = 2, W = 3: sequences of lengths 1, 4, 0, 2 with slots 0, -1, 1, 2. */
  const int D = 2, W = 3;
  const int32_t cu[5] = {0, 1, 5, 5, 7};
  const int32_t slots[4] = {0, -1, 1, 2};
  double x[7 * 2], w[2 * 3] = {0.5, -1.0, 2.0, 1.0, 0.25, -0.5}, bias[2] = {0.1, -0.2};
  for (int i = 0; i < 14; ++i) x[i] = 0.1 * (i + 1) * (i % 3 == 0 ? -1 : 1);
  double state[3 * 2 * 2], st0[12], out[14];
  for (int i = 0; i < 12; ++i) state[i] = st0[i] = 1.0 + 0.5 * i;
  gdn_ref_conv1d(4, cu, slots, D, W, x, w, bias, state, out);
  for (int c = 0; c < D; ++c) {
    /* Sequence 0 (token 0, slot 0): window = state0[0], state0[1], x0. */
    double want = silu(bias[c] + w[c * 3] * st0[0 * 2 + c] + w[c * 3 + 1] * st0[1 * 2 + c] + w[c * 3 + 2] * x[c]);
    CHECK(fabs(out[c] - want) < 1e-12, "ref conv seq 0 ch %d: %g vs %g", c, out[c], want);
    /* New state of slot 0: [old state[1], x0] (shifted by one token). */
    CHECK(state[0 * 2 + c] == st0[1 * 2 + c] && state[1 * 2 + c] == x[c], "ref conv slot 0 state ch %d", c);
    /* Sequence 1 (tokens 1..4, slot -1): token 2 reads zeros before the sequence start, then x1, x2. */
    want = silu(bias[c] + w[c * 3 + 1] * x[1 * 2 + c] + w[c * 3 + 2] * x[2 * 2 + c]);
    CHECK(fabs(out[2 * 2 + c] - want) < 1e-12, "ref conv seq 1 token 2 ch %d", c);
    want = silu(bias[c] + w[c * 3] * x[2 * 2 + c] + w[c * 3 + 1] * x[3 * 2 + c] + w[c * 3 + 2] * x[4 * 2 + c]);
    CHECK(fabs(out[4 * 2 + c] - want) < 1e-12, "ref conv seq 1 token 4 ch %d", c);
    /* Sequence 2 (empty, slot 1): state unchanged. Sequence 3 (slot 2): state = last two inputs. */
    CHECK(state[(1 * 2 + 0) * 2 + c] == st0[(1 * 2 + 0) * 2 + c] && state[(1 * 2 + 1) * 2 + c] == st0[(1 * 2 + 1) * 2 + c],
          "ref conv empty sequence changed its slot");
    CHECK(state[(2 * 2 + 0) * 2 + c] == x[5 * 2 + c] && state[(2 * 2 + 1) * 2 + c] == x[6 * 2 + c], "ref conv slot 2 state");
  }
  /* gated rmsnorm: x = [3, 4], mean(x^2) = 12.5. */
  {
    double gx[2] = {3, 4}, gz[2] = {0.0, 2.0}, gw[2] = {1.0, 0.5}, go[2];
    gdn_ref_gated_rmsnorm(1, 1, 2, gx, gz, gw, 1e-6, go);
    double r = 1.0 / sqrt(12.5 + 1e-6);
    CHECK(go[0] == 0.0, "rmsnorm: silu(0) gate gives %g", go[0]);
    CHECK(fabs(go[1] - 4 * r * 0.5 * silu(2.0)) < 1e-12, "rmsnorm: %g", go[1]);
  }
  /* linear: [1 2; 3 4] x [5 6; 7 8]^T + [1, -1], then accumulate. */
  {
    double lx[4] = {1, 2, 3, 4}, lw[4] = {5, 6, 7, 8}, lb[2] = {1, -1}, ly[4];
    gdn_ref_linear(2, 2, 2, lx, lw, lb, 0, ly);
    CHECK(ly[0] == 18 && ly[1] == 22 && ly[2] == 40 && ly[3] == 52, "linear: %g %g %g %g", ly[0], ly[1], ly[2], ly[3]);
    gdn_ref_linear(2, 2, 2, lx, lw, NULL, 1, ly);
    CHECK(ly[0] == 35 && ly[3] == 105, "linear accumulate: %g %g", ly[0], ly[3]);
  }
}

int main(void) {
  test_conv1d();
  test_rmsnorm();
  test_linear();
  test_allreduce();
  test_reference();
  return gdn_test_finish("test_layer_ops_api");
}
