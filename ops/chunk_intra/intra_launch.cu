/* chunk_intra: kernel instantiations, eager launch and graph-node emission. */
#include "core/cuda_util.h"
#include "gdn/chunk_intra.h"
#include "ops/chunk_intra/intra_fast.cuh"
#include "ops/chunk_intra/intra_gk.cuh"
#include "ops/chunk_intra/intra_group.cuh"

extern "C" gdn_status gdn_chunk_intra_params(const gdn_chunk_intra_args *a, const gdn_chunk_intra_config *cfg,
                                             gdn_intra_params *p);

static const void *pick_kernel(int per_key, int folded, int K, int f16) {
  if (per_key) return f16 ? (const void *)gdn_intra_gk_kernel<1> : (const void *)gdn_intra_gk_kernel<0>;
  if (folded) {
    switch (K) {
      case 64: return f16 ? (const void *)gdn_intra_group_kernel<64, 1> : (const void *)gdn_intra_group_kernel<64, 0>;
      case 128: return f16 ? (const void *)gdn_intra_group_kernel<128, 1> : (const void *)gdn_intra_group_kernel<128, 0>;
      default: return f16 ? (const void *)gdn_intra_group_kernel<256, 1> : (const void *)gdn_intra_group_kernel<256, 0>;
    }
  }
  switch (K) {
    case 64: return f16 ? (const void *)gdn_intra_fast_kernel<64, 1> : (const void *)gdn_intra_fast_kernel<64, 0>;
    case 128: return f16 ? (const void *)gdn_intra_fast_kernel<128, 1> : (const void *)gdn_intra_fast_kernel<128, 0>;
    default: return f16 ? (const void *)gdn_intra_fast_kernel<256, 1> : (const void *)gdn_intra_fast_kernel<256, 0>;
  }
}

static gdn_status intra_call(const gdn_chunk_intra_args *a, const gdn_chunk_intra_config *cfg, gdn_intra_params *p,
                             gdn_kernel_call *call) {
  GDN_TRY(gdn_chunk_intra_params(a, cfg, p));
  call->func = pick_kernel(cfg->per_key, cfg->folded, p->K, a->k.dtype == GDN_DTYPE_F16);
  call->grid = dim3((unsigned)a->batch.max_chunks, (unsigned)(p->Hv / cfg->heads_per_cta), 1);
  call->block = dim3((unsigned)cfg->threads, 1, 1);
  call->smem = cfg->smem_bytes;
  call->params = p;
  if (a->batch.max_chunks == 0) call->grid.x = 0;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_chunk_intra_launch(const gdn_chunk_intra_args *a, const gdn_chunk_intra_config *cfg,
                                             cudaStream_t stream) {
  gdn_clear_last_error();
  gdn_intra_params p;
  gdn_kernel_call call;
  GDN_TRY(intra_call(a, cfg, &p, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_chunk_intra_add_node(const gdn_chunk_intra_args *a, const gdn_chunk_intra_config *cfg,
                                               cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                               cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_intra_params p;
  gdn_kernel_call call;
  GDN_TRY(intra_call(a, cfg, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}
