/* Gated RMSNorm: a group of lanes_per_row lanes per GDN_RMSNORM_ROWS (token, head) rows (the
 * fewest lanes that cover V with VEC-element vectors, up to a warp: V = 128 in bf16 is 16
 * lanes, two groups a warp, no idle lanes), sum of x^2 reduced within the group, then
 * out = x rstd w silu(z).
 * A row that one pass of the group covers keeps x, z and w in registers; longer rows re-read
 * x (L1-resident) in a second pass. fp32 math throughout. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "gdn/gated_rmsnorm.h"
#include "ops/gated_rmsnorm/gated_rmsnorm_params.h"

namespace {

/* Weights d .. d + VEC (any float dtype, strided): one dtype branch per vector. */
template <int VEC> __device__ __forceinline__ void load_weights(const gdn_gated_rmsnorm_params &p, int d, float *w) {
  if (p.w_dtype == GDN_DTYPE_BF16) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) w[i] = gdn_to_float(((const __nv_bfloat16 *)p.w)[(int64_t)(d + i) * p.w_s]);
  } else if (p.w_dtype == GDN_DTYPE_F16) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) w[i] = gdn_to_float(((const __half *)p.w)[(int64_t)(d + i) * p.w_s]);
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) w[i] = ((const float *)p.w)[(int64_t)(d + i) * p.w_s];
  }
}

/* Rows a lane group normalizes: their loads are issued together (more bytes in flight per
 * thread) and the weights and index math are paid once for them. */
#define GDN_RMSNORM_ROWS 2

template <typename TX, typename TG, int VEC> __global__ void __launch_bounds__(1024) gated_rmsnorm_kernel(const gdn_gated_rmsnorm_params p) {
  constexpr int R = GDN_RMSNORM_ROWS;
  int num_tokens = p.T_cap;
  if (p.header != nullptr) {
    num_tokens = p.header->num_tokens;
    if (p.header->status != 0 || num_tokens < 0 || num_tokens > p.T_cap) return;
  }
  const int lane = threadIdx.x & 31, lpr = p.lanes_per_row, sub = lane & (lpr - 1);
  /* rows < T_cap H <= 2^31 - 1 (validated): 32-bit index math */
  const uint32_t nrows = (uint32_t)p.T_cap * (uint32_t)p.H;
  const uint32_t row0 = (((uint32_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * (32u / lpr) + lane / lpr) * R;
  if (row0 >= nrows) return; /* whole lane groups: a row's lanes share it */
  /* the row's lanes, for the reduction (groups are aligned, so every member is here) */
  const unsigned mask = lpr == 32 ? 0xffffffffu : ((1u << lpr) - 1u) << (lane & ~(lpr - 1));
  const int step = lpr * VEC;
  const TX *x[R];
  const TG *z[R];
  TG *out[R];
  bool live[R], pad[R];
#pragma unroll
  for (int j = 0; j < R; ++j) {
    const uint32_t row = row0 + j, t = gdn_fastdiv_quot(p.div_h, row), h = row - t * (uint32_t)p.H;
    live[j] = row < nrows && (int)t < num_tokens;
    pad[j] = row < nrows && (int)t >= num_tokens;
    x[j] = reinterpret_cast<const TX *>(p.x) + (int64_t)t * p.x_t + (int64_t)h * p.x_h;
    z[j] = reinterpret_cast<const TG *>(p.z) + (int64_t)t * p.z_t + (int64_t)h * p.z_h;
    out[j] = reinterpret_cast<TG *>(p.out) + (int64_t)t * p.o_t + (int64_t)h * p.o_h;
  }
#pragma unroll
  for (int j = 0; j < R; ++j)
    if (pad[j]) { /* padded row: defined zeros */
      float zero[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) zero[i] = 0.0f;
      for (int d = sub * VEC; d < p.V; d += step) gdn_store_vec<TG, VEC>(out[j] + d, zero);
    }
  if (step >= p.V) { /* one pass: everything stays in registers */
    const int d = sub * VEC;
    const bool mine = d < p.V;
    float xv[R][VEC], zv[R][VEC], wv[VEC], ss[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
      ss[j] = 0.0f;
      if (mine && live[j]) {
        gdn_load_vec<TX, VEC>(x[j] + d, xv[j]);
        gdn_load_vec<TG, VEC>(z[j] + d, zv[j]);
      }
    }
    if (mine) load_weights<VEC>(p, d, wv);
#pragma unroll
    for (int j = 0; j < R; ++j) {
      if (mine && live[j]) {
#pragma unroll
        for (int i = 0; i < VEC; ++i) ss[j] = fmaf(xv[j][i], xv[j][i], ss[j]);
      }
      for (int o = lpr >> 1; o > 0; o >>= 1) ss[j] += __shfl_xor_sync(mask, ss[j], o);
    }
#pragma unroll
    for (int j = 0; j < R; ++j) {
      const float rstd = gdn_rsqrt_fast(ss[j] / (float)p.V + p.eps);
      if (mine && live[j]) {
        float y[VEC];
#pragma unroll
        for (int i = 0; i < VEC; ++i) y[i] = xv[j][i] * rstd * wv[i] * gdn_silu_fast(zv[j][i]);
        gdn_store_vec<TG, VEC>(out[j] + d, y);
      }
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < R; ++j) {
    if (!live[j]) continue; /* uniform over the lane group */
    float ss = 0.0f;
    for (int d = sub * VEC; d < p.V; d += step) {
      float xv[VEC];
      gdn_load_vec<TX, VEC>(x[j] + d, xv);
#pragma unroll
      for (int i = 0; i < VEC; ++i) ss = fmaf(xv[i], xv[i], ss);
    }
    for (int o = lpr >> 1; o > 0; o >>= 1) ss += __shfl_xor_sync(mask, ss, o);
    const float rstd = gdn_rsqrt_fast(ss / (float)p.V + p.eps);
    for (int d = sub * VEC; d < p.V; d += step) {
      float xv[VEC], zv[VEC], wv[VEC], y[VEC];
      gdn_load_vec<TX, VEC>(x[j] + d, xv);
      gdn_load_vec<TG, VEC>(z[j] + d, zv);
      load_weights<VEC>(p, d, wv);
#pragma unroll
      for (int i = 0; i < VEC; ++i) y[i] = xv[i] * rstd * wv[i] * gdn_silu_fast(zv[i]);
      gdn_store_vec<TG, VEC>(out[j] + d, y);
    }
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
  p->div_h = gdn_fastdiv_of((uint32_t)p->H);
  p->header = a->batch.header;
  call->func = pick(a->x.dtype, a->out.dtype, cfg->vec);
  /* the fewest lanes (a power of two, up to a warp) whose vectors cover a row */
  p->lanes_per_row = 32;
  while (p->lanes_per_row > 1 && (p->lanes_per_row / 2) * cfg->vec >= p->V) p->lanes_per_row /= 2;
  const int64_t rows = (int64_t)p->T_cap * p->H,
                rows_per_block = (int64_t)cfg->warps_per_block * (32 / p->lanes_per_row) * GDN_RMSNORM_ROWS;
  call->grid = dim3((unsigned)((rows + rows_per_block - 1) / rows_per_block), 1, 1);
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
