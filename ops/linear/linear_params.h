/* Internal: parameters of linear's unfused bias kernel (linear.cu), used where cuBLASLt
 * cannot fuse the bias into the GEMM epilogue. */
#ifndef GDN_LINEAR_PARAMS_H
#define GDN_LINEAR_PARAMS_H

#include <stdint.h>

typedef struct gdn_linear_bias_params {
  char *y;
  int64_t ldy;
  const char *bias;
  int bias_f32;
  int T, N;
} gdn_linear_bias_params;

#endif
