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

__device__ __forceinline__ float gdn_softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float gdn_sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

#endif
