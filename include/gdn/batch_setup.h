/* gdn_batch_setup: checks a batch descriptor ON THE DEVICE and builds the chunk tables
 * of include/gdn/batch.h, as one single-block kernel that a graph replays per batch.
 *
 * Checks: 0 <= num_seqs <= max_seqs; cu_seqlens[0] == 0; cu_seqlens non-decreasing;
 * cu_seqlens[num_seqs] <= max_tokens; every slot in [-1, num_slots) and every output slot
 * in [-1, num_slots_out); no output row named twice (-1 may repeat); with state_aliased,
 * no sequence reads a row another one writes; checkpoint rows inside [0, num_checkpoints)
 * and disjoint. On failure the header's status is set (every core kernel then writes
 * nothing) and the optional host-visible error record gets the detail, like NCCL's
 * asynchronous errors: read it after the stream work completes.
 *
 * The kernel copies cu_seqlens (int32 or int64) and the effective slot tables into the
 * workspace, so the gdn_batch view never points at the caller's descriptor, and cuts
 * sequences into scan segments when context parallelism is asked for (cp_min_chunks > 0):
 * only when the batch has few (sequence, value head) pairs (N Hv <= cp_max_pairs), into
 * segments of max(cp_min_chunks, ceil(chunks Hv / cp_units)) chunks, so that about
 * cp_units (segment, head) pairs fill the device; decided on the device from the actual
 * lengths. */
#ifndef GDN_BATCH_SETUP_H
#define GDN_BATCH_SETUP_H

#include <cuda_runtime_api.h>
#include "gdn/batch.h"
#include "gdn/device.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Host-visible record of the last failed batch check (allocate it with
 * cudaHostAlloc(..., cudaHostAllocMapped) or gdn_batch_error_record_create). Sticky:
 * failures increment `count` and overwrite the detail; the host clears it. */
typedef struct gdn_batch_error_record {
  volatile int32_t count;
  volatile int32_t status;    /* gdn_batch_error */
  volatile int32_t index;
  volatile int32_t value;
  volatile int32_t value2;
} gdn_batch_error_record;

typedef struct gdn_batch_setup_args {
  const int32_t *cu_seqlens;   /* device [max_seqs + 1], or NULL with cu_seqlens64 */
  const int64_t *cu_seqlens64; /* device [max_seqs + 1] int64 offsets, instead of cu_seqlens */
  const int32_t *slots;        /* device [max_seqs] initial-state rows, or NULL (all GDN_PAD_SLOT) */
  const int32_t *num_seqs_dev; /* device scalar read at run time (graph replay), or NULL: use num_seqs */
  int32_t num_seqs;
  int32_t max_seqs;
  int32_t max_tokens;
  int32_t num_slots;           /* slots must lie in [-1, num_slots) */
  void *workspace;             /* device, >= gdn_batch_workspace_bytes(...) bytes, 16-byte aligned */
  size_t workspace_bytes;
  gdn_batch_error_record *error_record; /* optional, mapped host memory */
  /* Optional, zero for the in-place pool of the fields above: */
  int slots_identity;          /* 1: sequence i reads row i (slots must be NULL) */
  const int32_t *slots_out;    /* device [max_seqs] final-state rows; NULL: slots_out_mode */
  int slots_out_mode;          /* with slots_out NULL: 0 the same rows as slots, 1 row i, 2 none (-1) */
  const int32_t *slots_out_select; /* device flag read at run time, with slots_out: 0 the same rows
                                      as slots, 1 the rows of slots_out; NULL: always slots_out */
  int32_t num_slots_out;       /* output rows lie in [-1, num_slots_out); 0: num_slots */
  int state_aliased;           /* input and output rows index the same memory */
  const int32_t *checkpoint_offsets; /* device [max_seqs], or NULL: no checkpoints */
  int32_t checkpoint_every;    /* tokens, a positive multiple of 64 (with checkpoint_offsets) */
  int32_t num_checkpoints;     /* rows of the checkpoint tensor */
  int32_t cp_min_chunks;       /* > 0: build scan segments (context parallelism), see above */
  int32_t cp_units;            /* (segment, value head) pairs that fill the device */
  int32_t cp_heads;            /* Hv */
  int32_t cp_max_pairs;        /* segment only batches of at most this many (sequence, head) pairs */
} gdn_batch_setup_args;

/* Turns on context parallelism with the library's policy for Hv value heads on `dev`:
 * batches of at most SMs / 4 (sequence, head) pairs are cut into segments of >= 8 chunks,
 * about one (segment, head) pair per SM (the column-split scan's one CTA per SM at
 * K = V = 128), where the capacity itself is such a batch (max_seqs x Hv within the
 * bound; max_seqs 0: not considered): the segmented schedule costs the batches it does
 * not cut more than a rare short batch gains. Returns 0, or -1 (nothing set) where that
 * does not hold or no batch would ever be cut (max_tokens under 16 chunks). */
int gdn_batch_setup_context_parallel(gdn_batch_setup_args *args, int Hv, const gdn_device_info *dev);

/* Capacity of the segment table for cp_min_chunks > 0 (0 otherwise). */
int32_t gdn_batch_max_segments(const gdn_batch_setup_args *args);

/* Workspace of the in-place pool form (no checkpoints, no segments); args form for all. */
size_t gdn_batch_workspace_bytes(int32_t max_seqs, int32_t max_tokens, int32_t num_slots);
size_t gdn_batch_workspace_bytes_for(const gdn_batch_setup_args *args);

gdn_status gdn_batch_setup_validate(const gdn_batch_setup_args *args);
/* The gdn_batch view the core operators take (pointers into the workspace). */
gdn_status gdn_batch_setup_view(const gdn_batch_setup_args *args, gdn_batch *batch);
gdn_status gdn_batch_setup_launch(const gdn_batch_setup_args *args, cudaStream_t stream);
gdn_status gdn_batch_setup_add_node(const gdn_batch_setup_args *args, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                    size_t num_deps, cudaGraphNode_t *node);

gdn_status gdn_batch_error_record_create(gdn_batch_error_record **record);
void gdn_batch_error_record_destroy(gdn_batch_error_record *record);
/* GDN_SUCCESS when no failure was recorded; else GDN_ERROR_INVALID_BATCH with the detail
 * as the last-error message, and the record is cleared. Call after the work completed. */
gdn_status gdn_batch_error_record_check(gdn_batch_error_record *record);

#ifdef __cplusplus
}
#endif
#endif
