/* Device queries and generic kernel emission shared by all operators. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/device.h"

extern "C" gdn_status gdn_cuda_fail(cudaError_t err, const char *what) {
  cudaGetLastError(); /* clear a sticky-free error so later calls start clean */
  gdn_status s = (err == cudaErrorMemoryAllocation) ? GDN_ERROR_OUT_OF_MEMORY
               : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) ? GDN_ERROR_NO_DEVICE
               : GDN_ERROR_CUDA;
  return gdn_fail(s, "%s failed: %s (%s)", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

extern "C" int gdn_device_available(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n > 0;
}

/* cudaGetDeviceCount reports a missing driver as "driver version insufficient";
 * cudaDriverGetVersion tells the two apart (0 when no driver is installed). */
extern "C" const char *gdn_device_unavailable_reason(void) {
  static thread_local char why[128];
  int n = 0, drv = 0, rt = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  cudaGetLastError();
  if (e == cudaSuccess && n > 0) return NULL;
  if (cudaDriverGetVersion(&drv) != cudaSuccess || drv == 0) return "no CUDA driver/GPU";
  cudaRuntimeGetVersion(&rt);
  if (e == cudaErrorInsufficientDriver)
    snprintf(why, sizeof why, "the CUDA driver (%d.%d) is older than the CUDA runtime (%d.%d)", drv / 1000, drv % 1000 / 10,
             rt / 1000, rt % 1000 / 10);
  else if (e == cudaSuccess || e == cudaErrorNoDevice)
    snprintf(why, sizeof why, "no CUDA device is visible (driver %d.%d)", drv / 1000, drv % 1000 / 10);
  else
    snprintf(why, sizeof why, "no usable CUDA device (%s)", cudaGetErrorString(e));
  return why;
}

extern "C" gdn_status gdn_device_info_query(int device, gdn_device_info *info) {
  gdn_clear_last_error();
  if (info == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_device_info_query: info is NULL");
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    return gdn_fail(GDN_ERROR_NO_DEVICE, "no CUDA device is visible (%s)", e == cudaSuccess ? "count is 0" : cudaGetErrorString(e));
  }
  if (device < 0 || device >= n)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "device %d is outside [0, %d)", device, n);
  cudaDeviceProp p;
  GDN_CUDA_TRY(cudaGetDeviceProperties(&p, device));
  memset(info, 0, sizeof *info);
  info->device = device;
  info->cc_major = p.major;
  info->cc_minor = p.minor;
  info->sm_count = p.multiProcessorCount;
  info->smem_per_block_optin = p.sharedMemPerBlockOptin;
  info->smem_per_sm = p.sharedMemPerMultiprocessor;
  info->l2_bytes = (size_t)p.l2CacheSize;
  info->max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  return GDN_SUCCESS;
}

static gdn_status opt_in_smem(const gdn_kernel_call *call) {
  if (call->smem > 48 * 1024)
    GDN_CUDA_TRY(cudaFuncSetAttribute(call->func, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)call->smem));
  return GDN_SUCCESS;
}

static cudaKernelNodeParams node_params(const gdn_kernel_call *call, void **args) {
  cudaKernelNodeParams p;
  memset(&p, 0, sizeof p);
  p.func = (void *)call->func;
  p.gridDim = call->grid;
  p.blockDim = call->block;
  p.sharedMemBytes = (unsigned)call->smem;
  p.kernelParams = args;
  return p;
}

extern "C" gdn_status gdn_kernel_launch(const gdn_kernel_call *call, cudaStream_t stream) {
  if (call->grid.x == 0 || call->grid.y == 0 || call->grid.z == 0) return GDN_SUCCESS;
  GDN_TRY(opt_in_smem(call));
  void *args[1] = {call->params};
  GDN_CUDA_TRY(cudaLaunchKernel(call->func, call->grid, call->block, args, call->smem, stream));
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_kernel_add_node(const gdn_kernel_call *call, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                          size_t num_deps, cudaGraphNode_t *node) {
  if (graph == NULL || node == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "add_node: graph and node must not be NULL");
  GDN_TRY(opt_in_smem(call));
  void *args[1] = {call->params};
  cudaKernelNodeParams p = node_params(call, args);
  /* An empty grid still gets a node (1 block that the kernel's bounds checks make idle)
   * so the caller's dependency chain keeps its shape. */
  if (p.gridDim.x == 0) p.gridDim.x = 1;
  GDN_CUDA_TRY(cudaGraphAddKernelNode(node, graph, deps, num_deps, &p));
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_kernel_update_node(const gdn_kernel_call *call, cudaGraphExec_t exec, cudaGraphNode_t node) {
  GDN_TRY(opt_in_smem(call));
  void *args[1] = {call->params};
  cudaKernelNodeParams p = node_params(call, args);
  if (p.gridDim.x == 0) p.gridDim.x = 1;
  GDN_CUDA_TRY(cudaGraphExecKernelNodeSetParams(exec, node, &p));
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_with_device(int device, gdn_status (*fn)(void *ctx, const gdn_device_info *dev), void *ctx) {
  gdn_device_info info;
  GDN_TRY(gdn_device_info_query(device, &info));
  int prev = 0;
  GDN_CUDA_TRY(cudaGetDevice(&prev));
  GDN_CUDA_TRY(cudaSetDevice(device));
  gdn_status st = fn(ctx, &info);
  cudaSetDevice(prev);
  return st;
}
