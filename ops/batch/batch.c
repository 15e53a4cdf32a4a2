/* Host side of gdn_batch_setup: workspace size, validation, the batch view. */
#include <stdint.h>
#include "core/check.h"
#include "gdn/batch_setup.h"
#include "ops/batch/batch_layout.h"

size_t gdn_batch_workspace_bytes(int32_t max_seqs, int32_t max_tokens, int32_t num_slots) {
  return gdn_batch_layout_of(max_seqs, max_tokens, num_slots).total;
}

gdn_status gdn_batch_setup_validate(const gdn_batch_setup_args *a) {
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch setup: args is NULL");
  if (a->cu_seqlens == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "cu_seqlens is NULL");
  if (a->max_seqs < 0 || a->max_tokens < 0 || a->num_slots < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "max_seqs (%d), max_tokens (%d) and num_slots (%d) must be >= 0",
                    a->max_seqs, a->max_tokens, a->num_slots);
  if (a->num_seqs_dev == NULL && (a->num_seqs < 0 || a->num_seqs > a->max_seqs))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is outside [0, max_seqs = %d]", a->num_seqs, a->max_seqs);
  if (a->workspace == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace is NULL");
  if ((uintptr_t)a->workspace % 16 != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace %p is not 16-byte aligned", a->workspace);
  size_t need = gdn_batch_workspace_bytes(a->max_seqs, a->max_tokens, a->num_slots);
  if (a->workspace_bytes < need)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace_bytes = %zu, need %zu", a->workspace_bytes, need);
  return GDN_SUCCESS;
}

gdn_status gdn_batch_setup_view(const gdn_batch_setup_args *a, gdn_batch *b) {
  GDN_TRY(gdn_batch_setup_validate(a));
  if (b == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch view: out pointer is NULL");
  gdn_batch_layout l = gdn_batch_layout_of(a->max_seqs, a->max_tokens, a->num_slots);
  unsigned char *ws = (unsigned char *)a->workspace;
  b->cu_seqlens = a->cu_seqlens;
  b->slots = a->slots;
  b->header = (const gdn_batch_header *)(ws + l.header);
  b->chunk_offsets = (const int32_t *)(ws + l.chunk_offsets);
  b->chunk_seq = (const int32_t *)(ws + l.chunk_seq);
  b->max_seqs = a->max_seqs;
  b->max_tokens = a->max_tokens;
  b->max_chunks = gdn_batch_max_chunks(a->max_tokens, a->max_seqs);
  return GDN_SUCCESS;
}
