/* Host-side encoding of the copy engine's tensor maps (core/tma.h). The driver's encoder
 * is reached through the runtime's entry-point query, so the library links no libcuda. */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include "core/tma.h"

/* (CUDA 13 aligns CUtensorMap to 128 bytes, 12.x to 64: the copy engine needs 64) */
static_assert(sizeof(gdn_tma_map) == sizeof(CUtensorMap) && alignof(gdn_tma_map) % alignof(CUtensorMap) == 0,
              "gdn_tma_map must hold a CUtensorMap");

/* cuTensorMapEncodeTiled, or NULL. */
static PFN_cuTensorMapEncodeTiled_v12000 lookup_encoder(void) {
  void *p = NULL;
  cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
#else
  const cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &q);
#endif
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess) return NULL;
  return (PFN_cuTensorMapEncodeTiled_v12000)p;
}

extern "C" int gdn_tma_map_tile64(gdn_tma_map *map, const void *base, int64_t rows, int64_t heads, int64_t cols,
                                  int64_t row_stride, int64_t head_stride) {
  static const PFN_cuTensorMapEncodeTiled_v12000 enc = lookup_encoder(); /* once (thread-safe static) */
  if (enc == NULL || base == NULL || rows <= 0 || heads <= 0 || cols < 64 || cols % 64 != 0) return 0;
  if ((uintptr_t)base % 16 != 0 || row_stride % 8 != 0 || head_stride % 8 != 0) return 0; /* 16-byte multiples */
  if (rows > ((int64_t)1 << 32) || heads > ((int64_t)1 << 32) || row_stride <= 0 || head_stride <= 0) return 0;
  /* dims fastest first: columns, rows, heads; strides in bytes of dims 1 and 2 */
  const cuuint64_t dim[3] = {(cuuint64_t)cols, (cuuint64_t)rows, (cuuint64_t)heads};
  const cuuint64_t stride[2] = {(cuuint64_t)row_stride * 2u, (cuuint64_t)head_stride * 2u};
  const cuuint32_t box[3] = {64, 64, 1}, estride[3] = {1, 1, 1};
  const CUresult r = enc((CUtensorMap *)map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, (void *)base, dim, stride, box, estride,
                         CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}
