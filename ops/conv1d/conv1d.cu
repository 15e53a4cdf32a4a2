/* Causal depthwise conv1d + SiLU with a conv-state pool: kernel, launch, graph node.
 *
 * Block (x = token tile, y = channel tile); each thread owns `VEC` consecutive channels
 * (one 16-byte access per token at VEC 8 for 16-bit data) and walks the tokens of its tile
 * in order, keeping the W-1 previous inputs (the window) in registers. The op is a stream:
 * per token it reads D inputs and writes D outputs, so what matters is bytes in flight.
 * A thread issues the loads of GDN_CONV1D_STEP consecutive rows before it uses any of
 * them (STEP x 16 bytes outstanding per thread; the plan sizes the grid so an SM holds
 * ~GDN_CONV1D_INFLIGHT_BYTES of them). Rows past the range re-read its last row (always a
 * valid address, no branch) and are not stored. The window is kept as raw 16-bit vectors
 * (converted at each use: a few more instructions per token, but 12 registers instead of 24: it
 * keeps the kernel within 128 registers without spills).
 * A tile may hold several sequences; for each one the block computes tokens [lo, hi):
 *   - the block whose tile holds the sequence's first token s0 (the "owner") computes
 *     [s0, min(s1, max(tile_end, s0+W-1))): it alone needs the old conv state, and it
 *     writes the new state after reading the old one (same thread, same channels);
 *   - any later tile computes [max(tile_start, s0+W-1), min(s1, tile_end)), whose window
 *     (the halo: the W-1 rows before lo, re-read from L2 after the previous tile read
 *     them) lies inside the sequence, so it never touches the state.
 * Hence no (slot, channel) state entry is read and written by different threads. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "ops/conv1d/conv1d_params.h"
#include "ops/conv1d/conv1d_shape.h"

namespace {

template <typename T, int W, int VEC>
__global__ void __launch_bounds__(GDN_CONV1D_MAX_THREADS, GDN_CONV1D_MIN_BLOCKS) conv1d_kernel(const gdn_conv1d_params p) {
  typedef gdn_vec<T, VEC> vec_t;
  const gdn_batch_header *hdr = p.header;
  const int status = hdr->status, num_seqs = hdr->num_seqs, num_tokens = hdr->num_tokens;
  if (status != 0 || num_seqs < 0 || num_seqs > p.max_seqs || num_tokens < 0 || num_tokens > p.max_tokens) return;
  const int a = blockIdx.x * p.tile; /* < max_tokens: the grid has ceil(max_tokens / tile) tiles */
  if (a >= num_tokens || num_seqs == 0) return;
  const int b = (int)min((int64_t)a + p.tile, (int64_t)num_tokens);
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * VEC;
  if (c0 >= p.D) return;

  /* Per-thread constants: weights, bias, and where this thread's channels go. */
  float w[VEC][W], bias[VEC];
  /* 16-byte vectors: a warp's weights in VEC W / 8 (16-bit) requests, not VEC W strided ones
   * (the host sets w_packed only where a thread's VEC x W taps are whole vectors) */
  if (p.w_packed) {
    if (p.w_f32) {
      if constexpr (VEC * W % 4 == 0) {
        const float *src = reinterpret_cast<const float *>(p.weight) + (int64_t)c0 * W;
#pragma unroll
        for (int e = 0; e < VEC * W; e += 4) gdn_load_vec<float, 4>(src + e, &w[0][0] + e);
      }
    } else {
      if constexpr (VEC * W % 8 == 0) {
        const T *src = reinterpret_cast<const T *>(p.weight) + (int64_t)c0 * W;
#pragma unroll
        for (int e = 0; e < VEC * W; e += 8) gdn_load_vec<T, 8>(src + e, &w[0][0] + e);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    if (!p.w_packed) {
#pragma unroll
      for (int j = 0; j < W; ++j) {
        int64_t off = (int64_t)(c0 + i) * p.w_s0 + (int64_t)j * p.w_s1;
        w[i][j] = p.w_f32 ? reinterpret_cast<const float *>(p.weight)[off] : gdn_to_float(reinterpret_cast<const T *>(p.weight)[off]);
      }
    }
    int64_t boff = (int64_t)(c0 + i) * p.b_s0;
    bias[i] = p.bias_mode == 0 ? 0.0f
            : p.bias_mode == 1 ? reinterpret_cast<const float *>(p.bias)[boff]
                               : gdn_to_float(reinterpret_cast<const T *>(p.bias)[boff]);
  }
  int which, cc, hd;
  if (c0 < p.HkK) {
    which = 0; cc = c0; hd = p.K;
  } else if (c0 < 2 * p.HkK) {
    which = 1; cc = c0 - p.HkK; hd = p.K;
  } else {
    which = 2; cc = c0 - 2 * p.HkK; hd = p.V;
  }
  T *out = reinterpret_cast<T *>(p.out[which]) + (int64_t)(cc / hd) * p.out_h[which] + (cc % hd);
  const int64_t out_t = p.out_t[which];
  const T *mixed = reinterpret_cast<const T *>(p.mixed) + c0;

  /* Sequence holding token a: the largest n < num_seqs with cu[n] <= a (cu[0] = 0). */
  const int32_t *cu = p.cu_seqlens;
  int lo_n = 0, hi_n = num_seqs;
  while (hi_n - lo_n > 1) {
    int mid = (lo_n + hi_n) >> 1;
    if (cu[mid] <= a) lo_n = mid; else hi_n = mid;
  }
  for (int n = lo_n; n < num_seqs; ++n) {
    const int s0 = max(cu[n], 0), s1 = min(cu[n + 1], num_tokens);
    if (s0 >= b) break;
    if (s1 <= s0 || s1 <= a) continue;
    const bool owner = s0 >= a;
    int lo, hi;
    if (owner) {
      lo = s0;
      hi = min(s1, max(b, s0 + W - 1));
    } else {
      lo = max(a, s0 + W - 1);
      hi = min(s1, b);
      if (lo >= hi) continue; /* the owner covers these tokens; don't read past them */
    }
    int slot = p.slots != nullptr ? p.slots[n] : GDN_PAD_SLOT;
    if (p.state == nullptr) slot = GDN_PAD_SLOT;
    if (slot < GDN_PAD_SLOT || (slot != GDN_PAD_SLOT && slot >= p.num_slots)) continue; /* out of range: skip */

    /* r[0, W-1): the window, inputs at lo-W+1 .. lo-1, kept as raw 16-bit vectors. Before
     * s0 (owner only, lo = s0) they are the old state, entry W-1 + pos - s0 (= j), or zeros
     * without a slot. r[W-1, W-1+STEP): the rows of one step. */
    T *st = slot >= 0 ? reinterpret_cast<T *>(p.state) + (int64_t)slot * p.st_slot + c0 : nullptr;
    vec_t r[W - 1 + GDN_CONV1D_STEP];
#pragma unroll
    for (int j = 0; j < W - 1; ++j) {
      const int pos = lo - (W - 1) + j;
      if (pos >= s0) {
        r[j] = *reinterpret_cast<const vec_t *>(mixed + (int64_t)pos * p.mixed_row);
      } else if (st != nullptr) {
        r[j] = *reinterpret_cast<const vec_t *>(st + (int64_t)(W - 1 + pos - s0) * p.st_tok);
      } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) r[j].v[i] = gdn_from_float<T>(0.0f);
      }
    }
    for (int t = lo; t < hi; t += GDN_CONV1D_STEP) {
      /* All STEP loads first, so they are in flight together. */
#pragma unroll
      for (int u = 0; u < GDN_CONV1D_STEP; ++u) {
        const int row = min(t + u, hi - 1);
        r[W - 1 + u] = *reinterpret_cast<const vec_t *>(mixed + (int64_t)row * p.mixed_row);
      }
#pragma unroll
      for (int u = 0; u < GDN_CONV1D_STEP; ++u) {
        float y[VEC];
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
          float acc = bias[i];
#pragma unroll
          for (int j = 0; j < W; ++j) acc = fmaf(w[i][j], gdn_to_float(r[u + j].v[i]), acc);
          y[i] = gdn_silu_fast(acc); /* the IEEE divide would leave this stream issue-bound */
        }
        if (t + u < hi) gdn_store_vec<T, VEC>(out + (int64_t)(t + u) * out_t, y);
      }
#pragma unroll
      for (int j = 0; j < W - 1; ++j) r[j] = r[GDN_CONV1D_STEP + j];
    }
    /* New state, entry j = x_{len-(W-1)+j}: a raw copy from mixed, or for a sequence shorter
     * than W-1 from old entry j + len. Written in increasing j, so every old entry read
     * (index j + len > j) is above all entries this thread has written so far. */
    if (owner && st != nullptr) {
      const int len = s1 - s0;
#pragma unroll
      for (int j = 0; j < W - 1; ++j) {
        const int li = len - (W - 1) + j; /* sequence-local index */
        const T *src = li >= 0 ? mixed + (int64_t)(s0 + li) * p.mixed_row : st + (int64_t)(j + len) * p.st_tok;
        gdn_copy_vec<T, VEC>(st + (int64_t)j * p.st_tok, src);
      }
    }
  }
}

template <typename T, int W> const void *pick_vec(int vec) {
  switch (vec) {
    case 1: return (const void *)conv1d_kernel<T, W, 1>;
    case 2: return (const void *)conv1d_kernel<T, W, 2>;
    case 4: return (const void *)conv1d_kernel<T, W, 4>;
    default: return (const void *)conv1d_kernel<T, W, 8>;
  }
}

template <typename T> const void *pick_w(int W, int vec) {
  switch (W) {
    case 2: return pick_vec<T, 2>(vec);
    case 3: return pick_vec<T, 3>(vec);
    default: return pick_vec<T, 4>(vec);
  }
}

gdn_status build_call(const gdn_conv1d_args *a, const gdn_conv1d_config *cfg, gdn_conv1d_params *p, gdn_kernel_call *call) {
  GDN_TRY(gdn_conv1d_check_config(a, cfg));
  gdn_conv1d_shape_t s;
  GDN_TRY(gdn_conv1d_shape(a, &s));
  memset(p, 0, sizeof *p);
  p->mixed = (const char *)a->mixed.data;
  p->mixed_row = a->mixed.strides[0];
  p->weight = (const char *)a->weight.data;
  p->w_s0 = a->weight.strides[0];
  p->w_s1 = a->weight.strides[1];
  p->w_f32 = a->weight.dtype == GDN_DTYPE_F32;
  {
    const size_t es = p->w_f32 ? 4u : 2u;
    p->w_packed = a->weight.strides[1] == 1 && a->weight.strides[0] == s.W && (size_t)cfg->vec * s.W * es % 16 == 0 &&
                  (uintptr_t)a->weight.data % 16 == 0;
  }
  p->bias = (const char *)a->bias.data;
  p->b_s0 = a->bias.data != NULL ? a->bias.strides[0] : 0;
  p->bias_mode = a->bias.data == NULL ? 0 : a->bias.dtype == GDN_DTYPE_F32 ? 1 : 2;
  p->state = (char *)a->conv_state.data;
  if (p->state != NULL) {
    p->st_slot = a->conv_state.strides[0];
    p->st_tok = a->conv_state.strides[1];
  }
  p->num_slots = s.num_slots;
  const gdn_tensor *o[3] = {&a->q, &a->k, &a->v};
  for (int i = 0; i < 3; ++i) {
    p->out[i] = (char *)o[i]->data;
    p->out_t[i] = o[i]->strides[0];
    p->out_h[i] = o[i]->strides[1];
  }
  p->HkK = s.Hk * s.K;
  p->K = s.K;
  p->V = s.V;
  p->D = s.D;
  p->cu_seqlens = a->batch.cu_seqlens;
  p->slots = a->batch.slots;
  p->header = a->batch.header;
  p->max_seqs = a->batch.max_seqs;
  p->max_tokens = a->batch.max_tokens;
  p->tile = cfg->tile_tokens;

  call->func = a->mixed.dtype == GDN_DTYPE_BF16 ? pick_w<__nv_bfloat16>(s.W, cfg->vec) : pick_w<__half>(s.W, cfg->vec);
  int64_t groups = s.D / cfg->vec;
  int64_t bx = ((int64_t)a->batch.max_tokens + cfg->tile_tokens - 1) / cfg->tile_tokens;
  call->grid = dim3((unsigned)(bx > 0 ? bx : 1), (unsigned)((groups + cfg->threads - 1) / cfg->threads), 1);
  call->block = dim3((unsigned)cfg->threads, 1, 1);
  call->smem = 0;
  call->params = p;
  return GDN_SUCCESS;
}

} /* namespace */

extern "C" gdn_status gdn_conv1d_launch(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg, cudaStream_t stream) {
  gdn_clear_last_error();
  gdn_conv1d_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_conv1d_add_node(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg, cudaGraph_t graph,
                                          const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_conv1d_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_conv1d_update_node(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg,
                                             cudaGraphExec_t exec, cudaGraphNode_t node) {
  gdn_clear_last_error();
  gdn_conv1d_params p;
  gdn_kernel_call call;
  GDN_TRY(build_call(args, cfg, &p, &call));
  return gdn_kernel_update_node(&call, exec, node);
}
