/* The gated RMSNorm of the scan's output (Qwen3-Next RMSNormGated, norm before the gate),
 * done by the warpgroup kernel's producer where one CTA owns whole rows of o (BV = V):
 *   out[t, :] = x[t, :] rsqrt(mean(x[t, :]^2) + eps) w[:] silu(z[t, :])
 * x is the 16-bit o tile the compute warps staged in the stage's u block (the value a
 * separate norm, ops/gated_rmsnorm, would read back from memory) and the math is that op's
 * (fp32, the same order), so fusing it changes only the sum's order. It saves the round
 * trip of o (a write and a read of [T, Hv, V]) and the norm's launch.
 *
 * Why the producer: done by the compute warps at the end of every chunk (all of them
 * synchronized on the staged tile), the epilogue sat on the chain of dependent chunks and
 * cost more than the separate norm saved (H200, TP1 8 x 8192: scan 648 -> 1200 us). The
 * producer normalizes chunk c when the compute warps release its stage, before it loads
 * chunk c + stages there, so the work runs beside the next chunks' products.
 *
 * Producer thread i owns 16-byte unit i % (V / 8) of rows i / (V / 8) + k NT / (V / 8): a
 * row's units are one half-warp, which reduces the sum of squares by four shuffles. z comes
 * a chunk ahead into one [64][V] tile, by the copy engine (128-byte-swizzled 64-column
 * slabs, as the map of the other tiles lands them) or, without its map, by cp.async into the
 * same layout. */
#ifndef GDN_SCAN_NORM_CUH
#define GDN_SCAN_NORM_CUH

#include "core/elem.cuh"
#include "core/mma.cuh"
#include "core/tma.cuh"
#include "ops/chunk_scan/scan_params.h"

template <int V, int NT> struct gdn_scan_norm_map {
  static constexpr int units = V / 8, rows_per_pass = NT / units, passes = 64 / rows_per_pass;
  static_assert(units == 16 && rows_per_pass * units == NT && passes * rows_per_pass == 64,
                "a row's 16-byte units are one half-warp");
};

/* Byte offset of 16-byte unit u of row r in the z tile: 64-column slabs of 64 rows x 128
 * bytes, units swizzled by the row's position in its 8-row group (SWIZZLE_128B). */
__device__ __forceinline__ int gdn_scan_norm_z_off(int r, int u) {
  return (u >> 3) * (64 * 128) + r * 128 + (((u & 7) ^ (r & 7)) << 4);
}

/* The norm weight [V] (any float dtype, strided) into shared memory as fp32, once per CTA. */
template <int V, int NT>
__device__ __forceinline__ void gdn_scan_norm_weights(const gdn_scan_params &p, float *ws, int tid) {
  for (int i = tid; i < V; i += NT) {
    const int64_t off = (int64_t)i * p.nw_s;
    ws[i] = p.nw_dt == GDN_DTYPE_BF16 ? gdn_to_float(((const __nv_bfloat16 *)p.nw)[off])
          : p.nw_dt == GDN_DTYPE_F16  ? gdn_to_float(((const __half *)p.nw)[off])
                                      : ((const float *)p.nw)[off];
  }
}

/* z rows t0 .. t0 + 64 of `head` into zs: thread 0 starts the copy engine (completing on
 * zbar; rows past the tensor arrive as zeros, rows past the chunk are not used), or every
 * thread cp.asyncs its units of rows < L (one commit group). */
template <int V, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_norm_load_z(const gdn_scan_params &p, unsigned char *zs, uint64_t *zbar,
                                                     int head, int t0, int L, int tid) {
  if (p.tma_z) {
    if (tid == 0) {
      gdn_mbar_arrive_expect_tx(zbar, (uint32_t)(64 * V * 2));
#pragma unroll
      for (int x = 0; x < V; x += 64) gdn_tma_load_3d(zs + x * 128, &p.tma_nz, zbar, x, t0, head);
    }
    return;
  }
  typedef gdn_scan_norm_map<V, NT> M;
  const int r0 = tid / M::units, u = tid % M::units;
  const elem *src = (const elem *)p.nz + (int64_t)(t0 + r0) * p.nz_st + (int64_t)head * p.nz_sh + 8 * u;
#pragma unroll
  for (int k = 0; k < M::passes; ++k) {
    const int r = r0 + k * M::rows_per_pass;
    if (r < L) gdn_cp_async16(zs + gdn_scan_norm_z_off(r, u), src + (int64_t)k * M::rows_per_pass * p.nz_st, 16);
  }
  gdn_cp_async_commit();
}

/* out rows t0 .. t0 + L of `head` from the staged o tile os [64][pitch], once z has landed
 * (zbar's use of parity zphase, or this thread's cp.async). */
template <int V, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_norm_store(const gdn_scan_params &p, const elem *os, int pitch,
                                                    const unsigned char *zs, uint64_t *zbar, int zphase,
                                                    const float *ws, int head, int t0, int L, int tid) {
  typedef gdn_scan_norm_map<V, NT> M;
  const int r0 = tid / M::units, u = tid % M::units, c = 8 * u;
  if (p.tma_z) gdn_mbar_wait(zbar, zphase);
  else gdn_cp_async_wait<0>();
  elem *dst = (elem *)p.o + (int64_t)(t0 + r0) * p.o_st + (int64_t)head * p.o_sh + c;
  const int64_t step = (int64_t)M::rows_per_pass * p.o_st;
#pragma unroll 2
  for (int k = 0; k < M::passes; ++k) {
    /* every lane computes (the shuffles take the whole warp); rows >= L are not stored */
    const int r = r0 + k * M::rows_per_pass;
    float x[8], z[8];
    gdn_load_vec<elem, 8>(os + r * pitch + c, x);
    gdn_load_vec<elem, 8>((const elem *)(zs + gdn_scan_norm_z_off(r, u)), z);
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) ss = fmaf(x[i], x[i], ss);
#pragma unroll
    for (int o = M::units / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float rstd = gdn_rsqrt_fast(ss * (1.f / V) + p.n_eps);
    float wv[8];
    gdn_load_vec<float, 4>(ws + c, wv);
    gdn_load_vec<float, 4>(ws + c + 4, wv + 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = x[i] * rstd * wv[i] * gdn_silu_fast(z[i]);
    if (r < L) gdn_store_vec<elem, 8>(dst + k * step, x);
  }
}

#endif
