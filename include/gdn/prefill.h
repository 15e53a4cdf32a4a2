/* The GDN chunked prefill forward as one CUDA graph per capacity bucket.
 *
 * A plan is built once for a model shape and a set of capacity buckets (max tokens,
 * max sequences). For each bucket it adds the operators' nodes to one cudaGraph_t —
 *   batch_setup -> prologue (gates, beta, cumsums) -> chunk_intra (A, solve, w, u)
 *   -> chunk_scan_o (state scan with the output fused in, state pool updated in place)
 *   and, in parallel, zeroing of the output rows past the batch —
 * and instantiates it ONCE. Per batch, gdn_prefill_run uploads the descriptor
 * (num_seqs, cu_seqlens, slots: one copy from a pinned ring) and launches the
 * instantiated graph of the smallest bucket that fits: no capture, no instantiation,
 * no allocation, no host synchronization. The descriptor is checked on the device; an
 * invalid batch writes nothing and is reported by gdn_prefill_check_error afterwards.
 *
 * Buffers are the caller's (static addresses, as graph-based runtimes keep them): each
 * holds the largest bucket's token capacity. A plan is used on one stream at a time. */
#ifndef GDN_PREFILL_H
#define GDN_PREFILL_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the gates arrive. RAW: a, b, A_log, dt_bias (the model's projections);
 * PRECOMPUTED: the log-space gate g [T, Hv] fp32 and beta [T, Hv] (FLA's convention). */
typedef enum gdn_gate_mode { GDN_GATE_RAW = 0, GDN_GATE_PRECOMPUTED = 1 } gdn_gate_mode;

typedef struct gdn_prefill_shape {
  int Hk, Hv, K, V;    /* per tensor-parallel rank; Hk divides Hv */
  gdn_dtype dtype;     /* q, k, v, o: bf16 or fp16 */
  int use_g;           /* scalar gate g = -exp(A_log) softplus(a + dt_bias) */
  int use_gk;          /* per-key log gate input gk [T, Hv, K] (added to g) */
  int l2norm_qk;       /* q, k <- x / sqrt(sum x^2 + 1e-6) */
  float scale;         /* <= 0: K^-1/2 */
  gdn_gate_mode gate;  /* RAW (0, the default) or PRECOMPUTED */
} gdn_prefill_shape;

typedef struct gdn_prefill_io {
  gdn_tensor q, k;     /* [T_cap, Hk, K], last dim contiguous, 16-byte aligned rows */
  gdn_tensor v;        /* [T_cap, Hv, V] */
  gdn_tensor a, b;     /* GDN_GATE_RAW: [T_cap, Hv] any float dtype / strides (a only with use_g) */
  gdn_tensor A_log, dt_bias; /* GDN_GATE_RAW: [Hv] (use_g) */
  gdn_tensor gk;       /* [T_cap, Hv, K] (use_gk) */
  gdn_tensor state;    /* pool [num_slots, Hv, V, K] fp32 / bf16 / fp16, any strides */
  gdn_tensor o;        /* out [T_cap, Hv, V], dtype of q */
  gdn_tensor g, beta;  /* GDN_GATE_PRECOMPUTED: [T_cap, Hv] log-space gate (fp32, use_g) and beta */
  gdn_tensor checkpoints; /* optional out [rows, Hv, V, K]: the state after every checkpoint_every
                             tokens of each sequence (see gdn_prefill_request) */
  int checkpoint_every;   /* a positive multiple of 64 with checkpoints */
  /* Optional gated RMSNorm of the output (Qwen3-Next's RMSNormGated, norm before the gate):
   * with norm_z, o receives x * rsqrt(mean(x^2) + norm_eps) * norm_weight * silu(z) per
   * token and head, x the core's 16-bit output (gdn_gated_rmsnorm's math). Where a bucket's
   * scan owns whole rows (Hopper, K = V = 128, enough (sequence, head) pairs) it is applied
   * as the scan writes o; elsewhere gdn_gated_rmsnorm runs on o after the scan. Rows past
   * the batch stay zero. */
  gdn_tensor norm_z;      /* [T_cap, Hv, V] dtype of q, last dim contiguous, 16-byte aligned rows */
  gdn_tensor norm_weight; /* [V] any float dtype, with norm_z */
  double norm_eps;        /* 0 selects 1e-6; else finite, >= FLT_MIN */
} gdn_prefill_io;

/* A batch described on the host, for the runs that take one. */
typedef struct gdn_prefill_request {
  const int32_t *cu_seqlens;   /* [num_seqs + 1] */
  const int32_t *slots;        /* [num_seqs] initial-state rows of the pool (-1: zero), or NULL: all -1 */
  const int32_t *slots_out;    /* [num_seqs] final-state rows (-1: none; distinct), or NULL: the same as
                                  slots (in place). A row one sequence writes must not be read by
                                  another (copy-on-write of cached prefix states). */
  const int32_t *checkpoint_offsets; /* [num_seqs] first checkpoint row (-1: none); with io.checkpoints */
  int num_seqs;
} gdn_prefill_request;

/* The device descriptor the graphs read (int32 offsets into gdn_prefill_descriptor(), for a
 * plan whose largest bucket has D = gdn_prefill_descriptor_seqs() sequences):
 *   [num_seqs] [cu_seqlens: D + 1] [slots: D] [out_mode] [slots_out: D] [checkpoint_offsets: D]
 * out_mode 0: final states go back to `slots` (in place); 1: to `slots_out`. The words a
 * caller does not use may be left as the plan zeroed them. */
typedef struct gdn_prefill_descriptor_layout {
  int64_t num_seqs, cu_seqlens, slots, out_mode, slots_out, checkpoint_offsets, words;
} gdn_prefill_descriptor_layout;
gdn_prefill_descriptor_layout gdn_prefill_descriptor_layout_of(int32_t descriptor_seqs);

typedef struct gdn_prefill_bucket {
  int32_t max_tokens;
  int32_t max_seqs;
} gdn_prefill_bucket;

typedef struct gdn_prefill_plan gdn_prefill_plan;

/* Host-only validation of what gdn_prefill_plan_create takes (no device needed). */
gdn_status gdn_prefill_validate(const gdn_prefill_shape *shape, const gdn_prefill_io *io,
                                const gdn_prefill_bucket *buckets, int num_buckets);

/* Validates shape and buffers, allocates the workspace, builds and instantiates one
 * graph per bucket on `device` (the current device is restored). */
gdn_status gdn_prefill_plan_create(gdn_prefill_plan **plan, const gdn_prefill_shape *shape, const gdn_prefill_io *io,
                                   const gdn_prefill_bucket *buckets, int num_buckets, int device);
/* The same plan without graphs of its own, for runtimes that only embed the prefill in
 * their graphs (gdn_prefill_add_to_graph, add_setup_node / add_core_nodes) or launch it
 * eagerly: nothing is instantiated that would never be launched. gdn_prefill_run and
 * gdn_prefill_run_device then return GDN_ERROR_INVALID_ARGUMENT. */
gdn_status gdn_prefill_plan_create_embedded(gdn_prefill_plan **plan, const gdn_prefill_shape *shape,
                                            const gdn_prefill_io *io, const gdn_prefill_bucket *buckets,
                                            int num_buckets, int device);
void gdn_prefill_plan_destroy(gdn_prefill_plan *plan);

/* Runs a batch described on the host: cu_seqlens[num_seqs + 1], slots[num_seqs] (NULL:
 * all -1). GDN_ERROR_INVALID_ARGUMENT when no bucket holds it. */
gdn_status gdn_prefill_run(gdn_prefill_plan *plan, const int32_t *cu_seqlens, const int32_t *slots, int num_seqs,
                           cudaStream_t stream);
/* The same with copy-on-write slots and checkpoint offsets (gdn_prefill_request). */
gdn_status gdn_prefill_run_request(gdn_prefill_plan *plan, const gdn_prefill_request *request, cudaStream_t stream);
/* Same with a descriptor already on the device; num_tokens picks the bucket (the
 * device check still verifies cu_seqlens). It may be captured into a caller's graph
 * (stream capture): it then records device-to-device copies and the plan's kernels one
 * by one, and a replay reads the caller's device descriptor again. */
gdn_status gdn_prefill_run_device(gdn_prefill_plan *plan, const int32_t *cu_seqlens_dev, const int32_t *slots_dev,
                                  int num_seqs, int num_tokens, cudaStream_t stream);
/* The same operators launched one by one on the stream (for comparison and benches).
 * gdn_prefill_run, _run_request and _run_eager stage the descriptor in pinned host memory
 * that later runs reuse: they refuse to run while `stream` is capturing (a replay would
 * read whatever batch was staged last). Capture gdn_prefill_run_device or gdn_forward. */
gdn_status gdn_prefill_run_eager(gdn_prefill_plan *plan, const int32_t *cu_seqlens, const int32_t *slots, int num_seqs,
                                 cudaStream_t stream);

/* After the runs completed: GDN_ERROR_INVALID_BATCH with the detail when the device
 * rejected a batch since the last check (then cleared), else GDN_SUCCESS. */
gdn_status gdn_prefill_check_error(gdn_prefill_plan *plan);

/* For runtimes that embed the prefill in their own graph: adds bucket `bucket`'s nodes
 * to `graph` after `deps`; *last is a node that completes after all of them. The caller
 * then writes the descriptor itself to gdn_prefill_descriptor() before each launch
 * (gdn_prefill_descriptor_layout). */
gdn_status gdn_prefill_add_to_graph(gdn_prefill_plan *plan, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                    size_t num_deps, cudaGraphNode_t *last);
int32_t *gdn_prefill_descriptor(gdn_prefill_plan *plan);

/* Finer-grained pieces for assembling a larger graph (e.g. a whole layer, where conv1d
 * produces q, k, v and needs the batch tables): the batch-setup node alone, then the
 * compute nodes (prologue, chunk_intra, chunk_scan_o, output tail), whose deps must
 * include the setup node. gdn_prefill_batch_view gives the tables' device view. */
gdn_status gdn_prefill_add_setup_node(gdn_prefill_plan *plan, int bucket, cudaGraph_t graph,
                                      const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *setup);
gdn_status gdn_prefill_add_core_nodes(gdn_prefill_plan *plan, int bucket, cudaGraph_t graph,
                                      const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *last);
gdn_status gdn_prefill_batch_view(const gdn_prefill_plan *plan, int bucket, gdn_batch *batch);
/* Eager counterparts: stage + upload the descriptor (returns the bucket), then launch. */
gdn_status gdn_prefill_upload(gdn_prefill_plan *plan, const int32_t *cu_seqlens, const int32_t *slots, int num_seqs,
                              cudaStream_t stream, int *bucket);
gdn_status gdn_prefill_launch_setup(gdn_prefill_plan *plan, int bucket, cudaStream_t stream);
gdn_status gdn_prefill_launch_core(gdn_prefill_plan *plan, int bucket, cudaStream_t stream);
int gdn_prefill_descriptor_seqs(const gdn_prefill_plan *plan);

/* Accessors: NULL-safe (0, {0, 0}, -1 or NULL for a NULL plan or an index out of range,
 * with the reason as the last error). */
int gdn_prefill_num_buckets(const gdn_prefill_plan *plan);
gdn_prefill_bucket gdn_prefill_bucket_at(const gdn_prefill_plan *plan, int index);
/* Index of the smallest bucket holding the batch, or -1. */
int gdn_prefill_pick_bucket(const gdn_prefill_plan *plan, int num_tokens, int num_seqs);

#ifdef __cplusplus
}
#endif
#endif
