/* Internal (host): the caller's tensors of one forward and their checks against the
 * shape, shared by the prefill plan and the per-call entry. */
#ifndef GDN_GRAPH_FORWARD_CHECK_H
#define GDN_GRAPH_FORWARD_CHECK_H

#include "gdn/prefill.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_fwd_tensors {
  gdn_tensor q, k, v, o;
  gdn_tensor a, b, A_log, dt_bias; /* GDN_GATE_RAW */
  gdn_tensor g, beta;              /* GDN_GATE_PRECOMPUTED */
  gdn_tensor gk;
  gdn_tensor state_in, state_out, checkpoints;
  int checkpoint_every;
  gdn_tensor norm_z, norm_weight; /* optional: the gated RMSNorm of o (gdn_prefill_io) */
  double norm_eps;
} gdn_fwd_tensors;

gdn_status gdn_fwd_check_shape(const gdn_prefill_shape *shape);
/* Every tensor against the shape and `rows` tokens; messages name "<prefix>.<field>". */
gdn_status gdn_fwd_check_tensors(const gdn_prefill_shape *shape, const gdn_fwd_tensors *t, int64_t rows,
                                 const char *prefix);
/* Same memory, dtype, sizes and strides. */
int gdn_fwd_same_view(const gdn_tensor *a, const gdn_tensor *b);

#ifdef __cplusplus
}
#endif
#endif
