/* conv1d internals shared by the host validation (conv1d.c) and the kernels (conv1d.cu). */
#ifndef GDN_OPS_CONV1D_SHAPE_H
#define GDN_OPS_CONV1D_SHAPE_H

#include "gdn/conv1d.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_CONV1D_MAX_WIDTH 4
#define GDN_CONV1D_MAX_TILE 4096
#define GDN_CONV1D_MAX_THREADS 256 /* __launch_bounds__ of the kernel: at most 256 threads, */
#define GDN_CONV1D_MIN_BLOCKS 2     /* and registers for 2 such blocks per SM (<= 128 per thread) */
#define GDN_CONV1D_STEP 8           /* tokens whose row loads a thread issues together */
/* Loads the grid should keep in flight per SM: DRAM at ~4 TB/s (half of it reads) over 132
 * SMs with ~1 us of loaded latency needs ~16 KB per SM; twice that for margin. */
#define GDN_CONV1D_INFLIGHT_BYTES (32 << 10)

typedef struct gdn_conv1d_shape_t {
  int Hk, K, Hv, V, D, W, num_slots;
} gdn_conv1d_shape_t;

/* Validates args and derives the shape. */
gdn_status gdn_conv1d_shape(const gdn_conv1d_args *args, gdn_conv1d_shape_t *s);
/* Disjointness that also accepts interleaved row views of one buffer (same row stride,
 * rows of one inside the gaps of the other). */
gdn_status gdn_conv1d_disjoint_rows(const gdn_tensor *a, const char *an, const gdn_tensor *b, const char *bn);

#ifdef __cplusplus
}
#endif
#endif
