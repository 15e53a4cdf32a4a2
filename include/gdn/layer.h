/* The whole Gated DeltaNet layer prefill (Qwen3-Next style) as ONE CUDA graph per capacity
 * bucket, with optional tensor parallelism (NCCL all-reduce inside the graph).
 *
 * Per rank, for a packed batch x [T, hidden] (T = cu_seqlens[num_seqs]):
 *   mixed  = x W_in^T                                  in_proj   [T, Dtot]   (cuBLASLt)
 *   q,k,v  = silu(causal_conv1d(mixed[:, 0:D]))        conv1d    (conv-state pool per slot)
 *   o      = GDN(q, k, v, a, b; A_log, dt_bias)        chunked prefill core (state pool per slot)
 *            with l2norm(q), l2norm(k), g = -exp(A_log) softplus(a + dt_bias), beta = sigmoid(b)
 *   normed = rmsnorm(o) * norm_weight * silu(z)        gated RMSNorm, per (token, value head)
 *   y      = normed W_out^T                            out_proj  [T, hidden] (cuBLASLt)
 *   y      = sum over ranks (y)                        NCCL all-reduce, in place (with a comm)
 *
 * Row layout of W_in [Dtot, hidden] (the rank's shard), Dtot = 2*Hk*K + 2*Hv*V + 2*Hv:
 *   rows [0, Hk*K)                       q, key head h at rows h*K .. h*K+K-1
 *   rows [Hk*K, 2*Hk*K)                  k, same per key head
 *   rows [2*Hk*K, D),  D = 2*Hk*K+Hv*V   v, value head h at rows 2*Hk*K + h*V ..
 *   rows [D, D + Hv*V)                   z (output gate), value head h at D + h*V ..
 *   rows [D + Hv*V, D + Hv*V + Hv)       b (beta logit), one row per value head
 *   rows [D + Hv*V + Hv, Dtot)           a (decay input), one row per value head
 * i.e. the conv channels q|k|v first (the conv weight rows follow the same channel order),
 * then z, b, a. Value head h uses key head h / (Hv/Hk). Checkpoints store Qwen3-Next's
 * in_proj_qkvz / in_proj_ba grouped per key head ([q_j k_j v_group z_group] and
 * [b_group a_group]); the runtime permutes those rows into this layout once at load time
 * (the conv1d weight is already in q|k|v channel order). Tensor parallelism: rank r of R
 * holds key heads [r*Hk_full/R, (r+1)*Hk_full/R) and value heads [r*Hv_full/R, ...) in every
 * block (q, k, v, z, b, a rows; conv channels; A_log, dt_bias entries; W_out columns
 * [h*V, h*V+V) of its value heads; pool heads/channels); norm_weight [V] is shared. The
 * per-rank y is a partial sum; the all-reduce makes it the full layer output on every rank.
 *
 * A plan is built once (per rank) for a shape, the rank's weights, the caller's static
 * buffers and pools, a set of capacity buckets and an optional communicator. For each
 * bucket (max_tokens T_b, max_seqs) it builds and instantiates ONE graph:
 *   in_proj (first T_b rows of x) ─┐
 *   batch setup ───────────────────┴─> conv1d -> prologue -> chunk_intra -> chunk_scan_o ─┐
 *                                             └─> zeroing of o rows past the batch ───────┴─>
 *   [gated RMSNorm] -> out_proj (first T_b rows of y) [-> ncclAllReduce(sum) in place on y's first T_b rows]
 * The gated RMSNorm (with z) is applied as chunk_scan_o writes o where the bucket's scan owns
 * whole rows (gdn_prefill_io.norm_z), else it is a node of its own after the scan and the
 * zeroing; either way it writes out_proj's input directly (rows past the batch 0).
 * gdn_layer_run uploads the batch descriptor (one copy from a pinned ring) and launches the
 * smallest bucket's graph: no capture, no instantiation, no allocation, no host sync.
 *
 * Buffers: x [T_cap, hidden] and y [T_cap, hidden] are the caller's (static addresses),
 * T_cap >= the largest bucket. After a batch of T tokens in bucket b: y rows < T hold the
 * layer output, rows [T, T_b) are 0, rows >= T_b are not written. x is only read; its rows
 * in [T, T_b) go through in_proj but reach nothing else (they may hold anything, NaN
 * included). The pools are updated in place for the slots the batch names (slot -1: zero
 * initial state, nothing kept).
 *
 * Invalid batches (checked on the device: see gdn/batch_setup.h) leave both pools untouched
 * and are reported by gdn_layer_check_error; y's first T_b rows are then unspecified (the
 * matmuls and the all-reduce still run, so every rank stays in step).
 *
 * A plan is used on one stream at a time, from one host thread at a time. */
#ifndef GDN_LAYER_H
#define GDN_LAYER_H

#include <cuda_runtime_api.h>
#include <stdint.h>
#include "gdn/allreduce.h" /* ncclComm_t */
#include "gdn/prefill.h"   /* gdn_prefill_bucket */
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_layer_shape {
  int hidden;        /* model hidden size (in_proj input, out_proj output) */
  int Hk, Hv, K, V;  /* per rank; Hk divides Hv; K in {64, 128, 256}; V a multiple of 32 */
  int W;             /* conv kernel width, 2..4 (Qwen3-Next: 4) */
  gdn_dtype dtype;   /* bf16 or fp16: x, y, W_in, W_out, activations, conv-state pool */
  double rms_eps;    /* gated RMSNorm epsilon; 0: 1e-6 (Qwen3-Next uses 1e-6); else finite, >= FLT_MIN */
  int use_g;         /* scalar decay gate from a, A_log, dt_bias (Qwen3-Next: 1) */
  int l2norm_qk;     /* l2-normalize q and k per head (Qwen3-Next: 1) */
  float scale;       /* <= 0: K^-1/2 */
} gdn_layer_shape;

/* Column / row offsets of the blocks of the in_proj output (see the layout above). */
typedef struct gdn_layer_layout {
  int64_t q, k, v; /* conv channels: q at 0, k at Hk*K, v at 2*Hk*K */
  int64_t D;       /* conv channels 2*Hk*K + Hv*V (= offset of z) */
  int64_t z, b, a; /* D, D + Hv*V, D + Hv*V + Hv */
  int64_t Dtot;    /* rows of W_in: D + Hv*V + 2*Hv */
} gdn_layer_layout;

static inline gdn_layer_layout gdn_layer_layout_of(int Hk, int Hv, int K, int V) {
  gdn_layer_layout l;
  l.q = 0;
  l.k = (int64_t)Hk * K;
  l.v = 2 * (int64_t)Hk * K;
  l.D = l.v + (int64_t)Hv * V;
  l.z = l.D;
  l.b = l.z + (int64_t)Hv * V;
  l.a = l.b + Hv;
  l.Dtot = l.a + Hv;
  return l;
}

/* The rank's weights (device tensors, read only, kept by address: they must outlive the plan). */
typedef struct gdn_layer_weights {
  gdn_tensor w_in;        /* [Dtot, hidden] dtype, last dim contiguous (row stride >= hidden) */
  gdn_tensor conv_weight; /* [D, W] fp32 or dtype, any strides (PyTorch [D, 1, W] squeezed) */
  gdn_tensor conv_bias;   /* [D] fp32 or dtype; optional (Qwen3-Next has none) */
  gdn_tensor A_log;       /* [Hv] float (use_g) */
  gdn_tensor dt_bias;     /* [Hv] float (use_g) */
  gdn_tensor norm_weight; /* [V] float, any stride */
  gdn_tensor w_out;       /* [hidden, Hv*V] dtype, last dim contiguous */
} gdn_layer_weights;

/* The caller's static buffers and pools (device). */
typedef struct gdn_layer_io {
  gdn_tensor x;          /* in  [T_cap, hidden] dtype, last dim contiguous */
  gdn_tensor y;          /* out [T_cap, hidden] dtype, last dim contiguous; disjoint from x and the weights */
  gdn_tensor state;      /* recurrent-state pool [num_slots, Hv, V, K] fp32, any strides */
  gdn_tensor conv_state; /* conv-state pool [num_slots, W-1, D] dtype, last dim contiguous; same num_slots */
} gdn_layer_io;

typedef struct gdn_layer_plan gdn_layer_plan;

/* Validates everything, allocates the internal activations (mixed [T_cap, Dtot], q, k, v,
 * o, normed) and the prefill workspace, plans every operator once per bucket (one
 * cuBLASLt plan per bucket and projection), builds and instantiates one graph per bucket
 * on `device` (the current device is restored).
 *
 * comm: NULL = single rank (no all-reduce; y is this rank's partial sum when the weights
 * are a shard). With a communicator (blocking, of `device`), the all-reduce is captured
 * into every bucket's graph: every rank must then create its plan with the same buckets,
 * concurrently (one host thread per rank: NCCL may connect ranks during the capture), and
 * run the same batches. NCCL failures return GDN_ERROR_NCCL with NCCL's message. */
gdn_status gdn_layer_plan_create(gdn_layer_plan **plan, const gdn_layer_shape *shape, const gdn_layer_weights *weights,
                                 const gdn_layer_io *io, const gdn_prefill_bucket *buckets, int num_buckets,
                                 ncclComm_t comm, int device);
/* Frees everything the plan owns, after the work launched with it has completed (the
 * communicator stays the caller's). NULL is a no-op. */
void gdn_layer_plan_destroy(gdn_layer_plan *plan);

/* Runs a batch described on the host: cu_seqlens[num_seqs + 1], slots[num_seqs] (NULL:
 * all -1): one descriptor copy + one cudaGraphLaunch of the smallest bucket holding it, on
 * `stream` (a stream of the plan's device, that device current). GDN_ERROR_INVALID_ARGUMENT
 * when no bucket holds it (nothing is launched). */
gdn_status gdn_layer_run(gdn_layer_plan *plan, const int32_t *cu_seqlens, const int32_t *slots, int num_seqs,
                         cudaStream_t stream);
/* The same operators launched one by one on `stream` (for comparison and benchmarks);
 * sets the plan's device for the call. Same results as gdn_layer_run. */
gdn_status gdn_layer_run_eager(gdn_layer_plan *plan, const int32_t *cu_seqlens, const int32_t *slots, int num_seqs,
                               cudaStream_t stream);
/* After the runs completed: GDN_ERROR_INVALID_BATCH with the detail when the device
 * rejected a batch since the last check (then cleared), else GDN_SUCCESS. */
gdn_status gdn_layer_check_error(gdn_layer_plan *plan);

int gdn_layer_num_buckets(const gdn_layer_plan *plan);
/* Buckets in ascending order (max_tokens, then max_seqs). */
gdn_prefill_bucket gdn_layer_bucket_at(const gdn_layer_plan *plan, int index);
/* Index of the smallest bucket holding the batch, or -1. */
int gdn_layer_pick_bucket(const gdn_layer_plan *plan, int num_tokens, int num_seqs);
/* The bucket's graph (owned by the plan; for inspection, e.g. cudaGraphDebugDotPrint). */
cudaGraph_t gdn_layer_graph(const gdn_layer_plan *plan, int bucket);
/* Number of ranks of the plan's communicator (1 without one). */
int gdn_layer_num_ranks(const gdn_layer_plan *plan);

/* Communicators for tensor parallelism inside one process: one per local GPU (devs NULL:
 * devices 0..ndev-1), via ncclCommInitAll (gdn_nccl_comm_init_all). On H100/H200 set
 * NCCL_NVLS_ENABLE=0 in the environment first. Free each with gdn_layer_comm_destroy,
 * every rank from its own thread (destruction may wait for the other ranks). */
gdn_status gdn_layer_comm_init_all(int ndev, const int *devs, ncclComm_t *comms);
gdn_status gdn_layer_comm_destroy(ncclComm_t comm);

#ifdef __cplusplus
}
#endif
#endif
