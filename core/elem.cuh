/* Reading a float from a tensor of any float dtype (kernels that accept any dtype). */
#ifndef GDN_CORE_ELEM_CUH
#define GDN_CORE_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "gdn/tensor.h"

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

__device__ __forceinline__ float gdn_softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float gdn_sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

#endif
