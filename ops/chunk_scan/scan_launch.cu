/* Eager launch and graph-node emission of chunk_delta_h and chunk_scan_o. */
#include "core/cuda_util.h"
#include "ops/chunk_scan/scan_plan.h"

extern "C" const void *gdn_scan_kernel_k64(int col, int bv, int warps, int f16, int o_mode);
extern "C" const void *gdn_scan_kernel_k128(int col, int bv, int warps, int f16, int o_mode);
extern "C" const void *gdn_scan_kernel_k256(int col, int bv, int warps, int f16, int o_mode);

static gdn_status scan_call(const gdn_scan_problem *pb, const gdn_scan_config *cfg, gdn_scan_params *prm,
                            gdn_kernel_call *call) {
  int64_t grid = 0;
  GDN_TRY(gdn_scan_prepare(pb, cfg, prm, &grid));
  const int K = gdn_scan_problem_K(pb);
  const int f16 = pb->w->dtype == GDN_DTYPE_F16;
  const int col = cfg->column_split;
  const void *fn = K == 64    ? gdn_scan_kernel_k64(col, cfg->bv, cfg->num_warps, f16, cfg->o_mode)
                   : K == 128 ? gdn_scan_kernel_k128(col, cfg->bv, cfg->num_warps, f16, cfg->o_mode)
                              : gdn_scan_kernel_k256(col, cfg->bv, cfg->num_warps, f16, cfg->o_mode);
  if (fn == NULL) return gdn_fail(GDN_ERROR_INTERNAL, "no chunk scan kernel for K=%d BV=%d warps=%d", K, cfg->bv, cfg->num_warps);
  call->func = fn;
  call->grid = dim3((unsigned)grid, 1, 1);
  call->block = dim3((unsigned)(32 * cfg->num_warps), 1, 1);
  call->smem = cfg->smem_bytes;
  call->params = prm;
  return GDN_SUCCESS;
}

/* Launches eagerly on `stream`, or adds a node to `graph` when it is given. */
static gdn_status scan_emit(const gdn_scan_problem *pb, const gdn_scan_config *cfg, cudaStream_t stream,
                            cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_scan_params prm;
  gdn_kernel_call call;
  GDN_TRY(scan_call(pb, cfg, &prm, &call));
  return graph != NULL ? gdn_kernel_add_node(&call, graph, deps, num_deps, node) : gdn_kernel_launch(&call, stream);
}

static gdn_status null_args(void) { return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL"); }

extern "C" gdn_status gdn_chunk_delta_h_launch(const gdn_chunk_delta_h_args *a, const gdn_scan_config *cfg,
                                               cudaStream_t stream) {
  if (a == NULL) return null_args();
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return scan_emit(&pb, cfg, stream, NULL, NULL, 0, NULL);
}

extern "C" gdn_status gdn_chunk_delta_h_add_node(const gdn_chunk_delta_h_args *a, const gdn_scan_config *cfg,
                                                 cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                                 cudaGraphNode_t *node) {
  if (a == NULL) return null_args();
  if (graph == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "add_node: graph is NULL");
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return scan_emit(&pb, cfg, NULL, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_chunk_scan_o_launch(const gdn_chunk_scan_o_args *a, const gdn_scan_config *cfg,
                                              cudaStream_t stream) {
  if (a == NULL) return null_args();
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return scan_emit(&pb, cfg, stream, NULL, NULL, 0, NULL);
}

extern "C" gdn_status gdn_chunk_scan_o_add_node(const gdn_chunk_scan_o_args *a, const gdn_scan_config *cfg,
                                                cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                                cudaGraphNode_t *node) {
  if (a == NULL) return null_args();
  if (graph == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "add_node: graph is NULL");
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return scan_emit(&pb, cfg, NULL, graph, deps, num_deps, node);
}
