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
  float scale;
  int o_mode;
} gdn_scan_problem;

gdn_scan_problem gdn_scan_problem_delta_h(const gdn_chunk_delta_h_args *a);
gdn_scan_problem gdn_scan_problem_scan_o(const gdn_chunk_scan_o_args *a);

gdn_status gdn_scan_validate(const gdn_scan_problem *pb);
gdn_status gdn_scan_plan(const gdn_scan_problem *pb, const gdn_device_info *dev, gdn_scan_config *cfg);
/* Validates, checks cfg against the problem, fills kernel params and the grid size. */
gdn_status gdn_scan_prepare(const gdn_scan_problem *pb, const gdn_scan_config *cfg, gdn_scan_params *prm,
                            int64_t *grid);

#ifdef __cplusplus
}
#endif
#endif
