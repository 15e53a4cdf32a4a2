/* Eager launch and graph-node emission of chunk_delta_h and chunk_scan_o. */
#include "core/cuda_util.h"
#include "core/tma.h"
#include "ops/chunk_scan/scan_combine.cuh"
#include "ops/chunk_scan/scan_plan.h"

extern "C" const void *gdn_scan_kernel_k64(int col, int bv, int warps, int f16, int o_mode);
extern "C" const void *gdn_scan_kernel_k128(int col, int bv, int warps, int f16, int o_mode);
extern "C" const void *gdn_scan_kernel_k256(int col, int bv, int warps, int f16, int o_mode);

#if defined(GDN_HAVE_SM90A) && GDN_HAVE_SM90A
extern "C" const void *gdn_scan_wg_kernel_k128(int bv, int f16, int o_mode);
extern "C" const void *gdn_scan_wgk_kernel_k128(int bv, int f16);
#else
static const void *gdn_scan_wg_kernel_k128(int, int, int) { return NULL; } /* not built */
static const void *gdn_scan_wgk_kernel_k128(int, int) { return NULL; }
#endif

/* col: 0 row groups, 1 column split, 2 column split on warpgroup tensor cores (sm_90a), 3 the
 * key-row warpgroup scan (sm_90a, chunk_delta_h and its transition pass). */
static const void *scan_kernel(int K, int col, int bv, int warps, int f16, int o_mode) {
  if (col == 3) return K == 128 && warps == bv / 8 && o_mode == 0 ? gdn_scan_wgk_kernel_k128(bv, f16) : NULL;
  if (col == 2) return K == 128 && warps == bv / 16 ? gdn_scan_wg_kernel_k128(bv, f16, o_mode) : NULL;
  return K == 64    ? gdn_scan_kernel_k64(col, bv, warps, f16, o_mode)
         : K == 128 ? gdn_scan_kernel_k128(col, bv, warps, f16, o_mode)
                    : gdn_scan_kernel_k256(col, bv, warps, f16, o_mode);
}

static const void *combine_kernel(int K) {
  return K == 64    ? (const void *)gdn_scan_combine_kernel<64>
         : K == 128 ? (const void *)gdn_scan_combine_kernel<128>
                    : (const void *)gdn_scan_combine_kernel<256>;
}

/* The warpgroup kernel's copy-engine maps of the 16-bit tiles [T, heads, cols] (cols
 * contiguous); a tensor the engine cannot take leaves every tile to cp.async. */
static int tile_map(gdn_tma_map *m, const gdn_tensor *t) {
  return t != NULL && t->data != NULL && t->rank == 3 && t->strides[2] == 1 &&
         gdn_tma_map_tile64(m, t->data, t->sizes[0], t->sizes[1], t->sizes[2], t->strides[0], t->strides[1]);
}
static void scan_tma_maps(const gdn_scan_problem *pb, gdn_scan_params *p) {
  int ok = tile_map(&p->tma_k, pb->k) && tile_map(&p->tma_w, pb->w);
  if (ok && gdn_scan_mode_has_o(pb->o_mode)) ok = tile_map(&p->tma_q, pb->q) && tile_map(&p->tma_a, pb->aqk);
  p->tma = ok;
}

/* The scan's kernels in launch order: the main pass alone, or for a segmented batch
 * (context parallelism) the transition pass, the combine pass and the main pass. */
typedef struct scan_calls {
  gdn_scan_params main, trans;
  gdn_scan_combine_params comb;
  gdn_kernel_call call[3];
  int n;
} scan_calls;

static gdn_status scan_build(const gdn_scan_problem *pb, const gdn_scan_config *cfg, scan_calls *sc) {
  int64_t grid = 0;
  GDN_TRY(gdn_scan_prepare(pb, cfg, &sc->main, &grid));
  const int K = gdn_scan_problem_K(pb);
  const int f16 = pb->w->dtype == GDN_DTYPE_F16;
  const int col = cfg->column_split;
  const void *fn = scan_kernel(K, col, cfg->bv, cfg->num_warps, f16, cfg->o_mode);
  if (fn == NULL) return gdn_fail(GDN_ERROR_INTERNAL, "no chunk scan kernel for K=%d BV=%d warps=%d", K, cfg->bv, cfg->num_warps);
  /* the warpgroup kernel: its compute warps and a producer warpgroup */
  const dim3 block((unsigned)(32 * cfg->num_warps + (col >= 2 ? GDN_SCAN_WG_PRODUCER_THREADS : 0)), 1, 1);
  if (col >= 2) scan_tma_maps(pb, &sc->main);
  sc->n = 0;
  if (pb->batch->segments != NULL) {
    int64_t grid1 = 0;
    int tmode = 0;
    gdn_scan_transition_params(&sc->main, cfg, pb->batch, &sc->trans, &grid1, &tmode);
    const void *fn1 = scan_kernel(K, col, cfg->bv, cfg->num_warps, f16, tmode);
    if (fn1 == NULL) return gdn_fail(GDN_ERROR_INTERNAL, "no transition scan kernel for K=%d BV=%d", K, cfg->bv);
    sc->call[sc->n++] = (gdn_kernel_call){fn1, dim3((unsigned)grid1, 1, 1), block, cfg->cp_smem_bytes, &sc->trans};
    sc->comb.header = pb->batch->header;
    sc->comb.segments = pb->batch->segments;
    sc->comb.seq_segments = pb->batch->seq_segments;
    sc->comb.cp_x = sc->main.cp_x;
    sc->comb.Hv = sc->main.Hv;
    sc->comb.V = sc->main.V;
    const int64_t gridc = (int64_t)pb->batch->max_seqs * sc->main.Hv * (sc->main.V / GDN_COMBINE_ROWS);
    sc->call[sc->n++] = (gdn_kernel_call){combine_kernel(K), dim3((unsigned)gridc, 1, 1), dim3((unsigned)K, 1, 1),
                                          gdn_scan_combine_smem(K), &sc->comb};
  }
  sc->call[sc->n++] = (gdn_kernel_call){fn, dim3((unsigned)grid, 1, 1), block, cfg->smem_bytes, &sc->main};
  return GDN_SUCCESS;
}

/* Launches eagerly on `stream`, or adds the nodes to `graph` when it is given (chained;
 * *node is the last). */
static gdn_status scan_emit(const gdn_scan_problem *pb, const gdn_scan_config *cfg, cudaStream_t stream,
                            cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  scan_calls sc;
  GDN_TRY(scan_build(pb, cfg, &sc));
  for (int i = 0; i < sc.n; ++i) {
    if (graph == NULL) {
      GDN_TRY(gdn_kernel_launch(&sc.call[i], stream));
    } else {
      cudaGraphNode_t prev = i > 0 ? *node : NULL;
      GDN_TRY(gdn_kernel_add_node(&sc.call[i], graph, i > 0 ? &prev : deps, i > 0 ? 1 : num_deps, node));
    }
  }
  return GDN_SUCCESS;
}

static gdn_status null_args(void) { return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL"); }

extern "C" gdn_status gdn_chunk_delta_h_launch(const gdn_chunk_delta_h_args *a, const gdn_scan_config *cfg,
                                               cudaStream_t stream) {
  gdn_clear_last_error();
  if (a == NULL) return null_args();
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return scan_emit(&pb, cfg, stream, NULL, NULL, 0, NULL);
}

extern "C" gdn_status gdn_chunk_delta_h_add_node(const gdn_chunk_delta_h_args *a, const gdn_scan_config *cfg,
                                                 cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                                 cudaGraphNode_t *node) {
  gdn_clear_last_error();
  if (a == NULL) return null_args();
  if (graph == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "add_node: graph is NULL");
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return scan_emit(&pb, cfg, NULL, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_chunk_scan_o_launch(const gdn_chunk_scan_o_args *a, const gdn_scan_config *cfg,
                                              cudaStream_t stream) {
  gdn_clear_last_error();
  if (a == NULL) return null_args();
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return scan_emit(&pb, cfg, stream, NULL, NULL, 0, NULL);
}

extern "C" gdn_status gdn_chunk_scan_o_add_node(const gdn_chunk_scan_o_args *a, const gdn_scan_config *cfg,
                                                cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                                cudaGraphNode_t *node) {
  gdn_clear_last_error();
  if (a == NULL) return null_args();
  if (graph == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "add_node: graph is NULL");
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return scan_emit(&pb, cfg, NULL, graph, deps, num_deps, node);
}
