/* Internal: the operators of one GDN forward over one workspace, shared by the bucketed
 * prefill plan (graph/prefill.c: arguments bound once, nodes in graphs) and the per-call
 * entry (graph/forward.c: arguments bound per call, launched on the caller's stream).
 *
 *   batch_setup -> prologue -> chunk_intra -> chunk_scan_o (1 or 3 kernels)
 *               \-> output tail zeroing
 *
 * Policy (fixed at plan time from shape, capacity and device): the folded WY form where the
 * scan takes its column-split kernel, and context-parallel segments where a batch of the
 * capacity can have fewer (sequence, head) pairs than the device holds. Then the graph holds
 * both scan schedules after chunk_intra, each planned for its own parallelism; the device
 * decides per batch which one runs (the other exits at once). */
#ifndef GDN_GRAPH_FORWARD_OPS_H
#define GDN_GRAPH_FORWARD_OPS_H

#include <cuda_runtime_api.h>
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/chunk_intra.h"
#include "gdn/gated_rmsnorm.h"
#include "gdn/prefill.h"
#include "gdn/prologue.h"
#include "graph/forward_check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Plan-time choices. */
typedef struct gdn_fwd_policy {
  int fold;          /* chunk_intra stores only tu; the scan applies the WY form */
  int cp_min_chunks; /* > 0: context-parallel segments of at least this many chunks */
  int cp_units;      /* (segment, head) pairs that fill the device at the scan's config */
  int cp_max_pairs;  /* cut only batches of at most this many (sequence, head) pairs */
  int checkpoints;   /* the batch workspace reserves the checkpoint table */
  int norm;          /* the output's gated RMSNorm: 0 none, 1 in the scan, 2 gdn_gated_rmsnorm after it */
} gdn_fwd_policy;

/* Byte offsets of the workspace regions (256-byte aligned), for a capacity. */
typedef struct gdn_fwd_layout {
  size_t batch, beta, g_cum, gk_cum, qg, kg, qf, kf, aqk, w, u, cp, total;
  size_t batch_bytes, cp_bytes;
} gdn_fwd_layout;

/* The bound operators. */
typedef struct gdn_fwd {
  gdn_batch_setup_args setup;
  gdn_batch batch;
  gdn_prologue_args pro;
  gdn_prologue_config pro_cfg;
  gdn_chunk_intra_args intra;
  gdn_chunk_intra_config intra_cfg;
  gdn_chunk_scan_o_args scan;     /* one segment per sequence (when_cut -1 with scan_cp) */
  gdn_scan_config scan_cfg;
  gdn_chunk_scan_o_args scan_cp;  /* context parallelism: the segmented schedule (when_cut 1) */
  gdn_scan_config scan_cp_cfg;
  int cp;
  gdn_gated_rmsnorm_args norm;    /* policy norm 2: o normalized in place after the scan */
  gdn_gated_rmsnorm_config norm_cfg;
  int norm_mode;                  /* the policy's norm */
  gdn_tensor o;
  int sm_count;
} gdn_fwd;

/* Where the batch descriptor comes from (device memory) and how slots map to rows. */
typedef struct gdn_fwd_batch_src {
  const int32_t *cu_seqlens;
  const int64_t *cu_seqlens64;
  const int32_t *num_seqs_dev;
  int32_t num_seqs;
  const int32_t *slots;
  int slots_identity;
  const int32_t *slots_out;
  const int32_t *slots_out_select;
  int slots_out_mode;
  int state_aliased;
  const int32_t *checkpoint_offsets;
  gdn_batch_error_record *error_record;
} gdn_fwd_batch_src;

/* Policy and layout for shape x capacity on dev (runs the scan planner); norm: the caller
 * asks for the output's gated RMSNorm. */
gdn_status gdn_fwd_policy_for(const gdn_prefill_shape *shape, gdn_prefill_bucket cap, const gdn_device_info *dev,
                              int checkpoints, int norm, gdn_fwd_policy *policy);
gdn_fwd_layout gdn_fwd_layout_of(const gdn_prefill_shape *shape, gdn_prefill_bucket cap, const gdn_fwd_policy *policy);

/* Binds the operators to tensors, batch source and workspace; `rows` is the batch
 * capacity the kernels run over (the bucket, or the call's own tokens / sequences).
 * With cfgs != NULL the launch configurations are taken from it, else planned. */
gdn_status gdn_fwd_bind(gdn_fwd *f, const gdn_prefill_shape *shape, const gdn_device_info *dev,
                        const gdn_fwd_policy *policy, const gdn_fwd_layout *layout, gdn_prefill_bucket rows,
                        const gdn_fwd_tensors *t, const gdn_fwd_batch_src *src, void *workspace, const gdn_fwd *cfgs);

/* The same over stand-in tensors of the capacity (distinct aligned addresses, never
 * dereferenced): the plan-time binding that fixes the launch configurations. */
gdn_status gdn_fwd_bind_standins(gdn_fwd *f, const gdn_prefill_shape *shape, const gdn_device_info *dev,
                                 const gdn_fwd_policy *policy, gdn_prefill_bucket cap);

/* Emission: on `stream` when graph is NULL, else as nodes after deps (*last joins them). */
gdn_status gdn_fwd_emit_setup(const gdn_fwd *f, cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *deps,
                              size_t num_deps, cudaGraphNode_t *last);
gdn_status gdn_fwd_emit_core(const gdn_fwd *f, cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *deps,
                             size_t num_deps, cudaGraphNode_t *last);

#ifdef __cplusplus
}
#endif
#endif
