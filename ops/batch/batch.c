/* Host side of gdn_batch_setup: workspace size, validation, the batch view. */
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "gdn/batch_setup.h"
#include "ops/batch/batch_layout.h"

size_t gdn_batch_workspace_bytes(int32_t max_seqs, int32_t max_tokens, int32_t num_slots) {
  gdn_batch_setup_args a;
  memset(&a, 0, sizeof a);
  a.max_seqs = max_seqs;
  a.max_tokens = max_tokens;
  a.num_slots = num_slots;
  return gdn_batch_layout_for(&a).total;
}

size_t gdn_batch_workspace_bytes_for(const gdn_batch_setup_args *a) { return a ? gdn_batch_layout_for(a).total : 0; }

/* Context parallelism (bench/NOTES.md): segments pay a transition pass over K extra state
 * rows and a combine pass, about 1.3x the scan's own work, so they only pay where the batch
 * leaves most of the device idle: at most SMs / 4 (sequence, head) pairs (one sequence at
 * the 32 value heads of Qwen3-Next TP1 on an H200, or up to 4 at a TP4 rank's 8), cut into
 * runs of >= 8 chunks (512 tokens) so each CTA's chain stays long next to its fixed cost;
 * and only where the capacity is such a batch: the segmented schedule's extra nodes cost
 * ~20-30 us on the batches it does not cut (H200: 8192 tokens x 64 sequences, TP4 148 vs
 * 127 us, TP1 429 vs 399; 4 x 2048 TP1 305 vs 281). */
#define GDN_CP_MIN_CHUNKS 8
#define GDN_CP_PAIRS_DIV 4

int gdn_batch_setup_context_parallel(gdn_batch_setup_args *a, int Hv, const gdn_device_info *dev) {
  if (a == NULL || dev == NULL || Hv <= 0) return -1;
  const int64_t pairs = (int64_t)(a->max_seqs > 0 ? a->max_seqs : 1) * Hv;
  if (pairs > dev->sm_count / GDN_CP_PAIRS_DIV || a->max_tokens < 2 * GDN_CP_MIN_CHUNKS * GDN_CHUNK) return -1;
  a->cp_min_chunks = GDN_CP_MIN_CHUNKS;
  a->cp_units = dev->sm_count;
  a->cp_heads = Hv;
  a->cp_max_pairs = dev->sm_count / GDN_CP_PAIRS_DIV;
  return 0;
}

int32_t gdn_batch_max_segments(const gdn_batch_setup_args *a) { return a ? gdn_batch_layout_segments(a) : 0; }


gdn_status gdn_batch_setup_validate(const gdn_batch_setup_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: args is NULL");
  if ((a->cu_seqlens == NULL) == (a->cu_seqlens64 == NULL))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: give exactly one of cu_seqlens and cu_seqlens64");
  if (a->max_seqs < 0 || a->max_tokens < 0 || a->num_slots < 0 || a->num_slots_out < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "max_seqs (%d), max_tokens (%d), num_slots (%d) and num_slots_out (%d) must be >= 0", a->max_seqs,
                    a->max_tokens, a->num_slots, a->num_slots_out);
  if (a->max_seqs > GDN_BATCH_MAX_SEQS || a->max_tokens > GDN_BATCH_MAX_TOKENS)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "max_seqs = %d / max_tokens = %d exceed the limits %d / %d", a->max_seqs,
                    a->max_tokens, GDN_BATCH_MAX_SEQS, GDN_BATCH_MAX_TOKENS);
  if (a->num_seqs_dev == NULL && (a->num_seqs < 0 || a->num_seqs > a->max_seqs))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is outside [0, max_seqs = %d]", a->num_seqs, a->max_seqs);
  if (a->slots_identity && a->slots != NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: slots_identity is set and slots is given");
  if (a->slots_out_mode < 0 || a->slots_out_mode > 2 || (a->slots_out != NULL && a->slots_out_mode != 0))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: slots_out_mode = %d (0, 1 or 2, and 0 with slots_out)",
                    a->slots_out_mode);
  if (a->slots_out_select != NULL && a->slots_out == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: slots_out_select needs slots_out");
  if (a->checkpoint_offsets != NULL && (a->checkpoint_every <= 0 || a->checkpoint_every % GDN_CHUNK != 0))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "checkpoint_every = %d is not a positive multiple of %d",
                    a->checkpoint_every, GDN_CHUNK);
  if (a->checkpoint_offsets != NULL && a->num_checkpoints < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_checkpoints = %d is negative", a->num_checkpoints);
  if (a->cp_min_chunks < 0 || (a->cp_min_chunks > 0 && (a->cp_units <= 0 || a->cp_heads <= 0)))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "context parallelism: cp_min_chunks = %d needs cp_units (%d) and cp_heads (%d) > 0",
                    a->cp_min_chunks, a->cp_units, a->cp_heads);
  if (a->workspace == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace is NULL");
  if ((uintptr_t)a->workspace % 16 != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace %p is not 16-byte aligned", a->workspace);
  size_t need = gdn_batch_workspace_bytes_for(a);
  if (a->workspace_bytes < need)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace_bytes = %zu, need %zu", a->workspace_bytes, need);
  return GDN_SUCCESS;
}

gdn_status gdn_batch_setup_view(const gdn_batch_setup_args *a, gdn_batch *b) {
  gdn_clear_last_error();
  GDN_TRY(gdn_batch_setup_validate(a));
  if (b == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch view: out pointer is NULL");
  gdn_batch_layout l = gdn_batch_layout_for(a);
  unsigned char *ws = (unsigned char *)a->workspace;
  memset(b, 0, sizeof *b);
  b->cu_seqlens = (const int32_t *)(ws + l.cu_seqlens);
  b->slots = (const int32_t *)(ws + l.slots_in);
  b->slots_out = (const int32_t *)(ws + l.slots_out);
  b->header = (const gdn_batch_header *)(ws + l.header);
  b->chunk_offsets = (const int32_t *)(ws + l.chunk_offsets);
  b->chunk_seq = (const int32_t *)(ws + l.chunk_seq);
  if (a->checkpoint_offsets) b->checkpoint_offsets = (const int32_t *)(ws + l.ckpt_offsets);
  if (l.max_segments > 0) {
    b->segments = (const gdn_batch_segment *)(ws + l.segments);
    b->seq_segments = (const int32_t *)(ws + l.seq_segments);
  }
  b->max_seqs = a->max_seqs;
  b->max_tokens = a->max_tokens;
  b->max_chunks = gdn_batch_max_chunks(a->max_tokens, a->max_seqs);
  b->max_segments = l.max_segments;
  return GDN_SUCCESS;
}
