/* The unfused baseline's strided gather copy (bench only; see qkv_split_naive.h). */
#include <cuda_runtime.h>
#include <stdint.h>
#include "core/cuda_util.h"
#include "qkv_split_naive.h"

namespace {

constexpr int kThreads = 128;
constexpr int kPerThread = 4;

/* n / d as mul-hi + shift, the way framework element-wise kernels divide. */
struct fast_div {
  unsigned int d, m, s;
};

fast_div make_fast_div(unsigned int d) {
  fast_div f;
  f.d = d;
  f.s = 0;
  while (f.s < 32 && (1ull << f.s) < d) ++f.s;
  f.m = (unsigned int)(((1ull << 32) * ((1ull << f.s) - d)) / d + 1);
  return f;
}

__device__ __forceinline__ unsigned int fdiv(const fast_div &f, unsigned int n) {
  return (__umulhi(n, f.m) + n) >> f.s;
}

template <typename T>
struct naive_params {
  T *dst;
  const T *src;
  unsigned int n, cols;
  long long s0, s1;
  fast_div div;
};

template <typename T>
__global__ void __launch_bounds__(kThreads) naive_gather_kernel(naive_params<T> p) {
  const unsigned int base = blockIdx.x * (kThreads * kPerThread) + threadIdx.x;
  T v[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const unsigned int idx = base + i * kThreads;
    if (idx < p.n) {
      const unsigned int r = fdiv(p.div, idx), c = idx - r * p.cols;
      v[i] = p.src[(long long)r * p.s0 + (long long)c * p.s1];
    }
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const unsigned int idx = base + i * kThreads;
    if (idx < p.n) p.dst[idx] = v[i];
  }
}

template <typename T>
gdn_status launch(void *dst, const void *src, int64_t rows, int64_t cols, int64_t s0, int64_t s1, cudaStream_t stream) {
  naive_params<T> p;
  p.dst = (T *)dst;
  p.src = (const T *)src;
  p.n = (unsigned int)(rows * cols);
  p.cols = (unsigned int)cols;
  p.s0 = s0;
  p.s1 = s1;
  p.div = make_fast_div((unsigned int)cols);
  gdn_kernel_call call;
  call.func = (const void *)naive_gather_kernel<T>;
  call.grid = dim3((unsigned)((rows * cols + kThreads * kPerThread - 1) / (kThreads * kPerThread)), 1, 1);
  call.block = dim3(kThreads, 1, 1);
  call.smem = 0;
  call.params = &p;
  return gdn_kernel_launch(&call, stream);
}

} // namespace

extern "C" gdn_status gdn_qkv_split_naive_copy(void *dst, const void *src, int64_t rows, int64_t cols, int64_t s0,
                                               int64_t s1, int elem_bytes, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || rows * cols >= (1ll << 31))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "naive_copy: rows %lld x cols %lld must be in [0, 2^31)",
                    (long long)rows, (long long)cols);
  if (elem_bytes == 2) return launch<unsigned short>(dst, src, rows, cols, s0, s1, stream);
  if (elem_bytes == 4) return launch<unsigned int>(dst, src, rows, cols, s0, s1, stream);
  return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "naive_copy: elem_bytes %d is not 2 or 4", elem_bytes);
}
