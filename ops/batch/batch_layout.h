/* Internal: layout of the batch workspace (header, chunk tables, copies of the
 * descriptor, tables of written rows, scan segments). */
#ifndef GDN_BATCH_LAYOUT_H
#define GDN_BATCH_LAYOUT_H

#include <stddef.h>
#include "gdn/batch.h"
#include "gdn/batch_setup.h"

static inline size_t gdn_align16(size_t x) { return (x + 15u) & ~(size_t)15u; }

typedef struct gdn_batch_layout {
  size_t header, chunk_offsets, chunk_seq, cu_seqlens, slots_in, slots_out, out_table, ckpt_offsets, ckpt_table,
      segments, seq_segments, total;
  int32_t out_table_size, ckpt_table_size, max_segments;
} gdn_batch_layout;

/* Open-addressing tables of the rows the batch writes (distinct output slots, distinct
 * checkpoint rows): sized from the capacities alone (twice the most entries), so the
 * workspace does not depend on the pool's size. */
static inline int32_t gdn_batch_table_size(int64_t entries) {
  int32_t n = 16;
  while (n < 2 * entries && n < (1 << 30)) n *= 2;
  return n;
}

static inline int32_t gdn_batch_layout_segments(const gdn_batch_setup_args *a) {
  if (a->cp_min_chunks <= 0) return 0;
  const int heads = a->cp_heads > 0 ? a->cp_heads : 1;
  return a->max_seqs + a->cp_units / heads + 1; /* N + sum(chunks) / L with L >= chunks Hv / units */
}

static inline gdn_batch_layout gdn_batch_layout_for(const gdn_batch_setup_args *a) {
  gdn_batch_layout l;
  const size_t S = (size_t)(a->max_seqs > 0 ? a->max_seqs : 0);
  const int32_t max_chunks = gdn_batch_max_chunks(a->max_tokens, a->max_seqs);
  l.out_table_size = gdn_batch_table_size((int64_t)S);
  l.ckpt_table_size = a->checkpoint_offsets ? gdn_batch_table_size(max_chunks) : 0;
  l.max_segments = gdn_batch_layout_segments(a);
  l.header = 0;
  l.chunk_offsets = gdn_align16(sizeof(gdn_batch_header));
  l.chunk_seq = l.chunk_offsets + gdn_align16((S + 1) * 4u);
  l.cu_seqlens = l.chunk_seq + gdn_align16((size_t)max_chunks * 4u + 4u);
  l.slots_in = l.cu_seqlens + gdn_align16((S + 1) * 4u);
  l.slots_out = l.slots_in + gdn_align16(S * 4u + 4u);
  l.out_table = l.slots_out + gdn_align16(S * 4u + 4u);
  l.ckpt_offsets = l.out_table + (size_t)l.out_table_size * 4u;
  l.ckpt_table = l.ckpt_offsets + (a->checkpoint_offsets ? gdn_align16(S * 4u + 4u) : 0u);
  l.segments = l.ckpt_table + (size_t)l.ckpt_table_size * 4u;
  l.seq_segments = l.segments + gdn_align16((size_t)l.max_segments * sizeof(gdn_batch_segment));
  l.total = l.seq_segments + (l.max_segments ? gdn_align16((S + 1) * 4u) : 0u);
  return l;
}

#endif
