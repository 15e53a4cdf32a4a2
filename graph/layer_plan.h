/* Internal: the layer plan's state, shared by graph/layer.c (creation, graphs) and
 * graph/layer_run.c (run paths). */
#ifndef GDN_GRAPH_LAYER_PLAN_H
#define GDN_GRAPH_LAYER_PLAN_H

#include "gdn/conv1d.h"
#include "gdn/device.h"
#include "gdn/layer.h"
#include "gdn/linear.h"
#include "gdn/prefill.h"

#define GDN_LAYER_MAX_BUCKETS 16

/* One bucket's operator arguments over the plan's buffers, its cuBLASLt plans and graph. */
typedef struct gdn_layer_bucket_ops {
  gdn_prefill_bucket cap;
  gdn_batch batch;                 /* the prefill plan's tables for this bucket */
  gdn_linear_args in_args;         /* x[0:T_b] -> mixed[0:T_b] */
  gdn_linear_config *in_cfg;
  gdn_conv1d_args conv;            /* mixed[:, 0:D] -> q, k, v */
  gdn_conv1d_config conv_cfg;
  gdn_linear_args out_args;        /* normed[0:T_b] -> y[0:T_b] */
  gdn_linear_config *out_cfg;
  void *reduce_buf;                /* y's first T_b rows (contiguous), all-reduced in place */
  size_t reduce_count;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
} gdn_layer_bucket_ops;

struct gdn_layer_plan {
  int device;
  gdn_device_info dev;
  gdn_layer_shape shape;
  gdn_layer_layout lay;
  gdn_layer_weights w;
  gdn_layer_io io;
  ncclComm_t comm;                 /* NULL: single rank */
  int nranks;
  int64_t t_cap;                   /* largest bucket's max_tokens */
  int64_t ld;                      /* row stride of mixed: Dtot rounded up to 16 bytes */
  void *mixed, *q, *k, *v, *normed;
  gdn_prefill_plan *prefill;       /* the GDN core over q, k, v, a, b and z -> normed and the state pool */
  cudaStream_t capture;            /* non-blocking stream of `device`, only to capture NCCL */
  int num_buckets;
  gdn_layer_bucket_ops b[GDN_LAYER_MAX_BUCKETS];
};

#endif
