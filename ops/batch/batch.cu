/* gdn_batch_setup kernel: one block checks the batch descriptor and builds the chunk
 * tables on the device, so a replayed graph needs no host-side preparation. */
#include <limits.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/batch_setup.h"
#include "ops/batch/batch_layout.h"

#define GDN_SETUP_THREADS 1024

typedef struct gdn_batch_setup_params {
  const int32_t *cu_seqlens, *slots, *num_seqs_dev;
  int32_t num_seqs, max_seqs, max_tokens, num_slots;
  gdn_batch_header *header;
  int32_t *chunk_offsets, *chunk_seq;
  uint32_t *bitmap;
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

__global__ void __launch_bounds__(GDN_SETUP_THREADS) gdn_batch_setup_kernel(const gdn_batch_setup_params p) {
  __shared__ int s_key;
  __shared__ int s_warp[32];
  const int tid = threadIdx.x;
  const int N = p.num_seqs_dev ? *p.num_seqs_dev : p.num_seqs;
  int key = INT_MAX, v1 = 0, v2 = 0;
  if (tid == 0) s_key = INT_MAX;
  for (int i = tid; i < (p.num_slots + 31) / 32; i += blockDim.x) p.bitmap[i] = 0u;
  __syncthreads();

  if (N < 0 || N > p.max_seqs) {
    if (tid == 0) gdn_note_error(GDN_BATCH_BAD_NUM_SEQS, 0, N, p.max_seqs, &key, &v1, &v2);
  } else {
    if (tid == 0) {
      if (p.cu_seqlens[0] != 0) gdn_note_error(GDN_BATCH_BAD_FIRST_OFFSET, 0, p.cu_seqlens[0], 0, &key, &v1, &v2);
      if (p.cu_seqlens[N] > p.max_tokens)
        gdn_note_error(GDN_BATCH_TOO_MANY_TOKENS, N, p.cu_seqlens[N], p.max_tokens, &key, &v1, &v2);
    }
    for (int i = tid; i < N; i += blockDim.x) {
      int a = p.cu_seqlens[i], b = p.cu_seqlens[i + 1];
      if (b < a) gdn_note_error(GDN_BATCH_NOT_MONOTONIC, i + 1, b, a, &key, &v1, &v2);
      int slot = p.slots ? p.slots[i] : GDN_PAD_SLOT;
      if (slot < -1 || slot >= p.num_slots) {
        gdn_note_error(GDN_BATCH_SLOT_OUT_OF_RANGE, i, slot, p.num_slots, &key, &v1, &v2);
      } else if (slot >= 0) {
        uint32_t bit = 1u << (slot & 31);
        if (atomicOr(&p.bitmap[slot >> 5], bit) & bit) gdn_note_error(GDN_BATCH_SLOT_REUSED, i, slot, 0, &key, &v1, &v2);
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
  int carry = 0;
  for (int base = 0; base < N; base += blockDim.x) {
    int i = base + tid;
    int nc = i < N ? (p.cu_seqlens[i + 1] - p.cu_seqlens[i] + GDN_CHUNK - 1) / GDN_CHUNK : 0;
    int incl = gdn_block_inclusive_scan(nc, s_warp);
    if (i < N) p.chunk_offsets[i + 1] = carry + incl;
    int total = __shfl_sync(0xffffffffu, incl, 31);
    if ((tid & 31) == 31 && tid == (int)blockDim.x - 1) s_warp[31] = total;
    __syncthreads();
    carry += s_warp[31];
    __syncthreads();
  }
  if (tid == 0) p.chunk_offsets[0] = 0;
  const int NT = carry;
  __syncthreads();

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
  if (tid == 0) {
    gdn_batch_header h = {GDN_BATCH_OK, N, p.cu_seqlens[N], NT, 0, 0, 0, 0};
    *p.header = h;
  }
}

static gdn_status setup_call(const gdn_batch_setup_args *a, gdn_batch_setup_params *p, gdn_kernel_call *call) {
  GDN_TRY(gdn_batch_setup_validate(a));
  gdn_batch_layout l = gdn_batch_layout_of(a->max_seqs, a->max_tokens, a->num_slots);
  unsigned char *ws = (unsigned char *)a->workspace;
  p->cu_seqlens = a->cu_seqlens;
  p->slots = a->slots;
  p->num_seqs_dev = a->num_seqs_dev;
  p->num_seqs = a->num_seqs;
  p->max_seqs = a->max_seqs;
  p->max_tokens = a->max_tokens;
  p->num_slots = a->num_slots;
  p->header = (gdn_batch_header *)(ws + l.header);
  p->chunk_offsets = (int32_t *)(ws + l.chunk_offsets);
  p->chunk_seq = (int32_t *)(ws + l.chunk_seq);
  p->bitmap = (uint32_t *)(ws + l.bitmap);
  p->record = a->error_record;
  call->func = (const void *)gdn_batch_setup_kernel;
  call->grid = dim3(1, 1, 1);
  call->block = dim3(GDN_SETUP_THREADS, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_batch_setup_launch(const gdn_batch_setup_args *a, cudaStream_t stream) {
  gdn_batch_setup_params p;
  gdn_kernel_call call;
  GDN_TRY(setup_call(a, &p, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_batch_setup_add_node(const gdn_batch_setup_args *a, cudaGraph_t graph,
                                               const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_batch_setup_params p;
  gdn_kernel_call call;
  GDN_TRY(setup_call(a, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_batch_error_record_create(gdn_batch_error_record **record) {
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
  if (r == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "record is NULL");
  if (r->count == 0) return GDN_SUCCESS;
  gdn_status s = gdn_fail(GDN_ERROR_INVALID_BATCH, "batch rejected on the device (%d time(s)): %s at index %d (value %d, %d)",
                          r->count, gdn_batch_error_string(r->status), r->index, r->value, r->value2);
  r->count = 0;
  r->status = 0;
  return s;
}
