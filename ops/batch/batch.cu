/* gdn_batch_setup kernel: one block checks the batch descriptor and builds the chunk
 * tables on the device, so a replayed graph needs no host-side preparation. */
#include <limits.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/batch_setup.h"
#include "ops/batch/batch_layout.h"

#define GDN_SETUP_THREADS 1024

typedef struct gdn_batch_setup_params {
  const int32_t *cu_in, *slots_in_src, *slots_out_src, *num_seqs_dev, *ckpt_src, *out_select;
  const int64_t *cu_in64;
  int32_t num_seqs, max_seqs, max_tokens, num_slots, num_slots_out;
  int slots_identity, slots_out_mode, state_aliased;
  int32_t checkpoint_every, num_checkpoints;
  int32_t cp_min_chunks, cp_units, cp_heads, cp_max_pairs, max_segments;
  gdn_batch_header *header;
  int32_t *chunk_offsets, *chunk_seq, *cu, *slots_in, *slots_out, *ckpt;
  int32_t *out_table, *ckpt_table;
  int32_t out_table_size, ckpt_table_size;
  gdn_batch_segment *segments;
  int32_t *seq_segments;
  gdn_batch_error_record *record;
} gdn_batch_setup_params;

/* Inclusive block-wide prefix sum of one int per thread. */
__device__ int gdn_block_inclusive_scan(int v, int *warp_sums) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int d = 1; d < 32; d <<= 1) {
    int y = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += y;
  }
  if (lane == 31) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int s = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0;
    for (int d = 1; d < 32; d <<= 1) {
      int y = __shfl_up_sync(0xffffffffu, s, d);
      if (lane >= d) s += y;
    }
    warp_sums[lane] = s;
  }
  __syncthreads();
  if (warp > 0) v += warp_sums[warp - 1];
  return v;
}

/* The error that wins is the one with the smallest (code, index) key: deterministic. */
__device__ __forceinline__ void gdn_note_error(int code, int index, int value, int value2, int *key, int *v1,
                                               int *v2) {
  int k = (code << 24) | min(index, (1 << 24) - 1);
  if (k < *key) {
    *key = k;
    *v1 = value;
    *v2 = value2;
  }
}

#define GDN_TABLE_EMPTY INT_MIN

__device__ __forceinline__ uint32_t gdn_table_hash(int32_t key) { return (uint32_t)key * 2654435761u; }

/* Inserts key (>= 0) into the open-addressing table of `size` (a power of two, more
 * than the entries ever inserted); 1 if it was there already. */
__device__ __forceinline__ int gdn_table_insert(int32_t *table, int32_t size, int32_t key) {
  for (uint32_t h = gdn_table_hash(key) & (uint32_t)(size - 1);; h = (h + 1) & (uint32_t)(size - 1)) {
    const int32_t old = atomicCAS(&table[h], GDN_TABLE_EMPTY, key);
    if (old == GDN_TABLE_EMPTY) return 0;
    if (old == key) return 1;
  }
}
__device__ __forceinline__ int gdn_table_contains(const int32_t *table, int32_t size, int32_t key) {
  for (uint32_t h = gdn_table_hash(key) & (uint32_t)(size - 1);; h = (h + 1) & (uint32_t)(size - 1)) {
    const int32_t v = table[h];
    if (v == GDN_TABLE_EMPTY) return 0;
    if (v == key) return 1;
  }
}

/* Block-wide exclusive prefix sum over i in [0, n) of f(i) into out[0 .. n] (out[n] = total). */
template <typename F>
__device__ int gdn_block_offsets(int n, F f, int32_t *out, int *s_warp) {
  const int tid = threadIdx.x;
  int carry = 0;
  for (int base = 0; base < n; base += blockDim.x) {
    const int i = base + tid;
    const int x = i < n ? f(i) : 0;
    const int incl = gdn_block_inclusive_scan(x, s_warp);
    if (i < n) out[i + 1] = carry + incl;
    if (tid == (int)blockDim.x - 1) s_warp[31] = incl;
    __syncthreads();
    carry += s_warp[31];
    __syncthreads();
  }
  if (tid == 0) out[0] = 0;
  __syncthreads();
  return carry;
}

__global__ void __launch_bounds__(GDN_SETUP_THREADS) gdn_batch_setup_kernel(const gdn_batch_setup_params p) {
  __shared__ int s_key;
  __shared__ int s_warp[32];
  const int tid = threadIdx.x;
  const int N = p.num_seqs_dev ? *p.num_seqs_dev : p.num_seqs;
  int key = INT_MAX, v1 = 0, v2 = 0;
  if (tid == 0) s_key = INT_MAX;
  for (int i = tid; i < p.out_table_size; i += blockDim.x) p.out_table[i] = GDN_TABLE_EMPTY;
  for (int i = tid; i < p.ckpt_table_size; i += blockDim.x) p.ckpt_table[i] = GDN_TABLE_EMPTY;
  __syncthreads();

  const bool n_ok = N >= 0 && N <= p.max_seqs;
  const int32_t *slots_out_src = p.out_select != nullptr && *p.out_select == 0 ? nullptr : p.slots_out_src;
  if (!n_ok) {
    if (tid == 0) gdn_note_error(GDN_BATCH_BAD_NUM_SEQS, 0, N, p.max_seqs, &key, &v1, &v2);
  } else {
    /* copies of the descriptor the consumers read: int32 offsets, effective slot rows */
    for (int i = tid; i <= N; i += blockDim.x) {
      const int64_t c = p.cu_in64 ? p.cu_in64[i] : (int64_t)p.cu_in[i];
      p.cu[i] = (int32_t)max(min(c, (int64_t)INT_MAX), (int64_t)INT_MIN);
      if (c != (int64_t)p.cu[i]) gdn_note_error(GDN_BATCH_TOO_MANY_TOKENS, i, INT_MAX, p.max_tokens, &key, &v1, &v2);
    }
    __syncthreads();
    if (tid == 0) {
      if (p.cu[0] != 0) gdn_note_error(GDN_BATCH_BAD_FIRST_OFFSET, 0, p.cu[0], 0, &key, &v1, &v2);
      if (p.cu[N] > p.max_tokens) gdn_note_error(GDN_BATCH_TOO_MANY_TOKENS, N, p.cu[N], p.max_tokens, &key, &v1, &v2);
    }
    for (int i = tid; i < N; i += blockDim.x) {
      const int a = p.cu[i], b = p.cu[i + 1];
      if (b < a) gdn_note_error(GDN_BATCH_NOT_MONOTONIC, i + 1, b, a, &key, &v1, &v2);
      const int sin = p.slots_identity ? i : p.slots_in_src ? p.slots_in_src[i] : GDN_PAD_SLOT;
      const int sout = slots_out_src         ? slots_out_src[i]
                       : p.slots_out_mode == 1 ? i
                       : p.slots_out_mode == 2 ? GDN_PAD_SLOT
                                               : sin;
      p.slots_in[i] = sin;
      p.slots_out[i] = sout;
      if (sin < -1 || sin >= p.num_slots) gdn_note_error(GDN_BATCH_SLOT_OUT_OF_RANGE, i, sin, p.num_slots, &key, &v1, &v2);
      if (sout < -1 || sout >= p.num_slots_out) {
        gdn_note_error(GDN_BATCH_SLOT_OUT_OF_RANGE, i, sout, p.num_slots_out, &key, &v1, &v2);
      } else if (sout >= 0 && gdn_table_insert(p.out_table, p.out_table_size, sout)) {
        gdn_note_error(GDN_BATCH_SLOT_REUSED, i, sout, 0, &key, &v1, &v2);
      }
      if (p.ckpt_src) {
        const int off = p.ckpt_src[i];
        p.ckpt[i] = off;
        /* (a batch past the token capacity is refused already; its rows could overfill the table) */
        if (off != -1 && b >= a && p.cu[N] <= p.max_tokens) {
          const int64_t count = (b - a) / p.checkpoint_every;
          if (off < 0 || (int64_t)off + count > p.num_checkpoints) {
            gdn_note_error(GDN_BATCH_CHECKPOINT_RANGE, i, off, p.num_checkpoints, &key, &v1, &v2);
          } else {
            for (int64_t r = off; r < off + count; ++r)
              if (gdn_table_insert(p.ckpt_table, p.ckpt_table_size, (int32_t)r)) {
                gdn_note_error(GDN_BATCH_CHECKPOINT_OVERLAP, i, (int)r, 0, &key, &v1, &v2);
                break;
              }
          }
        }
      }
    }
    if (p.state_aliased) {
      __syncthreads(); /* every written row is marked */
      for (int i = tid; i < N; i += blockDim.x) {
        const int sin = p.slots_in[i];
        if (sin >= 0 && p.slots_out[i] != sin && gdn_table_contains(p.out_table, p.out_table_size, sin))
          gdn_note_error(GDN_BATCH_SLOT_READ_WRITTEN, i, sin, 0, &key, &v1, &v2);
      }
    }
  }
  if (key != INT_MAX) atomicMin(&s_key, key);
  __syncthreads();
  if (s_key != INT_MAX) {
    /* Invalid: every consumer sees status != 0 and zero counts, so nothing is written. */
    if (key == s_key) {
      gdn_batch_header h = {s_key >> 24, 0, 0, 0, s_key & ((1 << 24) - 1), v1, v2, 0};
      *p.header = h;
      if (p.record) {
        p.record->status = h.status;
        p.record->index = h.err_index;
        p.record->value = v1;
        p.record->value2 = v2;
        __threadfence_system();
        atomicAdd((int *)&p.record->count, 1);
      }
    }
    return;
  }

  /* chunk_offsets = exclusive scan of ceil(len / 64) */
  const int32_t *cu = p.cu;
  const int NT = gdn_block_offsets(
      N, [&](int i) { return (cu[i + 1] - cu[i] + GDN_CHUNK - 1) / GDN_CHUNK; }, p.chunk_offsets, s_warp);

  /* chunk -> sequence: the last sequence whose first chunk is <= c (skips empty ones) */
  for (int c = tid; c < NT; c += blockDim.x) {
    int lo = 0, hi = N - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >> 1;
      if (p.chunk_offsets[mid] <= c) lo = mid;
      else hi = mid - 1;
    }
    p.chunk_seq[c] = lo;
  }

  /* Scan segments: sequences cut into runs of L chunks when the batch has few
   * (sequence, head) pairs (see batch_setup.h). */
  int num_segments = N;
  if (p.max_segments > 0) {
    int64_t L = INT_MAX;
    if ((int64_t)N * p.cp_heads <= p.cp_max_pairs) {
      const int64_t want = ((int64_t)NT * p.cp_heads + p.cp_units - 1) / p.cp_units;
      L = max((int64_t)p.cp_min_chunks, want);
    }
    const int32_t *co = p.chunk_offsets;
    num_segments = gdn_block_offsets(
        N,
        [&](int i) {
          const int64_t nc = co[i + 1] - co[i];
          return (int)max((int64_t)1, (nc + L - 1) / L);
        },
        p.seq_segments, s_warp);
    for (int i = tid; i < N; i += blockDim.x) {
      const int nc = co[i + 1] - co[i], s0 = p.seq_segments[i], ns = p.seq_segments[i + 1] - s0;
      for (int j = 0; j < ns; ++j) {
        gdn_batch_segment g;
        g.seq = i;
        g.chunk_begin = (int)min((int64_t)j * L, (int64_t)nc);
        g.chunk_end = (int)min((int64_t)(j + 1) * L, (int64_t)nc);
        g.flags = (j == 0 ? GDN_SEGMENT_FIRST : 0) | (j == ns - 1 ? GDN_SEGMENT_LAST : 0);
        p.segments[s0 + j] = g;
      }
    }
  }
  if (tid == 0) {
    gdn_batch_header h = {GDN_BATCH_OK, N, p.cu[N], NT, 0, 0, 0, num_segments};
    *p.header = h;
  }
}

static gdn_status setup_call(const gdn_batch_setup_args *a, gdn_batch_setup_params *p, gdn_kernel_call *call) {
  GDN_TRY(gdn_batch_setup_validate(a));
  gdn_batch_layout l = gdn_batch_layout_for(a);
  unsigned char *ws = (unsigned char *)a->workspace;
  memset(p, 0, sizeof *p);
  p->cu_in = a->cu_seqlens;
  p->cu_in64 = a->cu_seqlens64;
  p->slots_in_src = a->slots;
  p->slots_out_src = a->slots_out;
  p->out_select = a->slots_out_select;
  p->num_seqs_dev = a->num_seqs_dev;
  p->ckpt_src = a->checkpoint_offsets;
  p->num_seqs = a->num_seqs;
  p->max_seqs = a->max_seqs;
  p->max_tokens = a->max_tokens;
  p->num_slots = a->num_slots;
  p->num_slots_out = a->num_slots_out > 0 ? a->num_slots_out : a->num_slots;
  p->slots_identity = a->slots_identity;
  p->slots_out_mode = a->slots_out_mode;
  p->state_aliased = a->state_aliased;
  p->checkpoint_every = a->checkpoint_every;
  p->num_checkpoints = a->num_checkpoints;
  p->cp_min_chunks = a->cp_min_chunks;
  p->cp_units = a->cp_units;
  p->cp_heads = a->cp_heads;
  p->cp_max_pairs = a->cp_max_pairs;
  p->max_segments = l.max_segments;
  p->header = (gdn_batch_header *)(ws + l.header);
  p->chunk_offsets = (int32_t *)(ws + l.chunk_offsets);
  p->chunk_seq = (int32_t *)(ws + l.chunk_seq);
  p->cu = (int32_t *)(ws + l.cu_seqlens);
  p->slots_in = (int32_t *)(ws + l.slots_in);
  p->slots_out = (int32_t *)(ws + l.slots_out);
  p->out_table = (int32_t *)(ws + l.out_table);
  p->out_table_size = l.out_table_size;
  p->ckpt = (int32_t *)(ws + l.ckpt_offsets);
  p->ckpt_table = (int32_t *)(ws + l.ckpt_table);
  p->ckpt_table_size = l.ckpt_table_size;
  p->segments = (gdn_batch_segment *)(ws + l.segments);
  p->seq_segments = (int32_t *)(ws + l.seq_segments);
  p->record = a->error_record;
  call->func = (const void *)gdn_batch_setup_kernel;
  call->grid = dim3(1, 1, 1);
  call->block = dim3(GDN_SETUP_THREADS, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_batch_setup_launch(const gdn_batch_setup_args *a, cudaStream_t stream) {
  gdn_clear_last_error();
  gdn_batch_setup_params p;
  gdn_kernel_call call;
  GDN_TRY(setup_call(a, &p, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_batch_setup_add_node(const gdn_batch_setup_args *a, cudaGraph_t graph,
                                               const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_batch_setup_params p;
  gdn_kernel_call call;
  GDN_TRY(setup_call(a, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_batch_error_record_create(gdn_batch_error_record **record) {
  gdn_clear_last_error();
  if (record == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "record is NULL");
  void *p = NULL;
  GDN_CUDA_TRY(cudaHostAlloc(&p, sizeof(gdn_batch_error_record), cudaHostAllocMapped));
  memset(p, 0, sizeof(gdn_batch_error_record));
  *record = (gdn_batch_error_record *)p;
  return GDN_SUCCESS;
}

extern "C" void gdn_batch_error_record_destroy(gdn_batch_error_record *record) {
  if (record) cudaFreeHost(record);
}

extern "C" gdn_status gdn_batch_error_record_check(gdn_batch_error_record *r) {
  gdn_clear_last_error();
  if (r == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "record is NULL");
  if (r->count == 0) return GDN_SUCCESS;
  gdn_status s = gdn_fail(GDN_ERROR_INVALID_BATCH, "batch rejected on the device (%d time(s)): %s at index %d (value %d, %d)",
                          r->count, gdn_batch_error_string(r->status), r->index, r->value, r->value2);
  r->count = 0;
  r->status = 0;
  return s;
}
