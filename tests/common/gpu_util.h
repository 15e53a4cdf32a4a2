/* GPU test helpers: skip without a device, checked allocations and copies, poison. */
#ifndef GDN_GPU_UTIL_H
#define GDN_GPU_UTIL_H

#include <cuda_runtime_api.h>
#include "test_util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_SKIP_CODE 77

/* Exits 77 with "<name>: <why>: skipped" when no device is usable (why: "no CUDA driver/GPU",
 * ...) or fewer than min_devices are visible. */
void gdn_gpu_test_init(const char *name, int min_devices);

/* Aborts the test (exit 1) on a CUDA error, naming the call. */
#define CUDA_OK(expr) gdn_cuda_ok((expr), #expr, __FILE__, __LINE__)
void gdn_cuda_ok(cudaError_t e, const char *what, const char *file, int line);

void *gdn_dmalloc(size_t bytes);                 /* cudaMalloc or exit */
/* Device buffer holding x packed as dtype. */
void *gdn_upload(gdn_dtype dtype, const double *x, size_t n);
/* Packs x as dtype into the existing device buffer `dev` (n elements). */
void gdn_upload_into(gdn_dtype dtype, void *dev, const double *x, size_t n);
/* Copies n elements of dtype from device and widens them to double. */
void gdn_download(gdn_dtype dtype, const void *dev, size_t n, double *x);
/* Raw bytes of a device buffer in a new host allocation (free it). */
void *gdn_download_raw(const void *dev, size_t bytes);
/* Fills a device buffer with NaN (0xFF bytes: NaN for bf16/fp16/fp32; -1 for int32). */
void gdn_poison(void *dev, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
