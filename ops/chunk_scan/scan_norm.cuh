/* The gated RMSNorm of the scan's output (Qwen3-Next RMSNormGated, norm before the gate), in
 * the warpgroup kernel's epilogue where one CTA owns whole rows of o (BV = V):
 *   out[t, :] = x[t, :] rsqrt(mean(x[t, :]^2) + eps) w[:] silu(z[t, :])
 * x is the 16-bit o tile as the warps staged it in the u block, i.e. the value a separate
 * norm (ops/gated_rmsnorm) would read back from memory, and the math is that op's (fp32,
 * the same order), so fusing it changes only the sum's order. It saves the round trip of o
 * (a write and a read of [T, Hv, V]) and the norm's launch.
 *
 * Thread i of the NT compute threads owns the 16-byte unit i % (V / 8) of rows
 * i / (V / 8) + k NT / (V / 8), so a row's units are one half-warp, which reduces the sum of
 * squares by four shuffles. Each thread brings its own z units with cp.async at the top of
 * the chunk (a chunk's work hides the latency; no other thread reads them, so no barrier),
 * into one [64][V] tile. */
#ifndef GDN_SCAN_NORM_CUH
#define GDN_SCAN_NORM_CUH

#include "core/elem.cuh"
#include "core/mma.cuh"
#include "ops/chunk_scan/scan_params.h"

template <int V, int NT> struct gdn_scan_norm_map {
  static constexpr int units = V / 8, rows_per_pass = NT / units, passes = 64 / rows_per_pass;
  static_assert(units == 16 && rows_per_pass * units == NT && passes * rows_per_pass == 64,
                "a row's 16-byte units are one half-warp");
};

/* The norm weight [V] (any float dtype, strided) into shared memory as fp32, once per CTA. */
template <int V, int NT>
__device__ __forceinline__ void gdn_scan_norm_weights(const gdn_scan_params &p, float *ws, int tid) {
  for (int i = tid; i < V; i += NT) ws[i] = gdn_load_float(p.nw, p.nw_dt, (int64_t)i * p.nw_s);
}

/* This thread's z units of rows t0 .. t0 + L of `head` into zs [64][V] (one commit group). */
template <int V, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_norm_load_z(const gdn_scan_params &p, elem *zs, int head, int t0, int L,
                                                     int tid) {
  typedef gdn_scan_norm_map<V, NT> M;
  const int r0 = tid / M::units, c = (tid % M::units) * 8;
  const elem *src = (const elem *)p.nz + (int64_t)(t0 + r0) * p.nz_st + (int64_t)head * p.nz_sh + c;
  const int64_t step = (int64_t)M::rows_per_pass * p.nz_st;
#pragma unroll
  for (int k = 0; k < M::passes; ++k)
    if (r0 + k * M::rows_per_pass < L) gdn_cp_async16(zs + (r0 + k * M::rows_per_pass) * V + c, src + k * step, 16);
  gdn_cp_async_commit();
}

/* out rows t0 .. t0 + L of `head` from the staged o tile os [64][pitch] (every warp's
 * columns staged: the caller synchronizes the NT threads first), zs and ws. */
template <int V, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_norm_store(const gdn_scan_params &p, const elem *os, int pitch, const elem *zs,
                                                    const float *ws, int head, int t0, int L, int tid) {
  typedef gdn_scan_norm_map<V, NT> M;
  const int r0 = tid / M::units, c = (tid % M::units) * 8;
  float w[8];
  gdn_load_vec<float, 4>(ws + c, w);
  gdn_load_vec<float, 4>(ws + c + 4, w + 4);
  gdn_cp_async_wait<0>(); /* this thread's z units */
  elem *dst = (elem *)p.o + (int64_t)(t0 + r0) * p.o_st + (int64_t)head * p.o_sh + c;
  const int64_t step = (int64_t)M::rows_per_pass * p.o_st;
#pragma unroll
  for (int k = 0; k < M::passes; ++k) {
    /* every lane computes (the shuffles take the whole warp); rows >= L are not stored */
    const int r = r0 + k * M::rows_per_pass;
    float x[8], z[8];
    gdn_load_vec<elem, 8>(os + r * pitch + c, x);
    gdn_load_vec<elem, 8>(zs + r * V + c, z);
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) ss = fmaf(x[i], x[i], ss);
#pragma unroll
    for (int o = M::units / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float rstd = gdn_rsqrt_fast(ss * (1.f / V) + p.n_eps);
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = x[i] * rstd * w[i] * gdn_silu_fast(z[i]);
    if (r < L) gdn_store_vec<elem, 8>(dst + k * step, x);
  }
}

#endif
