/* Internal: the one validation / planning / parameter path behind chunk_delta_h and
 * chunk_scan_o. */
#ifndef GDN_SCAN_PLAN_H
#define GDN_SCAN_PLAN_H

#include "gdn/chunk_delta_h.h"
#include "ops/chunk_scan/scan_params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_scan_problem {
  const gdn_batch *batch;
  const gdn_tensor *q, *k, *w, *u, *g, *gk, *aqk, *qf, *kf, *state, *o, *h, *v_new; /* q, aqk, qf, o: o_mode only */
  const gdn_tensor *state_out, *ckpt;
  int ckpt_every;
  void *cp_ws;
  size_t cp_ws_bytes;
  const gdn_tensor *nz, *nw; /* the output norm's z and weight (o_mode 4) */
  double n_eps;
  float scale;
  int o_mode;        /* 0 chunk_delta_h, 1 chunk_scan_o, 2 chunk_scan_o folded: w = tu, u = v, 4 the
                        folded form with the output norm (scan_params.h) */
  int mixed_forms;   /* scan_o args gave both (w, u) and (v, tu) tensors */
} gdn_scan_problem;

/* Head dim K of the problem (from k: the folded form's w slot holds the 64-wide tu). */
static inline int gdn_scan_problem_K(const gdn_scan_problem *pb) { return (int)pb->k->sizes[2]; }

/* Whether the planner's default for this problem is the column-split kernel: K <= 128 and
 * either the folded form, a segmented batch, or enough (sequence, head) pairs for every SM
 * and long sequences (measured on H100: 8 x 8192 it wins; 1 x 8192 and 64 x 128 it loses;
 * chunk_delta_h on Hopper's warpgroup scan: from SMs / (2 V / 64) pairs). */
int gdn_scan_default_column_split(const gdn_batch *batch, int Hv, int K, int V, int o_mode,
                                  const gdn_device_info *dev);

/* Whether a chunk_scan_o over this batch capacity should take the folded WY form (no gk):
 * on Hopper with the warpgroup scan from 16 (sequence, head) pairs, elsewhere where the
 * planner would choose the column-split kernel anyway, unless GDN_CHUNK_H_COLUMN_SPLIT says
 * otherwise. */
int gdn_scan_fold_default(const gdn_batch *batch, int Hv, int K, int V, const gdn_device_info *dev);

/* The built kernels: (kernel, BV, warps) pairs (col 0 row groups, 1 column split, 2 its
 * warpgroup form, 3 the key-row warpgroup scan). */
int gdn_scan_supported(int K, int col, int bv, int warps);
/* The warpgroup kernels are built (sm_90a) and run here: K = 128, compute capability 9.0;
 * gdn_scan_hopper_wg: and GDN_CHUNK_H_WGMMA is not 0. */
int gdn_scan_wgmma_device(int K, const gdn_device_info *dev);
int gdn_scan_hopper_wg(int K, const gdn_device_info *dev);
/* Chunks per sequence at the batch capacity, on average. */
int64_t gdn_scan_mean_chunks(const gdn_batch *b);

/* The key-row warpgroup scan (scan_plan_key_rows.c): plans it where GDN_CHUNK_H_KEY_ROWS=1
 * asks for it, or where no override names another kernel and its default takes the problem
 * (*taken = 1, cfg filled); *taken = 0 leaves the plan to the other kernels. env_*: the other
 * scan knobs as gdn_scan_plan read them. */
gdn_status gdn_scan_plan_key_rows(const gdn_scan_problem *pb, const gdn_device_info *dev, int env_bv, int env_warps,
                                  int env_stages, int env_col, int env_wg, gdn_scan_config *cfg, int *taken);

gdn_scan_problem gdn_scan_problem_delta_h(const gdn_chunk_delta_h_args *a);
gdn_scan_problem gdn_scan_problem_scan_o(const gdn_chunk_scan_o_args *a);

gdn_status gdn_scan_validate(const gdn_scan_problem *pb);
gdn_status gdn_scan_plan(const gdn_scan_problem *pb, const gdn_device_info *dev, gdn_scan_config *cfg);
/* Validates, checks cfg against the problem, fills kernel params and the grid size. */
gdn_status gdn_scan_prepare(const gdn_scan_problem *pb, const gdn_scan_config *cfg, gdn_scan_params *prm,
                            int64_t *grid);
/* The transition pass of a segmented batch from the main pass's params: no outputs, the
 * o-free kernel mode (*o_mode), identity blocks in the grid. */
void gdn_scan_transition_params(const gdn_scan_params *main, const gdn_scan_config *cfg, const gdn_batch *batch,
                                gdn_scan_params *prm, int64_t *grid, int *o_mode);

#ifdef __cplusplus
}
#endif
#endif
