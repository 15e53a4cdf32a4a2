/* Internal: gated RMSNorm kernel parameters (filled in gated_rmsnorm.cu). */
#ifndef GDN_GATED_RMSNORM_PARAMS_H
#define GDN_GATED_RMSNORM_PARAMS_H

#include <stdint.h>
#include "core/fastdiv.h"
#include "gdn/batch.h"

typedef struct gdn_gated_rmsnorm_params {
  const char *x;
  int64_t x_t, x_h;
  const char *z;
  int64_t z_t, z_h;
  const char *w;
  int64_t w_s;
  int w_dtype;
  char *out;
  int64_t o_t, o_h;
  int H, V, T_cap;
  gdn_fastdiv div_h;              /* row -> (token, head) */
  int lanes_per_row;              /* 1..32, a power of two */
  float eps;
  const gdn_batch_header *header; /* NULL: all T_cap rows */
} gdn_gated_rmsnorm_params;

#endif
