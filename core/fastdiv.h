/* Division by a divisor fixed at plan time, for kernel index math: n / d for 0 <= n < 2^31
 * as one multiply-high, an add and a shift (Granlund and Montgomery: s = ceil(log2 d),
 * m = floor(2^32 (2^s - d) / d) + 1), instead of the ~20-instruction 32-bit division (or
 * the ~70 of a 64-bit one). */
#ifndef GDN_CORE_FASTDIV_H
#define GDN_CORE_FASTDIV_H

#include <stdint.h>

typedef struct gdn_fastdiv {
  uint32_t d, m, s;
} gdn_fastdiv;

/* d >= 1 */
static inline gdn_fastdiv gdn_fastdiv_of(uint32_t d) {
  gdn_fastdiv f;
  f.d = d;
  f.s = 0;
  while ((1ull << f.s) < d) ++f.s;
  f.m = (uint32_t)(((1ull << 32) * ((1ull << f.s) - d)) / d + 1);
  return f;
}

#ifdef __CUDACC__
__device__ __forceinline__ uint32_t gdn_fastdiv_quot(gdn_fastdiv f, uint32_t n) { return (__umulhi(n, f.m) + n) >> f.s; }
#endif

#endif
