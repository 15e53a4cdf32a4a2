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
/* Ring slots per thread: rows RING-1 ahead of the token computed stay in flight (cp.async to
 * shared memory, 14 x 16 bytes per thread at vec 8). DRAM at ~4.2 TB/s over 132 SMs, half
 * of it reads, is ~16 GB/s of reads per SM: 1.5-3 us of loaded latency needs 24-48 KB in
 * flight per SM; 512 resident threads give 115 KB. Odd: a thread's slots are contiguous and
 * an odd 16-byte stride between threads is free of bank conflicts; RING % 3 == 0 keeps the
 * W = 4 window a register renaming across the unrolled ring. Shared memory: RING x threads x
 * vec bytes per block (30 KB at 128 threads of 16 bytes). */
#define GDN_CONV1D_RING 15
/* A batch shorter than its bucket uses fewer tiles, each >= min(tile_tokens, MIN_RUN) tokens
 * (the W-1 halo rows are re-read per tile). */
#define GDN_CONV1D_MIN_RUN 16

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
