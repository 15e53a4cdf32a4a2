/* Bulk tensor copy (TMA) descriptors for the sm_90a kernels: room for the opaque 128-byte
 * CUtensorMap (128-byte aligned, as CUDA 13 declares it; the copy engine needs 64), held in
 * kernel params (C and CUDA), and its host-side encoding. */
#ifndef GDN_CORE_TMA_H
#define GDN_CORE_TMA_H

#include <stdint.h>

#ifdef __cplusplus
#define GDN_ALIGNAS_128 alignas(128)
extern "C" {
#else
#define GDN_ALIGNAS_128 _Alignas(128)
#endif

/* A CUtensorMap (its size and alignment): the copy engine reads it from the kernel's
 * parameter space. */
typedef struct gdn_tma_map {
  GDN_ALIGNAS_128 uint64_t opaque[16];
} gdn_tma_map;

/* Encodes the map of a 16-bit tensor viewed as [heads][rows][cols] (element strides:
 * row_stride between rows, head_stride between heads, columns contiguous) read in boxes
 * of 64 columns x 64 rows of one head, landing as 128-byte-swizzled 64-column slabs (the
 * layout of core/wgmma.cuh). Returns 1, or 0 when the copy engine cannot take it
 * (address or strides not 16-byte multiples, extents out of range, no driver entry
 * point): the caller then loads by cp.async. */
int gdn_tma_map_tile64(gdn_tma_map *map, const void *base, int64_t rows, int64_t heads, int64_t cols,
                       int64_t row_stride, int64_t head_stride);

#ifdef __cplusplus
}
#endif
#endif
