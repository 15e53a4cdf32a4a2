/* The element vocabulary every kernel shares: bf16 / fp16 / fp32 <-> float, 16-bit pairs,
 * N-element vectors and raw byte vectors, runtime-dtype loads, activations.
 *
 * Two ways to name an element type: by the C++ type (gdn_to_float(x) is overloaded,
 * gdn_from_float<T>(x)), or by the mma tag IS_F16 (0 bf16, 1 fp16: gdn_elem<IS_F16>::T,
 * gdn_to_float<IS_F16>(x), gdn_from_float<IS_F16>(x), gdn_pack2 / gdn_unpack2), which
 * selects the tensor-core instruction in core/mma.cuh. Float -> 16-bit rounds to nearest. */
#ifndef GDN_CORE_ELEM_CUH
#define GDN_CORE_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "gdn/tensor.h"

/* ---- by C++ type */
__device__ __forceinline__ float gdn_to_float(float x) { return x; }
__device__ __forceinline__ float gdn_to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float gdn_to_float(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T gdn_from_float(float x);
template <> __device__ __forceinline__ float gdn_from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 gdn_from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half gdn_from_float<__half>(float x) { return __float2half_rn(x); }

/* ---- by the mma tag */
template <int IS_F16> struct gdn_elem;
template <> struct gdn_elem<0> { typedef __nv_bfloat16 T; typedef __nv_bfloat162 T2; };
template <> struct gdn_elem<1> { typedef __half T; typedef __half2 T2; };

template <int IS_F16> __device__ __forceinline__ float gdn_to_float(typename gdn_elem<IS_F16>::T x) {
  return gdn_to_float(x);
}
template <int IS_F16> __device__ __forceinline__ typename gdn_elem<IS_F16>::T gdn_from_float(float x) {
  return gdn_from_float<typename gdn_elem<IS_F16>::T>(x);
}

/* Two floats as one 32-bit pair of 16-bit elements (lo in the low half), and back. */
template <int IS_F16> __device__ __forceinline__ uint32_t gdn_pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t gdn_pack2<0>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&v);
}
template <> __device__ __forceinline__ uint32_t gdn_pack2<1>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&v);
}
template <int IS_F16> __device__ __forceinline__ float2 gdn_unpack2(uint32_t v);
template <> __device__ __forceinline__ float2 gdn_unpack2<0>(uint32_t v) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&v));
}
template <> __device__ __forceinline__ float2 gdn_unpack2<1>(uint32_t v) {
  return __half22float2(*reinterpret_cast<__half2 *>(&v));
}

/* ---- vectors: N consecutive elements moved in one access (the caller checked the
 * alignment of N * sizeof(T) bytes at plan time). */
template <typename T, int N> struct alignas(sizeof(T) * N) gdn_vec { T v[N]; };

template <typename T, int N> __device__ __forceinline__ void gdn_load_vec(const T *p, float *x) {
  const gdn_vec<T, N> pk = *reinterpret_cast<const gdn_vec<T, N> *>(p);
#pragma unroll
  for (int i = 0; i < N; ++i) x[i] = gdn_to_float(pk.v[i]);
}
template <typename T, int N> __device__ __forceinline__ void gdn_store_vec(T *p, const float *x) {
  gdn_vec<T, N> pk;
#pragma unroll
  for (int i = 0; i < N; ++i) pk.v[i] = gdn_from_float<T>(x[i]);
  *reinterpret_cast<gdn_vec<T, N> *>(p) = pk;
}
/* The N elements at src to dst, bits unchanged. */
template <typename T, int N> __device__ __forceinline__ void gdn_copy_vec(T *dst, const T *src) {
  *reinterpret_cast<gdn_vec<T, N> *>(dst) = *reinterpret_cast<const gdn_vec<T, N> *>(src);
}

/* An unsigned integer type of BYTES bytes (2..16), for copies that only move bits. */
template <int BYTES> struct gdn_bits;
template <> struct gdn_bits<16> { typedef uint4 T; };
template <> struct gdn_bits<8> { typedef uint2 T; };
template <> struct gdn_bits<4> { typedef unsigned int T; };
template <> struct gdn_bits<2> { typedef unsigned short T; };

/* ---- a float from a tensor whose dtype is known only at run time */
__device__ __forceinline__ float gdn_load_float(const void *base, int dtype, int64_t idx) {
  switch (dtype) {
    case GDN_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)base)[idx]);
    case GDN_DTYPE_F16: return __half2float(((const __half *)base)[idx]);
    default: return ((const float *)base)[idx];
  }
}

__host__ __device__ __forceinline__ int gdn_dtype_bytes(int dtype) {
  return dtype == GDN_DTYPE_BF16 || dtype == GDN_DTYPE_F16 ? 2 : dtype == GDN_DTYPE_I64 ? 8 : 4;
}

/* Writing a float to a tensor of any float dtype (round to nearest for 16-bit). */
__device__ __forceinline__ void gdn_store_float(void *base, int dtype, int64_t idx, float x) {
  switch (dtype) {
    case GDN_DTYPE_BF16: ((__nv_bfloat16 *)base)[idx] = __float2bfloat16(x); break;
    case GDN_DTYPE_F16: ((__half *)base)[idx] = __float2half(x); break;
    default: ((float *)base)[idx] = x;
  }
}

/* 2^x on the special-function unit (ex2.approx.ftz, ~2 ulp; 2^-inf = 0), and e^x through it:
 * __expf's non-ftz form costs three more instructions per exponential. The intra-chunk
 * gates fold the log2e factor into per-row / per-column terms instead. */
#define GDN_LOG2E 1.44269504f
__device__ __forceinline__ float gdn_ex2_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float gdn_exp_fast(float x) { return gdn_ex2_fast(x * GDN_LOG2E); }

/* ---- activations (fp32) */
__device__ __forceinline__ float gdn_softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float gdn_sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }
__device__ __forceinline__ float gdn_silu(float x) { return x / (1.f + __expf(-x)); }
/* 1/x and 1/sqrt(x) on the special-function unit, flushing subnormals (rcp / rsqrt.approx.ftz,
 * ~1 ulp): rcpf / rsqrtf / __fdividef keep the subnormal fix-ups, 3-5 more instructions each. */
__device__ __forceinline__ float gdn_rcp_fast(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float gdn_rsqrt_fast(float x) {
  float y;
  asm("rsqrt.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
/* silu = x / (1 + e^-x) as x rcp(1 + 2^(-x log2e)): two special-function ops and three
 * FP32 ops (~3 ulp of fp32, far below a 16-bit rounding). The fix-ups of __expf and
 * __fdividef doubled it (H200, ncu of the scan's output norm: 33 instructions an element
 * with them). Exact for x -> +inf (2^-inf = 0), -0 for x -> -inf (rcp(inf) = 0). */
__device__ __forceinline__ float gdn_silu_fast(float x) { return x * gdn_rcp_fast(1.f + gdn_ex2_fast(-GDN_LOG2E * x)); }

#endif
