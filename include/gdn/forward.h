/* gdn_forward: the whole GDN chunked prefill forward as one per-call entry, for runtimes
 * that capture their own CUDA graphs (torch.cuda.graph, cudaStreamBeginCapture).
 *
 * Plan (host, outside any capture, once per shape x capacity x device): fixes every
 * kernel's launch configuration from the shape, the capacity (max tokens, max sequences)
 * and the device, and tells how many workspace bytes a call needs. No device memory is
 * allocated by the plan except a small mapped host record for device-side batch errors.
 *
 * Call: every tensor is given per call (pointers may change every call), the batch is
 * described in device memory (cu_seqlens, optional slots), the workspace is the caller's.
 * A call issues only kernel launches on `stream`: no host synchronization, no host read
 * of device data, no allocation, no graph launch, no host staging. So it may be captured
 * by any stream capture, and a replay with new data in the same buffers and a new batch
 * of the same capacity computes that batch. The batch is checked on the device; an
 * invalid batch writes nothing (o, state_out, checkpoints) and is reported by
 * gdn_forward_check_error after the work completed.
 *
 * Math and conventions: FLA's chunk_gated_delta_rule (docs/math.md). Per sequence and value
 * head, with S the [K x V] state:  S_t = e^{g_t} (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,
 * o_t = scale S_t^T q_t. States are stored transposed, [V][K] per head (FlashInfer / TRT-LLM
 * pool layout); FLA's [K][V] states are the same tensors with the last two strides swapped. */
#ifndef GDN_FORWARD_H
#define GDN_FORWARD_H

#include <cuda_runtime_api.h>
#include "gdn/device.h"
#include "gdn/prefill.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_forward_args {
  /* q, k [T, Hk, K]; v, o [T, Hv, V] (o: q's dtype). Last dim contiguous, rows 16-byte
   * aligned. T >= cu_seqlens[N]; rows of o past cu_seqlens[N] are zeroed. */
  gdn_tensor q, k, v, o;
  /* Gates, by shape.gate:
   *   GDN_GATE_RAW:         a [T, Hv] (use_g), b [T, Hv], A_log [Hv] (use_g), dt_bias [Hv] (use_g)
   *   GDN_GATE_PRECOMPUTED: g [T, Hv] fp32 log-space gate (use_g), beta [T, Hv] any float dtype
   * Any float dtype and strides unless said. gk [T, Hv, K] (use_gk): per-key log gate. */
  gdn_tensor a, b, A_log, dt_bias;
  gdn_tensor g, beta;
  gdn_tensor gk;
  /* The batch: cu_seqlens [N + 1] int32 or int64 in device memory, N <= capacity.max_seqs
   * (trailing empty sequences are allowed: a runtime can pad a fixed-size tensor). */
  gdn_tensor cu_seqlens;
  /* States, [rows, Hv, V, K] fp32 / bf16 / fp16, any strides (FLA's [.., K, V] by strides).
   * state_in (optional): initial state of sequence i is row slots_in[i] (-1: zero), or
   *   row i when slots_in is NULL; absent: zero initial states.
   * state_out (optional): final state of sequence i goes to row slots_out[i] (-1: not
   *   written; rows must be distinct), or row i when slots_out is NULL.
   * An in-place pool is state_in = state_out = pool, slots_in = slots_out = slots. When
   * state_in and state_out share memory, a row written by one sequence must not be read
   * by another (checked on the device). Math is fp32; 16-bit states are rounded once. */
  gdn_tensor state_in, state_out;
  const int32_t *slots_in, *slots_out; /* device [N] or NULL */
  /* Prefix-cache checkpoints (optional): the state after every checkpoint_every tokens of
   * each sequence (checkpoint_every a positive multiple of 64): sequence i of length L
   * writes floor(L / checkpoint_every) rows of checkpoints [rows, Hv, V, K] (fp32 / bf16 /
   * fp16, any strides) starting at row checkpoint_offsets[i] (device int32 [N]; -1: none). */
  gdn_tensor checkpoints;
  const int32_t *checkpoint_offsets;
  int checkpoint_every;
} gdn_forward_args;

typedef struct gdn_forward_plan gdn_forward_plan;

/* Host-only planning for `shape` (gdn_prefill_shape: heads, dims, dtype, gating, l2norm,
 * scale) and `capacity` on `device`. Validates the shape; the tensors come per call. */
gdn_status gdn_forward_plan_create(gdn_forward_plan **plan, const gdn_prefill_shape *shape,
                                   gdn_prefill_bucket capacity, int device);
void gdn_forward_plan_destroy(gdn_forward_plan *plan);

/* Workspace one call needs (bytes, a multiple of 256); the workspace must be 256-byte
 * aligned and not be used by another call that runs at the same time. */
size_t gdn_forward_workspace_bytes(const gdn_forward_plan *plan);

/* Validates every argument on the host (the message names it: "args.q: ..."), then
 * launches the forward on `stream`. Nothing is launched when validation fails. The
 * current device must be the plan's. */
gdn_status gdn_forward(const gdn_forward_plan *plan, const gdn_forward_args *args, void *workspace,
                       size_t workspace_bytes, cudaStream_t stream);

/* Validation alone (no launch), e.g. for a Python layer's error messages. */
gdn_status gdn_forward_validate(const gdn_forward_plan *plan, const gdn_forward_args *args);

/* After the calls completed: GDN_ERROR_INVALID_BATCH with the detail when the device
 * rejected a batch since the last check (then cleared), else GDN_SUCCESS. */
gdn_status gdn_forward_check_error(gdn_forward_plan *plan);

#ifdef __cplusplus
}
#endif
#endif
