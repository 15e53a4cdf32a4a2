#include "gpu_util.h"

#include <string.h>
#include "gdn/device.h"

void gdn_gpu_test_init(const char *name, int min_devices) {
  const char *why = gdn_device_unavailable_reason();
  if (why != NULL) {
    printf("%s: %s: skipped\n", name, why);
    exit(GDN_SKIP_CODE);
  }
  int n = 0;
  CUDA_OK(cudaGetDeviceCount(&n));
  if (n < min_devices) {
    printf("%s: needs %d CUDA devices, %d visible: skipped\n", name, min_devices, n);
    exit(GDN_SKIP_CODE);
  }
  struct cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  printf("%s: device 0 = %s (sm_%d%d, %d SMs)\n", name, p.name, p.major, p.minor, p.multiProcessorCount);
}

void gdn_cuda_ok(cudaError_t e, const char *what, const char *file, int line) {
  if (e != cudaSuccess) {
    fprintf(stderr, "FATAL %s:%d: %s: %s\n", file, line, what, cudaGetErrorString(e));
    exit(1);
  }
}

void *gdn_dmalloc(size_t bytes) {
  void *p = NULL;
  CUDA_OK(cudaMalloc(&p, bytes ? bytes : 16));
  return p;
}

void *gdn_upload(gdn_dtype dtype, const double *x, size_t n) {
  void *dev = gdn_dmalloc(n * gdn_dtype_size(dtype));
  gdn_upload_into(dtype, dev, x, n);
  return dev;
}

void gdn_upload_into(gdn_dtype dtype, void *dev, const double *x, size_t n) {
  size_t bytes = n * gdn_dtype_size(dtype);
  void *host = gdn_xmalloc(bytes ? bytes : 1);
  gdn_pack(dtype, x, n, host);
  CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
  free(host);
}

void gdn_download(gdn_dtype dtype, const void *dev, size_t n, double *x) {
  size_t bytes = n * gdn_dtype_size(dtype);
  void *host = gdn_xmalloc(bytes);
  CUDA_OK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
  gdn_unpack(dtype, host, n, x);
  free(host);
}

void *gdn_download_raw(const void *dev, size_t bytes) {
  void *h = gdn_xmalloc(bytes ? bytes : 1);
  CUDA_OK(cudaMemcpy(h, dev, bytes, cudaMemcpyDeviceToHost));
  return h;
}

/* Synchronous, so the poison is in place before work on any stream (non-blocking ones
 * included) that the caller launches next. */
void gdn_poison(void *dev, size_t bytes) {
  CUDA_OK(cudaMemset(dev, 0xFF, bytes));
  CUDA_OK(cudaDeviceSynchronize());
}
