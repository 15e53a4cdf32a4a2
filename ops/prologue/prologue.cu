/* prologue kernel: gating, beta and chunk-local cumsums. One thread per (head, key)
 * column walks the 64 tokens of one chunk (the cumsum is sequential along tokens). */
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "gdn/prologue.h"
#include "ops/prologue/prologue_params.h"

__global__ void gdn_prologue_kernel(const gdn_prologue_params p) {
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x;
  if (hdr->status != 0 || c >= hdr->num_chunks) return;
  const int col = blockIdx.y * blockDim.x + threadIdx.x;
  if (col >= p.Hv * p.K) return;
  const int h = col / p.K, kk = col % p.K;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int t1 = min(t0 + GDN_CHUNK, p.cu_seqlens[seq + 1]);
  float neg_A = 0.f, dtb = 0.f;
  if (p.use_g) {
    neg_A = -__expf(gdn_load_float(p.A_log, p.A_log_dt, h * p.A_log_s));
    dtb = gdn_load_float(p.dt_bias, p.dt_bias_dt, h * p.dt_bias_s);
  }
  float acc_g = 0.f, acc_k = 0.f;
  for (int t = t0; t < t1; ++t) {
    float g = p.use_g ? neg_A * gdn_softplus(gdn_load_float(p.a, p.a_dt, t * p.a_st + h * p.a_sh) + dtb) : 0.f;
    if (kk == 0) {
      acc_g += g;
      if (p.g_cum) p.g_cum[t * p.gc_st + h * p.gc_sh] = acc_g;
      if (p.beta) p.beta[t * p.beta_st + h * p.beta_sh] = gdn_sigmoid(gdn_load_float(p.b, p.b_dt, t * p.b_st + h * p.b_sh));
    }
    if (p.gk_cum) {
      acc_k += g + gdn_load_float(p.gk, p.gk_dt, t * p.gk_st + h * p.gk_sh + kk);
      p.gk_cum[t * p.gkc_st + h * p.gkc_sh + kk] = acc_k;
    }
  }
}

static gdn_status prologue_call(const gdn_prologue_args *a, const gdn_prologue_config *cfg, gdn_prologue_params *p,
                                gdn_kernel_call *call) {
  GDN_TRY(gdn_prologue_validate(a));
  if (cfg == NULL || cfg->threads <= 0 || cfg->threads > 1024 || cfg->threads % 32)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: cfg is not planned");
  memset(p, 0, sizeof *p);
  p->cu_seqlens = a->batch.cu_seqlens;
  p->chunk_offsets = a->batch.chunk_offsets;
  p->chunk_seq = a->batch.chunk_seq;
  p->header = a->batch.header;
  p->Hv = (int)(gdn_tensor_present(&a->b) ? a->b.sizes[1] : a->a.sizes[1]);
  p->K = gdn_tensor_present(&a->gk) ? (int)a->gk.sizes[2] : 1;
  p->use_g = a->use_g;
  if (a->use_g) {
    p->a = a->a.data; p->a_dt = a->a.dtype; p->a_st = a->a.strides[0]; p->a_sh = a->a.strides[1];
    p->A_log = a->A_log.data; p->A_log_dt = a->A_log.dtype; p->A_log_s = a->A_log.strides[0];
    p->dt_bias = a->dt_bias.data; p->dt_bias_dt = a->dt_bias.dtype; p->dt_bias_s = a->dt_bias.strides[0];
  }
  if (gdn_tensor_present(&a->beta)) {
    p->b = a->b.data; p->b_dt = a->b.dtype; p->b_st = a->b.strides[0]; p->b_sh = a->b.strides[1];
    p->beta = (float *)a->beta.data; p->beta_st = a->beta.strides[0]; p->beta_sh = a->beta.strides[1];
  }
  if (gdn_tensor_present(&a->g_cum)) {
    p->g_cum = (float *)a->g_cum.data; p->gc_st = a->g_cum.strides[0]; p->gc_sh = a->g_cum.strides[1];
  }
  if (gdn_tensor_present(&a->gk)) {
    p->gk = a->gk.data; p->gk_dt = a->gk.dtype; p->gk_st = a->gk.strides[0]; p->gk_sh = a->gk.strides[1];
    p->gk_cum = (float *)a->gk_cum.data; p->gkc_st = a->gk_cum.strides[0]; p->gkc_sh = a->gk_cum.strides[1];
  }
  int cols = p->Hv * p->K;
  call->func = (const void *)gdn_prologue_kernel;
  call->grid = dim3((unsigned)a->batch.max_chunks, (unsigned)((cols + cfg->threads - 1) / cfg->threads), 1);
  call->block = dim3((unsigned)cfg->threads, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_prologue_launch(const gdn_prologue_args *a, const gdn_prologue_config *cfg, cudaStream_t s) {
  gdn_prologue_params p;
  gdn_kernel_call call;
  GDN_TRY(prologue_call(a, cfg, &p, &call));
  return gdn_kernel_launch(&call, s);
}

extern "C" gdn_status gdn_prologue_add_node(const gdn_prologue_args *a, const gdn_prologue_config *cfg, cudaGraph_t graph,
                                            const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_prologue_params p;
  gdn_kernel_call call;
  GDN_TRY(prologue_call(a, cfg, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}
