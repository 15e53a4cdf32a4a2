/* The packed variable-length batch as the core operators see it on the device.
 *
 * A batch of N sequences is packed along the token axis; cu_seqlens[N+1] gives the
 * offsets. Chunks of BT = 64 tokens start at each sequence start (the last chunk of
 * a sequence may be partial). Sequence n owns chunks [chunk_offsets[n], chunk_offsets[n+1]).
 *
 * gdn_batch_setup (ops/batch) checks a descriptor on the device and builds these
 * tables inside the stream or graph, so a graph replayed per batch needs no host work
 * beyond uploading cu_seqlens and slots. Every core kernel reads the header first:
 * when the batch is invalid it writes nothing; blocks past the batch's sequences or
 * chunks exit at once. Grids are sized from the max_* capacities. */
#ifndef GDN_BATCH_H
#define GDN_BATCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_CHUNK 64      /* BT: chunk length of the chunked form */
/* Capacities the int32 offsets and tables hold: 2^24 sequences (the device error record
 * packs the failing index into 24 bits) and tokens such that every chunk bound stays in int32. */
#define GDN_BATCH_MAX_SEQS (1 << 24)
#define GDN_BATCH_MAX_TOKENS (INT32_MAX - 64 * GDN_BATCH_MAX_SEQS)
#define GDN_PAD_SLOT (-1) /* slot index meaning: zero initial state, final state not written */

/* Device-resident header written by gdn_batch_setup. */
typedef struct gdn_batch_header {
  int32_t status;      /* 0 valid, else a gdn_batch_error code */
  int32_t num_seqs;
  int32_t num_tokens;  /* cu_seqlens[num_seqs] */
  int32_t num_chunks;  /* chunk_offsets[num_seqs] */
  int32_t err_index;   /* which sequence / entry failed */
  int32_t err_value;   /* the offending value */
  int32_t err_value2;  /* a second value (e.g. the bound it broke) */
  int32_t num_segments; /* entries of gdn_batch.segments (context parallelism), else num_seqs */
} gdn_batch_header;

typedef enum gdn_batch_error {
  GDN_BATCH_OK = 0,
  GDN_BATCH_BAD_NUM_SEQS = 1,      /* num_seqs < 0 or > max_seqs */
  GDN_BATCH_BAD_FIRST_OFFSET = 2,  /* cu_seqlens[0] != 0 */
  GDN_BATCH_NOT_MONOTONIC = 3,     /* cu_seqlens[i+1] < cu_seqlens[i] */
  GDN_BATCH_TOO_MANY_TOKENS = 4,   /* cu_seqlens[N] > max_tokens */
  GDN_BATCH_SLOT_OUT_OF_RANGE = 5, /* slot < -1 or >= num_slots (or num_slots_out) */
  GDN_BATCH_SLOT_REUSED = 6,       /* two sequences write the same state row */
  GDN_BATCH_SLOT_READ_WRITTEN = 7, /* a sequence reads a state row another sequence writes */
  GDN_BATCH_CHECKPOINT_RANGE = 8,  /* checkpoint rows of a sequence outside [0, num_checkpoints) */
  GDN_BATCH_CHECKPOINT_OVERLAP = 9 /* two sequences' checkpoint rows overlap */
} gdn_batch_error;

const char *gdn_batch_error_string(int code);

/* A run of consecutive chunks of one sequence that the state scan walks as one unit.
 * Without context parallelism every sequence is one segment; with it, long sequences are
 * cut into several, scanned in parallel and combined exactly (ops/chunk_scan). */
typedef struct gdn_batch_segment {
  int32_t seq;
  int32_t chunk_begin, chunk_end; /* chunks of the sequence, [begin, end) */
  int32_t flags;                  /* GDN_SEGMENT_FIRST | GDN_SEGMENT_LAST */
} gdn_batch_segment;
#define GDN_SEGMENT_FIRST 1
#define GDN_SEGMENT_LAST 2

/* Device pointers into a batch workspace (see ops/batch) plus capacities. */
typedef struct gdn_batch {
  const int32_t *cu_seqlens;    /* [max_seqs + 1] */
  const int32_t *slots;         /* [max_seqs] initial-state row per sequence, or NULL: all GDN_PAD_SLOT */
  const int32_t *slots_out;     /* [max_seqs] final-state row per sequence, or NULL: the same as slots */
  const int32_t *chunk_offsets; /* [max_seqs + 1] */
  const int32_t *chunk_seq;     /* [max_chunks] sequence of each chunk */
  const gdn_batch_header *header;
  const int32_t *checkpoint_offsets; /* [max_seqs] first checkpoint row per sequence (-1: none), or NULL */
  const gdn_batch_segment *segments; /* [max_segments], or NULL: one segment per sequence */
  const int32_t *seq_segments;  /* [max_seqs + 1] first segment of each sequence (with segments) */
  int32_t max_seqs;
  int32_t max_tokens;
  int32_t max_chunks;           /* gdn_batch_max_chunks(max_tokens, max_seqs) */
  int32_t max_segments;         /* 0 without segments */
  int32_t when_cut;             /* which schedule this view serves: 0 always; 1 only batches the device
                                   cut into more segments than sequences; -1 only the others (a
                                   graph can hold both schedules; the idle one exits at once) */
} gdn_batch;

/* Upper bound of sum(ceil(len_i / 64)) over any batch within the capacities. */
static inline int32_t gdn_batch_max_chunks(int32_t max_tokens, int32_t max_seqs) {
  int64_t bound = ((int64_t)max_tokens + 63 * (int64_t)max_seqs) / GDN_CHUNK;
  int64_t by_tokens = ((int64_t)max_tokens + GDN_CHUNK - 1) / GDN_CHUNK;
  if (max_seqs > 0 && bound < by_tokens) bound = by_tokens;
  return (int32_t)bound;
}

#ifdef __cplusplus
}
#endif
#endif
