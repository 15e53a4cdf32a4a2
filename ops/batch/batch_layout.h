/* Internal: layout of the batch workspace (header, chunk tables, slot bitmap). */
#ifndef GDN_BATCH_LAYOUT_H
#define GDN_BATCH_LAYOUT_H

#include <stddef.h>
#include "gdn/batch.h"

static inline size_t gdn_align16(size_t x) { return (x + 15u) & ~(size_t)15u; }

typedef struct gdn_batch_layout {
  size_t header, chunk_offsets, chunk_seq, bitmap, total;
} gdn_batch_layout;

static inline gdn_batch_layout gdn_batch_layout_of(int32_t max_seqs, int32_t max_tokens, int32_t num_slots) {
  gdn_batch_layout l;
  l.header = 0;
  l.chunk_offsets = gdn_align16(sizeof(gdn_batch_header));
  l.chunk_seq = l.chunk_offsets + gdn_align16(((size_t)max_seqs + 1) * 4u);
  l.bitmap = l.chunk_seq + gdn_align16((size_t)gdn_batch_max_chunks(max_tokens, max_seqs) * 4u + 4u);
  l.total = l.bitmap + gdn_align16(((size_t)(num_slots > 0 ? num_slots : 0) + 31u) / 32u * 4u + 4u);
  return l;
}

#endif
