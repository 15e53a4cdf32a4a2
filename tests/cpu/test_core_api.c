/* Host validation and launch-config planning of the core operators (no device needed):
 * bad arguments give the right gdn_status and a message naming the argument; configs
 * that do not fit the device are refused at plan time, never at launch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/chunk_intra.h"
#include "gdn/prologue.h"
#include "test_util.h"

/* Fake, well-aligned "device" addresses 256 MiB apart: validation never dereferences them. */
static void *at(size_t slot) { return (void *)(uintptr_t)(((uintptr_t)1 << 40) + ((uintptr_t)slot << 28)); }


static gdn_batch fake_batch(int max_seqs, int max_tokens) {
  gdn_batch b;
  memset(&b, 0, sizeof b); /* no segments, checkpoints or separate output rows */
  b.cu_seqlens = (const int32_t *)at(1);
  b.slots = (const int32_t *)at(2);
  b.chunk_offsets = (const int32_t *)at(3);
  b.chunk_seq = (const int32_t *)at(4);
  b.header = (const gdn_batch_header *)at(5);
  b.max_seqs = max_seqs;
  b.max_tokens = max_tokens;
  b.max_chunks = gdn_batch_max_chunks(max_tokens, max_seqs);
  return b;
}

static gdn_chunk_delta_h_args delta_h_args(int T, int Hk, int Hv, int K, int V) {
  gdn_chunk_delta_h_args a;
  memset(&a, 0, sizeof a);
  a.batch = fake_batch(4, T);
  a.k = gdn_tensor_3d(at(10), GDN_DTYPE_BF16, T, Hk, K);
  a.w = gdn_tensor_3d(at(20), GDN_DTYPE_BF16, T, Hv, K);
  a.u = gdn_tensor_3d(at(30), GDN_DTYPE_BF16, T, Hv, V);
  a.g = gdn_tensor_2d(at(40), GDN_DTYPE_F32, T, Hv);
  a.state = gdn_tensor_4d(at(50), GDN_DTYPE_F32, 8, Hv, V, K);
  a.h = gdn_tensor_4d(at(100), GDN_DTYPE_BF16, a.batch.max_chunks, Hv, K, V);
  a.v_new = gdn_tensor_3d(at(200), GDN_DTYPE_BF16, T, Hv, V);
  return a;
}

static void test_delta_h_validation(void) {
  gdn_chunk_delta_h_args a = delta_h_args(256, 2, 4, 128, 128);
  CHECK_OK(gdn_chunk_delta_h_validate(&a));
  gdn_chunk_delta_h_args b = delta_h_args(256, 2, 4, 96, 128);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_UNSUPPORTED, "K = 96");
  b = a;
  b.k = gdn_tensor_3d(at(10), GDN_DTYPE_BF16, 256, 3, 128);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "k:");
  b = a;
  b.u.dtype = GDN_DTYPE_F16;
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "u:");
  b = a;
  b.w.strides[0] = 4 * 128 + 3; /* rows no longer 16-byte aligned */
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "w:");
  b = a;
  b.h.data = at(20); /* h aliases w */
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "overlaps");
  b = a;
  b.h = gdn_tensor_4d(at(100), GDN_DTYPE_BF16, 2, 4, 128, 128); /* fewer chunks than the batch can have */
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "h:");
  b = a;
  b.batch.chunk_seq = NULL;
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "gdn_batch_setup");
  b = a;
  b.state = gdn_tensor_4d(at(50), GDN_DTYPE_F32, 8, 4, 128, 64);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_validate(&b), GDN_ERROR_INVALID_ARGUMENT, "state:");
  CHECK_STATUS(gdn_chunk_delta_h_validate(NULL), GDN_ERROR_INVALID_ARGUMENT);
}

/* The Hopper planner's shape rules (measured on an H200, bench/NOTES.md), where this build has
 * the warpgroup kernels: chunk_delta_h for a TP4 rank (Hk 4, Hv 8) at 8 x 8192 tokens (64
 * pairs) on the key-row scan at BV 64 (one CTA a 64-column block fits the SMs, 2 stages); at
 * 4 x 8192 (32 pairs) at BV 32; at BV 128 for 64 short sequences and from 3/4 of the SMs'
 * pairs up (TP1 4 x 2048, 8 x 8192); the row groups without sm_90a kernels. The folded
 * forward at 64 pairs BV 64, at 8 x 8192 TP1 (256 pairs) BV 128. */
static gdn_chunk_delta_h_args delta_h_batch(int seqs, int T, int Hk, int Hv) {
  gdn_chunk_delta_h_args a = delta_h_args(T, Hk, Hv, 128, 128);
  a.batch = fake_batch(seqs, T);
  a.h = gdn_tensor_4d(at(100), GDN_DTYPE_BF16, a.batch.max_chunks, Hv, 128, 128);
  return a;
}
static void test_hopper_scan_defaults(void) {
  static const char *knobs[] = {"GDN_CHUNK_H_BV", "GDN_CHUNK_H_NUM_WARPS", "GDN_CHUNK_H_NUM_STAGES",
                                "GDN_CHUNK_H_COLUMN_SPLIT", "GDN_CHUNK_H_WGMMA", "GDN_CHUNK_H_KEY_ROWS"};
  for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; ++i) unsetenv(knobs[i]); /* the defaults */
  gdn_device_info dev = gdn_device_info_hopper();
  gdn_scan_config cfg;
  gdn_chunk_delta_h_args a = delta_h_batch(4, 32768, 4, 8);
  setenv("GDN_CHUNK_H_KEY_ROWS", "1", 1); /* succeeds where this build has the sm_90a kernels */
  const int built = gdn_chunk_delta_h_plan(&a, &dev, &cfg) == GDN_SUCCESS;
  setenv("GDN_CHUNK_H_WGMMA", "0", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_INVALID_ARGUMENT,
                   "GDN_CHUNK_H_WGMMA=0");
  unsetenv("GDN_CHUNK_H_WGMMA");
  unsetenv("GDN_CHUNK_H_KEY_ROWS");
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  if (!built) { /* no sm_90a kernels in this build */
    CHECK(cfg.column_split == 0, "TP4 4 x 8192 delta_h without sm_90a kernels: col %d", cfg.column_split);
    return;
  }
  CHECK(cfg.bv == 32 && cfg.num_warps == 4 && cfg.num_stages == 2, "TP4 4 x 8192 delta_h: BV %d warps %d stages %d",
        cfg.bv, cfg.num_warps, cfg.num_stages);
  a = delta_h_batch(8, 65536, 4, 8);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 3 && cfg.bv == 64 && cfg.num_warps == 8 && cfg.num_stages == 2,
        "TP4 8 x 8192 delta_h: col %d BV %d warps %d stages %d", cfg.column_split, cfg.bv, cfg.num_warps, cfg.num_stages);
  a = delta_h_batch(64, 8192, 16, 32); /* 64 x 128 tokens: 2 chunks a sequence */
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 3 && cfg.bv == 128 && cfg.num_warps == 16, "TP1 64 x 128 delta_h: col %d BV %d warps %d",
        cfg.column_split, cfg.bv, cfg.num_warps);
  a = delta_h_batch(4, 8192, 16, 32); /* TP1 4 x 2048: 128 pairs, one CTA each fills the SMs */
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 3 && cfg.bv == 128, "TP1 4 x 2048 delta_h: col %d BV %d", cfg.column_split, cfg.bv);
  a = delta_h_batch(8, 65536, 16, 32); /* TP1 8 x 8192: 256 pairs, two waves of one CTA each */
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 3 && cfg.bv == 128 && cfg.num_stages == 2, "TP1 8 x 8192 delta_h: col %d BV %d stages %d",
        cfg.column_split, cfg.bv, cfg.num_stages);
  /* its context parallelism: 16 chains of 32 columns (one sequence, Hv 4) cut, TP4's 32 not */
  gdn_batch_setup_args sa;
  memset(&sa, 0, sizeof sa);
  sa.max_seqs = 1;
  sa.max_tokens = 8192;
  CHECK(gdn_chunk_delta_h_context_parallel(&sa, 4, 128, 128, &dev) == 0 && sa.cp_min_chunks > 0,
        "Hv 4, 1 x 8192 delta_h: not segmented");
  memset(&sa, 0, sizeof sa);
  sa.max_seqs = 1;
  sa.max_tokens = 8192;
  CHECK(gdn_chunk_delta_h_context_parallel(&sa, 8, 128, 128, &dev) == -1 && sa.cp_min_chunks == 0,
        "TP4 1 x 8192 delta_h: segmented");
  memset(&sa, 0, sizeof sa); /* V = 256: 256 chains, more than the key rows take: the prefill's policy cuts */
  sa.max_seqs = 1;
  sa.max_tokens = 32768;
  CHECK(gdn_chunk_delta_h_context_parallel(&sa, 32, 128, 256, &dev) == 0 && sa.cp_min_chunks > 0,
        "TP1 1 x 32768 V 256 delta_h: not segmented");
  const int pairs[2][2] = {{8, 8}, {8, 32}}; /* (sequences, Hv): 64 and 256 pairs */
  for (int i = 0; i < 2; ++i) {
    gdn_chunk_delta_h_args d = delta_h_batch(pairs[i][0], 65536, pairs[i][1] / 2, pairs[i][1]);
    gdn_chunk_scan_o_args f;
    memset(&f, 0, sizeof f);
    f.batch = d.batch;
    f.q = d.k;
    f.k = d.k;
    f.g = d.g;
    f.state = d.state;
    f.v = gdn_tensor_3d(at(90), GDN_DTYPE_BF16, 65536, pairs[i][1], 128);
    f.tu = gdn_tensor_3d(at(110), GDN_DTYPE_BF16, 65536, pairs[i][1], 64);
    f.aqk = gdn_tensor_3d(at(120), GDN_DTYPE_BF16, 65536, pairs[i][1], 64);
    f.o = gdn_tensor_3d(at(130), GDN_DTYPE_BF16, 65536, pairs[i][1], 128);
    f.scale = 0.125f;
    CHECK_OK(gdn_chunk_scan_o_plan(&f, &dev, &cfg));
    CHECK(cfg.o_mode == 2 && cfg.column_split == 2 && cfg.bv == (i == 0 ? 64 : 128),
          "folded forward at %d pairs: o_mode %d col %d BV %d", pairs[i][0] * pairs[i][1], cfg.o_mode, cfg.column_split,
          cfg.bv);
  }
}

static void test_scan_configs(void) {
  gdn_device_info dev = gdn_device_info_hopper();
  gdn_scan_config cfg;
  gdn_chunk_delta_h_args a = delta_h_args(8192, 16, 32, 128, 128);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.smem_bytes <= dev.smem_per_block_optin && cfg.num_stages >= 2, "default config: %zu bytes, %d stages",
        cfg.smem_bytes, cfg.num_stages);
  /* K = V = 256 with 4 stages cannot fit in 227 KB */
  gdn_chunk_delta_h_args big = delta_h_args(8192, 2, 2, 256, 256);
  setenv("GDN_CHUNK_H_NUM_STAGES", "4", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&big, &dev, &cfg), GDN_ERROR_UNSUPPORTED, "shared memory");
  unsetenv("GDN_CHUNK_H_NUM_STAGES");
  CHECK_OK(gdn_chunk_delta_h_plan(&big, &dev, &cfg));
  CHECK(cfg.smem_bytes <= dev.smem_per_block_optin, "K=V=256 default config needs %zu bytes", cfg.smem_bytes);
  setenv("GDN_CHUNK_H_BV", "48", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_UNSUPPORTED, "BV=48");
  setenv("GDN_CHUNK_H_BV", "abc", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_BV");
  setenv("GDN_CHUNK_H_BV", "64", 1);
  setenv("GDN_CHUNK_H_NUM_WARPS", "8", 1);
  setenv("GDN_CHUNK_H_NUM_STAGES", "2", 1);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.bv == 64 && cfg.num_warps == 8 && cfg.num_stages == 2, "override not applied: %d %d %d", cfg.bv,
        cfg.num_warps, cfg.num_stages);
  /* column-split kernel: one warp per 16 columns, K <= 128 only */
  setenv("GDN_CHUNK_H_BV", "128", 1);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.bv == 128 && cfg.num_warps == 8, "BV=128 default warps: %d", cfg.num_warps);
  setenv("GDN_CHUNK_H_NUM_WARPS", "4", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_UNSUPPORTED, "BV=128 with 4 warps");
  setenv("GDN_CHUNK_H_NUM_WARPS", "8", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&big, &dev, &cfg), GDN_ERROR_UNSUPPORTED, "K=256");
  unsetenv("GDN_CHUNK_H_BV");
  unsetenv("GDN_CHUNK_H_NUM_WARPS");
  /* the kernel override: 0 / 1 only; the column split does not build K = 256 */
  setenv("GDN_CHUNK_H_COLUMN_SPLIT", "2", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_COLUMN_SPLIT");
  setenv("GDN_CHUNK_H_COLUMN_SPLIT", "1", 1);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split >= 1 && cfg.bv == 16 * cfg.num_warps, "column split override: col %d BV %d warps %d",
        cfg.column_split, cfg.bv, cfg.num_warps);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&big, &dev, &cfg), GDN_ERROR_UNSUPPORTED, "K=256");
  /* its warpgroup form (column_split 2): compute capability 9.0, K = 128, BV 64 / 128 */
  setenv("GDN_CHUNK_H_BV", "64", 1);
  setenv("GDN_CHUNK_H_WGMMA", "0", 1);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 1, "GDN_CHUNK_H_WGMMA=0: col %d", cfg.column_split);
  setenv("GDN_CHUNK_H_WGMMA", "1", 1);
  {
    const gdn_status st = gdn_chunk_delta_h_plan(&a, &dev, &cfg);
    if (st == GDN_SUCCESS) /* this build has the sm_90a kernels */
      CHECK(cfg.column_split == 2 && cfg.bv == 64 && cfg.num_warps == 4 && cfg.smem_bytes <= dev.smem_per_block_optin,
            "warpgroup plan: col %d BV %d warps %d smem %zu", cfg.column_split, cfg.bv, cfg.num_warps, cfg.smem_bytes);
    else
      CHECK(st == GDN_ERROR_UNSUPPORTED && strstr(gdn_get_last_error(), "GDN_CHUNK_H_WGMMA") != NULL,
            "GDN_CHUNK_H_WGMMA=1 without the kernels: %s", gdn_get_last_error());
    gdn_device_info ampere = dev;
    ampere.cc_major = 8;
    ampere.cc_minor = 0;
    CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &ampere, &cfg), GDN_ERROR_UNSUPPORTED, "GDN_CHUNK_H_WGMMA");
    unsetenv("GDN_CHUNK_H_WGMMA");
    CHECK_OK(gdn_chunk_delta_h_plan(&a, &ampere, &cfg));
    CHECK(cfg.column_split == 1, "compute capability 8.0 got col %d", cfg.column_split);
    ampere.cc_major = 9;
    ampere.cc_minor = 1; /* sm_90a code runs on 9.0 only */
    CHECK_OK(gdn_chunk_delta_h_plan(&a, &ampere, &cfg));
    CHECK(cfg.column_split == 1, "compute capability 9.1 got col %d", cfg.column_split);
  }
  setenv("GDN_CHUNK_H_WGMMA", "3", 1);
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &dev, &cfg), GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_WGMMA");
  unsetenv("GDN_CHUNK_H_WGMMA");
  unsetenv("GDN_CHUNK_H_BV");
  setenv("GDN_CHUNK_H_COLUMN_SPLIT", "0", 1);
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &dev, &cfg));
  CHECK(cfg.column_split == 0, "row-group override not applied");
  unsetenv("GDN_CHUNK_H_COLUMN_SPLIT");
  unsetenv("GDN_CHUNK_H_BV");
  unsetenv("GDN_CHUNK_H_NUM_WARPS");
  unsetenv("GDN_CHUNK_H_NUM_STAGES");
  /* a device with less shared memory gets fewer stages, never a failing launch */
  gdn_device_info small = dev;
  small.smem_per_block_optin = 100 * 1024;
  CHECK_OK(gdn_chunk_delta_h_plan(&a, &small, &cfg));
  CHECK(cfg.smem_bytes <= small.smem_per_block_optin, "config exceeds the small device: %zu", cfg.smem_bytes);
  small.smem_per_block_optin = 16 * 1024;
  CHECK_FAIL_NAMES(gdn_chunk_delta_h_plan(&a, &small, &cfg), GDN_ERROR_UNSUPPORTED, "shared memory");
}

static void test_scan_o_and_intra(void) {
  gdn_chunk_scan_o_args s;
  memset(&s, 0, sizeof s);
  s.batch = fake_batch(4, 256);
  s.q = gdn_tensor_3d(at(10), GDN_DTYPE_BF16, 256, 2, 128);
  s.k = gdn_tensor_3d(at(20), GDN_DTYPE_BF16, 256, 2, 128);
  s.w = gdn_tensor_3d(at(30), GDN_DTYPE_BF16, 256, 4, 128);
  s.u = gdn_tensor_3d(at(40), GDN_DTYPE_BF16, 256, 4, 128);
  s.o = gdn_tensor_3d(at(50), GDN_DTYPE_BF16, 256, 4, 128);
  s.scale = 0.088f;
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&s), GDN_ERROR_INVALID_ARGUMENT, "aqk");
  s.aqk = gdn_tensor_3d(at(70), GDN_DTYPE_BF16, 256, 4, 64);
  CHECK_OK(gdn_chunk_scan_o_validate(&s));
  gdn_chunk_scan_o_args t = s;
  t.aqk = gdn_tensor_3d(at(70), GDN_DTYPE_F32, 256, 4, 64);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "aqk");
  t = s;
  t.qf = gdn_tensor_2d(at(80), GDN_DTYPE_F32, 256, 3);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "qf");
  t = s;
  t.o.data = at(10); /* o aliases q */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "overlaps");

  /* the folded WY form: v + tu instead of w + u */
  gdn_chunk_scan_o_args f = s;
  f.w = gdn_tensor_none();
  f.u = gdn_tensor_none();
  f.v = gdn_tensor_3d(at(90), GDN_DTYPE_BF16, 256, 4, 128);
  f.tu = gdn_tensor_3d(at(100), GDN_DTYPE_BF16, 256, 4, 64);
  CHECK_OK(gdn_chunk_scan_o_validate(&f));
  gdn_device_info hop = gdn_device_info_hopper();
  gdn_scan_config fc;
  CHECK_OK(gdn_chunk_scan_o_plan(&f, &hop, &fc));
  CHECK(fc.o_mode == 2 && fc.column_split >= 1 && fc.bv == 16 * fc.num_warps &&
            fc.smem_bytes <= hop.smem_per_block_optin,
        "folded plan: o_mode %d col %d BV %d warps %d smem %zu", fc.o_mode, fc.column_split, fc.bv, fc.num_warps,
        fc.smem_bytes);
  setenv("GDN_CHUNK_H_COLUMN_SPLIT", "0", 1);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&f, &hop, &fc), GDN_ERROR_UNSUPPORTED, "column-split");
  unsetenv("GDN_CHUNK_H_COLUMN_SPLIT");
  /* the output norm (gated RMSNorm with z): folded form, z like o, a weight [V] */
  gdn_chunk_scan_o_args nf = f;
  nf.norm_z = gdn_tensor_3d(at(140), GDN_DTYPE_BF16, 256, 4, 128);
  nf.norm_weight = gdn_tensor_1d(at(150), GDN_DTYPE_F32, 128);
  CHECK_OK(gdn_chunk_scan_o_validate(&nf));
  t = nf;
  t.norm_weight = gdn_tensor_none();
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_weight");
  t = nf;
  t.norm_z = gdn_tensor_none();
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_weight");
  t = nf;
  t.norm_z.dtype = GDN_DTYPE_F16; /* not o's dtype */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_z");
  t = nf;
  t.norm_weight = gdn_tensor_1d(at(150), GDN_DTYPE_F32, 64);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_weight");
  t = nf;
  t.norm_eps = -1e-6;
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_eps");
  t.norm_eps = 1e-40; /* subnormal in fp32 */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_eps");
  t = nf;
  t.o.data = at(140); /* o over z */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "norm_z");
  t = s; /* w and u: not the folded form */
  t.norm_z = nf.norm_z;
  t.norm_weight = nf.norm_weight;
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_UNSUPPORTED, "folded");
  {
    gdn_device_info ampere = hop;
    ampere.cc_major = 8;
    CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&nf, &ampere, &fc), GDN_ERROR_UNSUPPORTED, "norm_z");
    const gdn_status ps = gdn_chunk_scan_o_plan(&nf, &hop, &fc);
    if (ps == GDN_SUCCESS) /* a build with the sm_90a kernels: whole rows on the warpgroup kernel */
      CHECK(fc.o_mode == 4 && fc.column_split == 2 && fc.bv == 128 && fc.num_warps == 8 &&
                fc.smem_bytes <= hop.smem_per_block_optin,
            "output-norm plan: o_mode %d col %d BV %d warps %d smem %zu", fc.o_mode, fc.column_split, fc.bv,
            fc.num_warps, fc.smem_bytes);
    else
      CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&nf, &hop, &fc), GDN_ERROR_UNSUPPORTED, "norm_z");
    setenv("GDN_CHUNK_H_BV", "64", 1);
    CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&nf, &hop, &fc), GDN_ERROR_UNSUPPORTED, "norm_z");
    unsetenv("GDN_CHUNK_H_BV");
  }
  t = f;
  t.w = s.w; /* both forms */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "not both");
  t = f;
  t.tu = gdn_tensor_3d(at(100), GDN_DTYPE_BF16, 256, 4, 128); /* tu is 64 wide */
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "tu");
  t = f;
  t.gk = gdn_tensor_3d(at(110), GDN_DTYPE_F32, 256, 4, 128);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_UNSUPPORTED, "gk");
  t = f;
  t.q = gdn_tensor_3d(at(10), GDN_DTYPE_BF16, 256, 2, 256);
  t.k = gdn_tensor_3d(at(20), GDN_DTYPE_BF16, 256, 2, 256);
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_UNSUPPORTED, "K <= 128");
  t = f;
  t.v = gdn_tensor_none();
  CHECK_FAIL_NAMES(gdn_chunk_scan_o_validate(&t), GDN_ERROR_INVALID_ARGUMENT, "v");

  gdn_chunk_intra_args ia;
  memset(&ia, 0, sizeof ia);
  ia.mode = GDN_INTRA_KKT_SOLVE;
  ia.batch = fake_batch(4, 256);
  ia.k = gdn_tensor_3d(at(10), GDN_DTYPE_BF16, 256, 2, 128);
  ia.beta = gdn_tensor_2d(at(20), GDN_DTYPE_F32, 256, 4);
  ia.A_inv = gdn_tensor_3d(at(30), GDN_DTYPE_F32, 256, 4, 64);
  CHECK_OK(gdn_chunk_intra_validate(&ia));
  gdn_chunk_intra_args ib = ia;
  ib.w = gdn_tensor_3d(at(40), GDN_DTYPE_BF16, 256, 4, 128);
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&ib), GDN_ERROR_INVALID_ARGUMENT, "w/u");
  ib = ia;
  ib.mode = GDN_INTRA_WY;
  ib.A_inv = gdn_tensor_none();
  ib.v = gdn_tensor_3d(at(50), GDN_DTYPE_BF16, 256, 4, 128);
  ib.w = gdn_tensor_3d(at(60), GDN_DTYPE_BF16, 256, 4, 128);
  ib.u = gdn_tensor_3d(at(70), GDN_DTYPE_BF16, 256, 4, 128);
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&ib), GDN_ERROR_INVALID_ARGUMENT, "A_inv");
  ib.mode = (gdn_intra_mode)7;
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&ib), GDN_ERROR_INVALID_ARGUMENT, "mode");
  ib = ia;
  ib.k = gdn_tensor_3d(at(10), GDN_DTYPE_F32, 256, 2, 128);
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&ib), GDN_ERROR_INVALID_ARGUMENT, "k:");
  gdn_device_info dev = gdn_device_info_hopper();
  gdn_chunk_intra_config icfg;
  CHECK_OK(gdn_chunk_intra_plan(&ia, &dev, &icfg));
  CHECK(icfg.per_key == 0 && icfg.smem_bytes <= dev.smem_per_block_optin, "intra config: per_key %d, %zu bytes",
        icfg.per_key, icfg.smem_bytes);

  /* FUSED with only tu: no v needed, and smaller than with w / u (four CTAs per SM at K = 128) */
  gdn_chunk_intra_args fu = ia;
  fu.mode = GDN_INTRA_FUSED;
  fu.A_inv = gdn_tensor_none();
  fu.tu = gdn_tensor_3d(at(80), GDN_DTYPE_BF16, 256, 4, 64);
  CHECK_OK(gdn_chunk_intra_validate(&fu));
  gdn_chunk_intra_config tcfg, wcfg;
  CHECK_OK(gdn_chunk_intra_plan(&fu, &dev, &tcfg));
  gdn_chunk_intra_args fw = fu;
  fw.tu = gdn_tensor_none();
  fw.v = gdn_tensor_3d(at(50), GDN_DTYPE_BF16, 256, 4, 128);
  fw.w = gdn_tensor_3d(at(60), GDN_DTYPE_BF16, 256, 4, 128);
  fw.u = gdn_tensor_3d(at(70), GDN_DTYPE_BF16, 256, 4, 128);
  CHECK_OK(gdn_chunk_intra_plan(&fw, &dev, &wcfg));
  CHECK(4 * (tcfg.smem_bytes + 1024) <= 228 * 1024 && tcfg.smem_bytes < wcfg.smem_bytes,
        "tu-only intra smem %zu (w/u: %zu)", tcfg.smem_bytes, wcfg.smem_bytes);
  /* with aqk (so q) too, the value heads sharing a q / k head go in one CTA */
  fw = fu;
  fw.q = gdn_tensor_3d(at(95), GDN_DTYPE_BF16, 256, 2, 128);
  fw.aqk = gdn_tensor_3d(at(105), GDN_DTYPE_BF16, 256, 4, 64);
  CHECK_OK(gdn_chunk_intra_plan(&fw, &dev, &tcfg));
  CHECK(tcfg.folded && tcfg.heads_per_cta == 2 && 4 * (tcfg.smem_bytes + 1024) <= 228 * 1024,
        "grouped intra: folded %d, %d heads per CTA, %zu bytes", tcfg.folded, tcfg.heads_per_cta, tcfg.smem_bytes);
  CHECK(!wcfg.folded && wcfg.heads_per_cta == 1, "w/u intra: folded %d, %d heads per CTA", wcfg.folded,
        wcfg.heads_per_cta);
  /* no GVA: the folded kernel with one value head per CTA */
  fw.k = gdn_tensor_3d(at(110), GDN_DTYPE_BF16, 256, 4, 128);
  fw.q = gdn_tensor_3d(at(120), GDN_DTYPE_BF16, 256, 4, 128);
  CHECK_OK(gdn_chunk_intra_plan(&fw, &dev, &tcfg));
  CHECK(tcfg.folded && tcfg.heads_per_cta == 1, "folded intra without GVA: folded %d, %d heads per CTA", tcfg.folded,
        tcfg.heads_per_cta);
  fw = fu;
  fw.tu = gdn_tensor_3d(at(80), GDN_DTYPE_F32, 256, 4, 64);
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&fw), GDN_ERROR_INVALID_ARGUMENT, "tu");
  fw = fu;
  fw.gk = gdn_tensor_3d(at(90), GDN_DTYPE_F32, 256, 4, 128);
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&fw), GDN_ERROR_UNSUPPORTED, "tu");
  fw = fu;
  fw.mode = GDN_INTRA_KKT_SOLVE;
  fw.A_inv = ia.A_inv;
  CHECK_FAIL_NAMES(gdn_chunk_intra_validate(&fw), GDN_ERROR_INVALID_ARGUMENT, "tu");
}

static void test_prologue_and_batch(void) {
  gdn_prologue_args p;
  memset(&p, 0, sizeof p);
  p.batch = fake_batch(4, 256);
  p.b = gdn_tensor_2d(at(10), GDN_DTYPE_BF16, 256, 4);
  CHECK_FAIL_NAMES(gdn_prologue_validate(&p), GDN_ERROR_INVALID_ARGUMENT, "no output");
  p.beta = gdn_tensor_2d(at(20), GDN_DTYPE_F32, 256, 4);
  CHECK_OK(gdn_prologue_validate(&p));
  p.use_g = 1;
  CHECK_FAIL_NAMES(gdn_prologue_validate(&p), GDN_ERROR_INVALID_ARGUMENT, "a:");
  p.a = gdn_tensor_2d(at(30), GDN_DTYPE_BF16, 256, 4);
  p.A_log = gdn_tensor_1d(at(40), GDN_DTYPE_F32, 4);
  p.dt_bias = gdn_tensor_1d(at(41), GDN_DTYPE_F32, 5);
  CHECK_FAIL_NAMES(gdn_prologue_validate(&p), GDN_ERROR_INVALID_ARGUMENT, "dt_bias");

  gdn_batch_setup_args s;
  memset(&s, 0, sizeof s);
  s.cu_seqlens = (const int32_t *)at(1);
  s.num_seqs = 3;
  s.max_seqs = 4;
  s.max_tokens = 1000;
  s.num_slots = 10;
  s.workspace = at(8);
  s.workspace_bytes = gdn_batch_workspace_bytes(4, 1000, 10) - 1;
  CHECK_FAIL_NAMES(gdn_batch_setup_validate(&s), GDN_ERROR_INVALID_ARGUMENT, "workspace_bytes");
  s.workspace_bytes += 1;
  CHECK_OK(gdn_batch_setup_validate(&s));
  s.num_seqs = 5;
  CHECK_FAIL_NAMES(gdn_batch_setup_validate(&s), GDN_ERROR_INVALID_ARGUMENT, "num_seqs");
  gdn_batch b;
  s.num_seqs = 3;
  CHECK_OK(gdn_batch_setup_view(&s, &b));
  CHECK(b.max_chunks == gdn_batch_max_chunks(1000, 4), "view max_chunks %d", b.max_chunks);
  for (int code = 0; code <= 9; ++code)
    CHECK(strlen(gdn_batch_error_string(code)) > 4, "batch error %d has no description", code);
}

int main(void) {
  test_delta_h_validation();
  test_scan_configs();
  test_hopper_scan_defaults();
  test_scan_o_and_intra();
  test_prologue_and_batch();
  return gdn_test_finish("test_core_api");
}
