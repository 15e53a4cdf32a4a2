/* Host checks of a gdn_batch view shared by the core operators. */
#include "core/check.h"
#include "gdn/batch.h"

gdn_status gdn_check_batch(const gdn_batch *b) {
  if (b == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch: NULL");
  if (b->cu_seqlens == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch.cu_seqlens is NULL");
  if (b->chunk_offsets == NULL || b->chunk_seq == NULL || b->header == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "batch.chunk_offsets/chunk_seq/header are NULL: build the batch with gdn_batch_setup");
  if (b->max_seqs < 0 || b->max_tokens < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch capacities are negative (max_seqs %d, max_tokens %d)",
                    b->max_seqs, b->max_tokens);
  int32_t need = gdn_batch_max_chunks(b->max_tokens, b->max_seqs);
  if (b->max_chunks < need)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch.max_chunks is %d, below the bound %d for %d tokens / %d sequences",
                    b->max_chunks, need, b->max_tokens, b->max_seqs);
  return GDN_SUCCESS;
}

gdn_status gdn_check_rows(const gdn_tensor *t, const char *name, int64_t capacity, const char *what) {
  if (t->sizes[0] < capacity)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[0] is %lld, below the batch's %s capacity %lld", name,
                    (long long)t->sizes[0], what, (long long)capacity);
  return GDN_SUCCESS;
}
