/* prologue kernel: gating, beta and chunk-local cumsums over (chunk, head, key) columns. */
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "gdn/prologue.h"
#include "ops/prologue/prologue_params.h"

#define GDN_PRO_WARPS 8 /* warps per block; each takes 64 / 8 tokens of the chunk */

/* Block = one chunk x 32 (head, key) columns (lane = column, so every load and store is
 * coalesced along heads / keys); warp w takes tokens [8w, 8w + 8): loads them all, scans
 * them in registers, and adds the totals of the warps before it (one barrier). */
__global__ void __launch_bounds__(32 * GDN_PRO_WARPS) gdn_prologue_kernel(const gdn_prologue_params p) {
  constexpr int TPW = GDN_CHUNK / GDN_PRO_WARPS;
  __shared__ float tot[2][GDN_PRO_WARPS][32];
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x;
  if (hdr->status != 0 || c >= hdr->num_chunks) return; /* whole block */
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int col = blockIdx.y * 32 + lane;
  const bool active = col < p.Hv * p.K;
  const int h = active ? col / p.K : 0, kk = active ? col % p.K : 0;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int L = min(GDN_CHUNK, p.cu_seqlens[seq + 1] - t0);
  const int r0 = warp * TPW;
  const bool head_col = active && kk == 0; /* writes the per-head outputs */
  float neg_A = 0.f, dtb = 0.f;
  if (p.use_g && active && !p.precomputed) {
    neg_A = -__expf(gdn_load_float(p.A_log, p.A_log_dt, h * p.A_log_s));
    dtb = gdn_load_float(p.dt_bias, p.dt_bias_dt, h * p.dt_bias_s);
  }
  float av[TPW], bv[TPW], xv[TPW];
#pragma unroll
  for (int i = 0; i < TPW; ++i) {
    const int64_t t = t0 + r0 + i;
    const bool ok = active && r0 + i < L;
    av[i] = ok && p.use_g ? gdn_load_float(p.a, p.a_dt, t * p.a_st + h * p.a_sh) : 0.f;
    bv[i] = ok && head_col && p.beta ? gdn_load_float(p.b, p.b_dt, t * p.b_st + h * p.b_sh) : 0.f;
    xv[i] = ok && p.gk_cum ? gdn_load_float(p.gk, p.gk_dt, t * p.gk_st + h * p.gk_sh + kk) : 0.f;
  }
  float sg = 0.f, sk = 0.f; /* running sums of g and of g + gk within the warp's tokens */
#pragma unroll
  for (int i = 0; i < TPW; ++i) {
    const bool ok = active && r0 + i < L;
    const float graw = p.precomputed ? av[i] : neg_A * gdn_softplus(av[i] + dtb);
    /* fmaxf also maps NaN from inf * 0 (A_log overflow with softplus 0) to the floor */
    const float g = ok && p.use_g ? fmaxf(graw, GDN_LOG_GATE_MIN) : 0.f;
    sg += g;
    sk += ok ? fmaxf(g + xv[i], GDN_LOG_GATE_MIN) : 0.f;
    av[i] = sg;
    xv[i] = sk;
    if (ok && head_col && p.beta)
      p.beta[(int64_t)(t0 + r0 + i) * p.beta_st + h * p.beta_sh] = p.precomputed ? bv[i] : gdn_sigmoid(bv[i]);
  }
  tot[0][warp][lane] = sg;
  tot[1][warp][lane] = sk;
  __syncthreads();
  float og = 0.f, ok_sum = 0.f;
  for (int w = 0; w < warp; ++w) {
    og += tot[0][w][lane];
    ok_sum += tot[1][w][lane];
  }
#pragma unroll
  for (int i = 0; i < TPW; ++i) {
    if (!active || r0 + i >= L) break;
    const int64_t t = t0 + r0 + i;
    if (head_col && p.g_cum) p.g_cum[t * p.gc_st + h * p.gc_sh] = av[i] + og;
    if (p.gk_cum) p.gk_cum[t * p.gkc_st + h * p.gkc_sh + kk] = xv[i] + ok_sum;
  }
}

static gdn_status prologue_call(const gdn_prologue_args *a, const gdn_prologue_config *cfg, gdn_prologue_params *p,
                                gdn_kernel_call *call) {
  GDN_TRY(gdn_prologue_validate(a));
  if (cfg == NULL || cfg->threads != 32 * GDN_PRO_WARPS)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prologue: cfg is not planned");
  memset(p, 0, sizeof *p);
  p->cu_seqlens = a->batch.cu_seqlens;
  p->chunk_offsets = a->batch.chunk_offsets;
  p->chunk_seq = a->batch.chunk_seq;
  p->header = a->batch.header;
  p->Hv = (int)(gdn_tensor_present(&a->b) ? a->b.sizes[1] : a->a.sizes[1]);
  p->K = gdn_tensor_present(&a->gk) ? (int)a->gk.sizes[2] : 1;
  p->use_g = a->use_g;
  p->precomputed = a->precomputed;
  if (a->use_g) {
    p->a = a->a.data; p->a_dt = a->a.dtype; p->a_st = a->a.strides[0]; p->a_sh = a->a.strides[1];
  }
  if (a->use_g && !a->precomputed) {
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
  call->grid = dim3((unsigned)a->batch.max_chunks, (unsigned)((cols + 31) / 32), 1);
  call->block = dim3((unsigned)cfg->threads, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_prologue_launch(const gdn_prologue_args *a, const gdn_prologue_config *cfg, cudaStream_t s) {
  gdn_clear_last_error();
  gdn_prologue_params p;
  gdn_kernel_call call;
  GDN_TRY(prologue_call(a, cfg, &p, &call));
  return gdn_kernel_launch(&call, s);
}

extern "C" gdn_status gdn_prologue_add_node(const gdn_prologue_args *a, const gdn_prologue_config *cfg, cudaGraph_t graph,
                                            const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_prologue_params p;
  gdn_kernel_call call;
  GDN_TRY(prologue_call(a, cfg, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}
