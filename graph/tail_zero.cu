/* Zeroing of the output rows past the batch's tokens (one node of the prefill graph). */
#include "core/cuda_util.h"
#include "graph/tail_zero.h"

typedef struct gdn_tail_zero_params {
  const gdn_batch_header *header;
  uint32_t *out;            /* viewed as pairs of 16-bit elements */
  int64_t st, sh;           /* token / head strides in pairs */
  int H, D2, max_tokens;    /* D2 = pairs per head row */
} gdn_tail_zero_params;

__global__ void gdn_tail_zero_kernel(const gdn_tail_zero_params p) {
  if (p.header->status != 0) return;
  const int per_row = p.H * p.D2;
  for (int t = p.header->num_tokens + blockIdx.x; t < p.max_tokens; t += gridDim.x)
    for (int e = threadIdx.x; e < per_row; e += blockDim.x)
      p.out[t * p.st + (e / p.D2) * p.sh + e % p.D2] = 0u;
}

static gdn_status tail_call(const gdn_batch *b, const gdn_tensor *o, int sm_count, gdn_tail_zero_params *p,
                            gdn_kernel_call *call) {
  GDN_TRY(gdn_check_batch(b));
  GDN_TRY(gdn_check_tensor(o, "o", 3, NULL, GDN_FLOAT16_TYPES));
  GDN_TRY(gdn_check_rows(o, "o", b->max_tokens, "token"));
  GDN_TRY(gdn_check_inner_contiguous(o, "o"));
  GDN_TRY(gdn_check_aligned(o, "o", 4));
  p->header = b->header;
  p->out = (uint32_t *)o->data;
  p->st = o->strides[0] / 2;
  p->sh = o->strides[1] / 2;
  p->H = (int)o->sizes[1];
  p->D2 = (int)(o->sizes[2] / 2);
  p->max_tokens = b->max_tokens;
  int blocks = 4 * (sm_count > 0 ? sm_count : 132);
  call->func = (const void *)gdn_tail_zero_kernel;
  call->grid = dim3((unsigned)(b->max_tokens < blocks ? (b->max_tokens > 0 ? b->max_tokens : 1) : blocks), 1, 1);
  call->block = dim3(256, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_tail_zero_launch(const gdn_batch *b, const gdn_tensor *o, int sm_count, cudaStream_t s) {
  gdn_tail_zero_params p;
  gdn_kernel_call call;
  GDN_TRY(tail_call(b, o, sm_count, &p, &call));
  return gdn_kernel_launch(&call, s);
}

extern "C" gdn_status gdn_tail_zero_add_node(const gdn_batch *b, const gdn_tensor *o, int sm_count, cudaGraph_t graph,
                                             const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_tail_zero_params p;
  gdn_kernel_call call;
  GDN_TRY(tail_call(b, o, sm_count, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}
