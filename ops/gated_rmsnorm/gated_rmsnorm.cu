/* Gated RMSNorm: one warp per (token, head) row; pass 1 sums x^2, pass 2 re-reads x
 * (L1-resident) with z and weight and writes out. fp32 math throughout. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "gdn/gated_rmsnorm.h"
#include "ops/gated_rmsnorm/gated_rmsnorm_params.h"

namespace {

template <typename TX, typename TG, int VEC> __global__ void __launch_bounds__(1024) gated_rmsnorm_kernel(const gdn_gated_rmsnorm_params p) {
  int num_tokens = p.T_cap;
  if (p.header != nullptr) {
    num_tokens = p.header->num_tokens;
    if (p.header->status != 0 || num_tokens < 0 || num_tokens > p.T_cap) return;
  }
  const int lane = threadIdx.x & 31;
  const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= (int64_t)p.T_cap * p.H) return;
  const int t = (int)(row / p.H), h = (int)(row % p.H);
  TG *out = reinterpret_cast<TG *>(p.out) + (int64_t)t * p.o_t + (int64_t)h * p.o_h;
  if (t >= num_tokens) { /* padded row: defined zeros */
    float zero[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) zero[i] = 0.0f;
    for (int d = lane * VEC; d < p.V; d += 32 * VEC) gdn_store_vec<TG, VEC>(out + d, zero);
    return;
  }
  const TX *x = reinterpret_cast<const TX *>(p.x) + (int64_t)t * p.x_t + (int64_t)h * p.x_h;
  const TG *z = reinterpret_cast<const TG *>(p.z) + (int64_t)t * p.z_t + (int64_t)h * p.z_h;
  float ss = 0.0f;
  for (int d = lane * VEC; d < p.V; d += 32 * VEC) {
    float xv[VEC];
    gdn_load_vec<TX, VEC>(x + d, xv);
#pragma unroll
    for (int i = 0; i < VEC; ++i) ss = fmaf(xv[i], xv[i], ss);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float rstd = rsqrtf(ss / (float)p.V + p.eps);
  for (int d = lane * VEC; d < p.V; d += 32 * VEC) {
    float xv[VEC], zv[VEC], y[VEC];
    gdn_load_vec<TX, VEC>(x + d, xv);
    gdn_load_vec<TG, VEC>(z + d, zv);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      y[i] = xv[i] * rstd * gdn_load_float(p.w, p.w_dtype, (int64_t)(d + i) * p.w_s) * gdn_silu(zv[i]);
    }
    gdn_store_vec<TG, VEC>(out + d, y);
  }
}

template <typename TX, typename TG> const void *pick_vec(int vec) {
  switch (vec) {
    case 1: return (const void *)gated_rmsnorm_kernel<TX, TG, 1>;
    case 2: return (const void *)gated_rmsnorm_kernel<TX, TG, 2>;
    case 4: return (const void *)gated_rmsnorm_kernel<TX, TG, 4>;
    default: return (const void *)gated_rmsnorm_kernel<TX, TG, 8>;
  }
}

/* vec <= 16 / sizeof: fp32 tensors never take vec 8 (check_config enforces it). */
template <typename TX> const void *pick_g(gdn_dtype g, int vec) {
  switch (g) {
    case GDN_DTYPE_BF16: return pick_vec<TX, __nv_bfloat16>(vec);
    case GDN_DTYPE_F16: return pick_vec<TX, __half>(vec);
    default: return pick_vec<TX, float>(vec < 8 ? vec : 4);
  }
}

const void *pick(gdn_dtype x, gdn_dtype g, int vec) {
  switch (x) {
    case GDN_DTYPE_BF16: return pick_g<__nv_bfloat16>(g, vec);
    case GDN_DTYPE_F16: return pick_g<__half>(g, vec);
    default: return pick_g<float>(g, vec < 8 ? vec : 4);
  }
}

gdn_status build_call(const gdn_gated_rmsnorm_args *a, const gdn_gated_rmsnorm_config *cfg, gdn_gated_rmsnorm_params *p,
                      gdn_kernel_call *call) {
  GDN_TRY(gdn_gated_rmsnorm_check_config(a, cfg));
  memset(p, 0, sizeof *p);
  p->x = (const char *)a->x.data;
  p->x_t = a->x.strides[0];
  p->x_h = a->x.strides[1];
  p->z = (const char *)a->z.data;
  p->z_t = a->z.strides[0];
  p->z_h = a->z.strides[1];
  p->w = (const char *)a->weight.data;
  p->w_s = a->weight.strides[0];
  p->w_dtype = (int)a->weight.dtype;
  p->out = (char *)a->out.data;
  p->o_t = a->out.strides[0];
  p->o_h = a->out.strides[1];
  p->H = (int)a->out.sizes[1];
  p->V = (int)a->out.sizes[2];
  p->T_cap = (int)a->out.sizes[0];
  p->eps = (float)(a->eps > 0.0 ? a->eps : GDN_GATED_RMSNORM_DEFAULT_EPS);
  p->header = a->batch.header;
  call->func = pick(a->x.dtype, a->out.dtype, cfg->vec);
  int64_t rows = (int64_t)p->T_cap * p->H;
  call->grid = dim3((unsigned)((rows + cfg->warps_per_block - 1) / cfg->warps_per_block), 1, 1);
  call->block = dim3((unsigned)(32 * cfg->warps_per_block), 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

} /* namespace */

extern "C" gdn_status gdn_gated_rmsnorm_launch(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg,
                                               cudaStream_t stream) {
  gdn_clear_last_error();
  gdn_gated_rmsnorm_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_gated_rmsnorm_add_node(const gdn_gated_rmsnorm_args *args, const gdn_gated_rmsnorm_config *cfg,
                                                 cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                                 cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_gated_rmsnorm_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_gated_rmsnorm_update_node(const gdn_gated_rmsnorm_args *args,
                                                    const gdn_gated_rmsnorm_config *cfg, cudaGraphExec_t exec,
                                                    cudaGraphNode_t node) {
  gdn_clear_last_error();
  gdn_gated_rmsnorm_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_update_node(&call, exec, node);
}
