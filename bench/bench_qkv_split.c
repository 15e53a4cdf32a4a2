/* Fused QKV split vs the unfused framework path vs a plain device-to-device copy of the
 * same bytes, Qwen3-Next TP1 shape (Hk=16, K=128, Hv=32, V=128, D=8192), bf16.
 *   token-major   input [T, D]:                unfused = 3 cudaMemcpy2DAsync (strided rows);
 *   channel-major input [D, T] viewed [T, D]:  unfused = 3 launches of a strided gather kernel
 *                                              (what .contiguous() runs on the split views);
 *   channel-major at T - 1 tokens:             channel rows not 16-byte aligned (the
 *                                              transpose's realigning kernel).
 * GB/s counts bytes read + written (2 * T * D * 2). "% copy" = fused bandwidth / copy bandwidth.
 * The fused and unfused outputs are compared bitwise once per row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "gpu_util.h"
#include "gdn/device.h"
#include "gdn/qkv_split.h"
#include "qkv_split_naive.h"

enum { HK = 16, K = 128, HV = 32, V = 128, D = 2 * HK * K + HV * V };

typedef struct bench_ctx {
  int channel_major;
  int64_t T;
  void *in, *copy_dst;
  void *q, *k, *v;    /* fused outputs */
  void *uq, *uk, *uv; /* unfused outputs */
  gdn_qkv_split_args args;
  gdn_qkv_split_config cfg;
} bench_ctx;

static void run_fused(void *p, cudaStream_t s) {
  bench_ctx *c = (bench_ctx *)p;
  gdn_status st = gdn_qkv_split_launch(&c->args, &c->cfg, s);
  if (st != GDN_SUCCESS) {
    fprintf(stderr, "gdn_qkv_split_launch: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
    exit(1);
  }
}

static void run_unfused(void *p, cudaStream_t s) {
  bench_ctx *c = (bench_ctx *)p;
  const size_t E = 2;
  const int64_t width[3] = {HK * K, HK * K, HV * V}, first[3] = {0, HK * K, 2 * HK * K};
  void *dst[3] = {c->uq, c->uk, c->uv};
  for (int i = 0; i < 3; ++i) {
    if (!c->channel_major) {
      CUDA_OK(cudaMemcpy2DAsync(dst[i], (size_t)width[i] * E, (const char *)c->in + (size_t)first[i] * E, (size_t)D * E,
                                (size_t)width[i] * E, (size_t)c->T, cudaMemcpyDeviceToDevice, s));
    } else {
      /* view [T, width] at channel `first`, strides (1, T) */
      gdn_status st = gdn_qkv_split_naive_copy(dst[i], (const char *)c->in + (size_t)first[i] * (size_t)c->T * E,
                                               c->T, width[i], 1, c->T, (int)E, s);
      if (st != GDN_SUCCESS) {
        fprintf(stderr, "naive copy: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
        exit(1);
      }
    }
  }
}

static void run_copy(void *p, cudaStream_t s) {
  bench_ctx *c = (bench_ctx *)p;
  CUDA_OK(cudaMemcpyAsync(c->copy_dst, c->in, (size_t)c->T * D * 2, cudaMemcpyDeviceToDevice, s));
}

static int same_bytes(const void *a, const void *b, size_t bytes) {
  unsigned char *ha = (unsigned char *)gdn_xmalloc(bytes), *hb = (unsigned char *)gdn_xmalloc(bytes);
  CUDA_OK(cudaMemcpy(ha, a, bytes, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(hb, b, bytes, cudaMemcpyDeviceToHost));
  int same = memcmp(ha, hb, bytes) == 0;
  free(ha);
  free(hb);
  return same;
}

int main(void) {
  gdn_gpu_test_init("bench_qkv_split", 1);
  gdn_device_info dev;
  if (gdn_device_info_query(0, &dev) != GDN_SUCCESS) {
    fprintf(stderr, "device query: %s\n", gdn_get_last_error());
    return 1;
  }
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  const int64_t Ts[4] = {512, 2048, 8192, 32768};
  const int warmup = 5, reps = 50;
  int bad = 0;

  printf("qkv_split bf16, Hk=%d K=%d Hv=%d V=%d (D=%d); times are medians of %d runs\n", HK, K, HV, V, D, reps);
  printf("%-14s %6s %10s %11s %9s %11s %8s %9s   %s\n", "layout", "T", "fused us", "unfused us", "copy us",
         "fused GB/s", "% copy", "speedup", "config");
  static const char *layouts[3] = {"token-major", "channel-major", "channel-odd"};
  for (int cm = 0; cm < 3; ++cm) {
    for (int ti = 0; ti < 4; ++ti) {
      bench_ctx c;
      memset(&c, 0, sizeof c);
      c.channel_major = cm != 0;
      c.T = cm == 2 ? Ts[ti] - 1 : Ts[ti];
      const size_t bytes = (size_t)c.T * D * 2, qb = (size_t)c.T * HK * K * 2, vb = (size_t)c.T * HV * V * 2;
      c.in = gdn_dmalloc(bytes);
      c.copy_dst = gdn_dmalloc(bytes);
      c.q = gdn_dmalloc(qb);
      c.k = gdn_dmalloc(qb);
      c.v = gdn_dmalloc(vb);
      c.uq = gdn_dmalloc(qb);
      c.uk = gdn_dmalloc(qb);
      c.uv = gdn_dmalloc(vb);
      /* distinct bytes everywhere so the comparison means something */
      {
        unsigned short *h = (unsigned short *)gdn_xmalloc(bytes);
        for (size_t i = 0; i < bytes / 2; ++i) h[i] = (unsigned short)(i * 2654435761u >> 7);
        CUDA_OK(cudaMemcpy(c.in, h, bytes, cudaMemcpyHostToDevice));
        free(h);
      }
      c.args.mixed_qkv = gdn_tensor_2d(c.in, GDN_DTYPE_BF16, c.T, D);
      if (c.channel_major) {
        c.args.mixed_qkv.strides[0] = 1;
        c.args.mixed_qkv.strides[1] = c.T;
      }
      c.args.q = gdn_tensor_3d(c.q, GDN_DTYPE_BF16, c.T, HK, K);
      c.args.k = gdn_tensor_3d(c.k, GDN_DTYPE_BF16, c.T, HK, K);
      c.args.v = gdn_tensor_3d(c.v, GDN_DTYPE_BF16, c.T, HV, V);
      gdn_status st = gdn_qkv_split_plan(&c.args, &dev, &c.cfg);
      if (st != GDN_SUCCESS) {
        fprintf(stderr, "plan: %s (%s)\n", gdn_status_string(st), gdn_get_last_error());
        return 1;
      }
      const double fused = gdn_bench_median_us(run_fused, &c, stream, warmup, reps);
      const double unfused = gdn_bench_median_us(run_unfused, &c, stream, warmup, reps);
      const double copy = gdn_bench_median_us(run_copy, &c, stream, warmup, reps);
      CUDA_OK(cudaStreamSynchronize(stream));
      const int same = same_bytes(c.q, c.uq, qb) && same_bytes(c.k, c.uk, qb) && same_bytes(c.v, c.uv, vb);
      bad |= !same;
      const double gbps = 2.0 * (double)bytes / (fused * 1e3);
      printf("%-14s %6lld %10.1f %11.1f %9.1f %11.0f %7.1f%% %8.2fx   vec %d, block %dx%d, tile %dx%d%s\n",
             layouts[cm], (long long)c.T, fused, unfused, copy, gbps, 100.0 * copy / fused,
             unfused / fused, c.cfg.vec_bytes, c.cfg.block_x, c.cfg.block_y, c.cfg.tile_tokens, c.cfg.tile_channels,
             same ? "" : "   MISMATCH vs unfused");
      fflush(stdout);
      void *bufs[8] = {c.in, c.copy_dst, c.q, c.k, c.v, c.uq, c.uk, c.uv};
      for (int i = 0; i < 8; ++i) CUDA_OK(cudaFree(bufs[i]));
    }
  }
  CUDA_OK(cudaStreamDestroy(stream));
  if (bad) fprintf(stderr, "bench_qkv_split: fused output differs from the unfused baseline\n");
  return bad ? 1 : 0;
}
