/* Causal depthwise conv1d + SiLU with a conv-state pool: kernel, launch, graph node.
 *
 * Block = (channel block, token tile), channel block fastest in the 1-D grid, so the blocks
 * of one tile (running together) read whole rows of `mixed` and write whole rows of q, k, v.
 * Each thread owns `VEC` consecutive channels (one 16-byte access per token at VEC 8 for
 * 16-bit data) and walks the tokens of its tile in order, keeping the W-1 previous inputs
 * (the window, fp32) in registers. The op is a stream (per token D inputs read, D outputs
 * written), so what matters is bytes in flight per SM and instructions per token:
 *   - rows go global -> shared by cp.async into a per-thread ring of GDN_CONV1D_RING slots,
 *     RING-1 rows ahead of the token being computed, and each thread reads back only its own
 *     slots (cp.async.wait_group, no barrier). Loads stay in flight while the thread computes
 *     and cost no registers (a batch of 8 row loads into registers, the earlier form, ran
 *     at 128 registers: ptxas issued 3, consumed the first, then issued the other 5, two DRAM
 *     round trips per 8 tokens, and no loads in flight while the warp computed).
 *   - SiLU from the pre-activation scaled by -log2(e) (folded into the weights and bias):
 *     y = a' / ((1 + 2^a') (-log2 e)), one ex2, one FFMA, one rcp, one FMUL per element,
 *     ftz forms (the non-ftz ex2 adds three instructions for denormal inputs).
 * Tiles: the plan's grid has `tiles` token tiles; at run time the batch's num_tokens are
 * split evenly over min(tiles, num_tokens / min_run) of them (a plan for a full bucket puts
 * one wave of blocks on the GPU; a short batch in a big bucket still spreads over the SMs).
 * A tile may hold several sequences; for each one the block computes tokens [lo, hi):
 *   - the block whose tile holds the sequence's first token s0 (the "owner") computes
 *     [s0, min(s1, max(tile_end, s0+W-1))): it alone needs the old conv state, and it
 *     writes the new state after reading the old one (same thread, same channels);
 *   - any later tile computes [max(tile_start, s0+W-1), min(s1, tile_end)), whose window
 *     (the halo: the W-1 rows before lo) lies inside the sequence, so it never touches the
 *     state.
 * Hence no (slot, channel) state entry is read and written by different threads. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "ops/conv1d/conv1d_params.h"
#include "ops/conv1d/conv1d_shape.h"

namespace {

extern __shared__ __align__(16) unsigned char conv1d_ring[];

/* One vector global -> shared without a register. cp.async moves 4, 8 or 16 bytes; a 2-byte
 * vector (vec 1, unaligned layouts only) is copied through a register. */
template <int BYTES> __device__ __forceinline__ void ring_fetch(void *dst, const void *src) {
  if constexpr (BYTES == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src)
                 : "memory");
  } else if constexpr (BYTES >= 4) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src),
                 "n"(BYTES)
                 : "memory");
  } else {
    *reinterpret_cast<uint16_t *>(dst) = *reinterpret_cast<const uint16_t *>(src);
  }
}
__device__ __forceinline__ void ring_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/* All but the N most recent groups of this thread have landed (and are visible to it). */
template <int N> __device__ __forceinline__ void ring_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ void widen(const gdn_vec<__nv_bfloat16, 1> &r, float *x) { x[0] = gdn_to_float(r.v[0]); }
__device__ __forceinline__ void widen(const gdn_vec<__half, 1> &r, float *x) { x[0] = gdn_to_float(r.v[0]); }
/* 16-bit pairs to fp32: bf16 is the high half of an fp32 (a shift or a mask per element). */
template <int VEC> __device__ __forceinline__ void widen(const gdn_vec<__nv_bfloat16, VEC> &r, float *x) {
  const uint32_t *u = reinterpret_cast<const uint32_t *>(&r);
#pragma unroll
  for (int i = 0; i < VEC / 2; ++i) {
    x[2 * i] = __uint_as_float(u[i] << 16);
    x[2 * i + 1] = __uint_as_float(u[i] & 0xFFFF0000u);
  }
}
template <int VEC> __device__ __forceinline__ void widen(const gdn_vec<__half, VEC> &r, float *x) {
  const uint32_t *u = reinterpret_cast<const uint32_t *>(&r);
#pragma unroll
  for (int i = 0; i < VEC / 2; ++i) {
    const float2 f = gdn_unpack2<1>(u[i]);
    x[2 * i] = f.x;
    x[2 * i + 1] = f.y;
  }
}

/* Rows [r0, r0 + N) clipped to [0, rows) of this thread's column into L2. */
template <int N, typename T>
__device__ __forceinline__ void prefetch_rows(const T *col, int64_t row, int r0, int rows) {
  const int lo = max(r0, 0), hi = min(r0 + N, rows);
  const T *q = col + (int64_t)lo * row;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    if (lo + k < hi) asm volatile("prefetch.global.L2 [%0];\n" ::"l"(q));
    q += row;
  }
}

__device__ __forceinline__ float rcp_fast(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/* One token: out = silu(conv(window, x)) stored at o, then the window slides by x. The
 * weights and bias come scaled by -log2(e): acc = -log2(e) * pre-activation. */
template <typename T, int W, int VEC>
__device__ __forceinline__ void conv_token(float (&win)[W - 1][VEC], const float (&x)[VEC], const float (&w)[VEC][W],
                                           const float (&bias)[VEC], T *o) {
  float y[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    float acc = bias[i];
#pragma unroll
    for (int j = 0; j < W - 1; ++j) acc = fmaf(w[i][j], win[j][i], acc);
    acc = fmaf(w[i][W - 1], x[i], acc);
    /* silu(a) = a / (1 + e^-a) with acc = -a log2(e): a / (1 + 2^acc) = acc / ((1 + 2^acc)(-log2 e)).
     * acc -> -inf: 2^acc = 0, y = a; acc -> +inf: rcp(-inf) = -0, y = -0. */
    y[i] = acc * rcp_fast(fmaf(gdn_ex2_fast(acc), -GDN_LOG2E, -GDN_LOG2E));
  }
  gdn_store_vec<T, VEC>(o, y);
#pragma unroll
  for (int j = 0; j < W - 2; ++j)
#pragma unroll
    for (int i = 0; i < VEC; ++i) win[j][i] = win[j + 1][i];
#pragma unroll
  for (int i = 0; i < VEC; ++i) win[W - 2][i] = x[i];
}

template <typename T, int W, int VEC>
__global__ void __launch_bounds__(GDN_CONV1D_MAX_THREADS, GDN_CONV1D_MIN_BLOCKS) conv1d_kernel(const gdn_conv1d_params p) {
  typedef gdn_vec<T, VEC> vec_t;
  constexpr int R = GDN_CONV1D_RING;
  const int cb = (int)(blockIdx.x % (unsigned)p.cblocks), tile = (int)(blockIdx.x / (unsigned)p.cblocks);
  const int c0 = (cb * blockDim.x + threadIdx.x) * VEC;
  if (c0 >= p.D) return;

  const T *mixed = reinterpret_cast<const T *>(p.mixed) + c0;
  const int64_t row = p.mixed_row;
  /* The tile's first rows (the halo and the ring's first fill) into L2 before the header's
   * round trip, for the tile start of a full bucket (num_tokens = max_tokens; after the
   * header the real start is prefetched if it differs). Rows are clipped to
   * [0, max_tokens): always valid addresses. */
  const int a_full = (int)((int64_t)tile * p.max_tokens / p.tiles);
  prefetch_rows<W - 1 + R - 1>(mixed, row, a_full - (W - 1), p.max_tokens);

  /* Per-thread constants (independent of the batch: issued before the header arrives):
   * weights and bias times -log2(e). */
  float w[VEC][W], bias[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
#pragma unroll
    for (int j = 0; j < W; ++j) {
      int64_t off = (int64_t)(c0 + i) * p.w_s0 + (int64_t)j * p.w_s1;
      w[i][j] = -GDN_LOG2E * (p.w_f32 ? reinterpret_cast<const float *>(p.weight)[off]
                                      : gdn_to_float(reinterpret_cast<const T *>(p.weight)[off]));
    }
    int64_t boff = (int64_t)(c0 + i) * p.b_s0;
    bias[i] = p.bias_mode == 0 ? 0.0f
            : -GDN_LOG2E * (p.bias_mode == 1 ? reinterpret_cast<const float *>(p.bias)[boff]
                                             : gdn_to_float(reinterpret_cast<const T *>(p.bias)[boff]));
  }

  const gdn_batch_header *hdr = p.header;
  const int status = hdr->status, num_seqs = hdr->num_seqs, num_tokens = hdr->num_tokens;
  if (status != 0 || num_seqs <= 0 || num_seqs > p.max_seqs || num_tokens <= 0 || num_tokens > p.max_tokens) return;
  /* Even split of the batch over the tiles in use (>= min_run tokens each where possible). */
  const int used = (int)min((int64_t)p.tiles, max((int64_t)1, (int64_t)(num_tokens / p.min_run)));
  if (tile >= used) return;
  const int a = (int)((int64_t)tile * num_tokens / used), b = (int)((int64_t)(tile + 1) * num_tokens / used);
  if (a >= b) return;
  if (a != a_full) prefetch_rows<W - 1 + R - 1>(mixed, row, a - (W - 1), p.max_tokens);

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
  /* The thread's ring: R consecutive vectors (slot k at an immediate offset; R odd: the R x 16-byte
   * thread stride puts the 8 threads of a 128-byte phase on distinct banks). */
  vec_t *ring = reinterpret_cast<vec_t *>(conv1d_ring) + threadIdx.x * R;

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

    /* Rows lo .. lo+R-2 into ring slots 0 .. R-2 (one cp.async group per row, empty past hi). */
    const T *src = mixed + (int64_t)lo * row;
#pragma unroll
    for (int k = 0; k < R - 1; ++k) {
      if (lo + k < hi) ring_fetch<sizeof(vec_t)>(ring + k, src + k * row);
      ring_commit();
    }
    src += (int64_t)(R - 1) * row; /* the next row to fetch: t + R - 1 */

    /* The window: inputs at lo-W+1 .. lo-1. Before s0 (owner only, lo = s0) they are the old
     * state, entry W-1 + pos - s0, or zeros without a slot. */
    T *st = slot >= 0 ? reinterpret_cast<T *>(p.state) + (int64_t)slot * p.st_slot + c0 : nullptr;
    float win[W - 1][VEC];
#pragma unroll
    for (int j = 0; j < W - 1; ++j) {
      const int pos = lo - (W - 1) + j;
      vec_t v;
      if (pos >= s0) {
        v = *reinterpret_cast<const vec_t *>(mixed + (int64_t)pos * row);
      } else if (st != nullptr) {
        v = *reinterpret_cast<const vec_t *>(st + (int64_t)(W - 1 + pos - s0) * p.st_tok);
      } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) v.v[i] = gdn_from_float<T>(0.0f);
      }
      widen(v, win[j]);
    }

    /* Token t reads slot (t - lo) % R, then refills the slot read by token t-1 (its value
     * already consumed: the store of t-1 precedes this cp.async) with row t + R - 1. */
    T *o = out + (int64_t)lo * out_t;
    int t = lo;
    for (; t + R <= hi; t += R) {
#pragma unroll
      for (int u = 0; u < R; ++u) {
        ring_wait<R - 2>();
        const vec_t raw = ring[u];
        if (t + u + R - 1 < hi) ring_fetch<sizeof(vec_t)>(ring + (u + R - 1) % R, src);
        ring_commit();
        src += row;
        float x[VEC];
        widen(raw, x);
        conv_token<T, W, VEC>(win, x, w, bias, o);
        o += out_t;
      }
    }
    ring_wait<0>();
    for (int k = 0; t < hi; ++t, ++k) {
      float x[VEC];
      widen(ring[k], x);
      conv_token<T, W, VEC>(win, x, w, bias, o);
      o += out_t;
    }

    /* New state, entry j = x_{len-(W-1)+j}: a raw copy from mixed, or for a sequence shorter
     * than W-1 from old entry j + len. Written in increasing j, so every old entry read
     * (index j + len > j) is above all entries this thread has written so far. */
    if (owner && st != nullptr) {
      const int len = s1 - s0;
#pragma unroll
      for (int j = 0; j < W - 1; ++j) {
        const int li = len - (W - 1) + j; /* sequence-local index */
        const T *srcs = li >= 0 ? mixed + (int64_t)(s0 + li) * row : st + (int64_t)(j + len) * p.st_tok;
        gdn_copy_vec<T, VEC>(st + (int64_t)j * p.st_tok, srcs);
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
  const int64_t groups = s.D / cfg->vec, cblocks = (groups + cfg->threads - 1) / cfg->threads;
  const int64_t tiles = ((int64_t)a->batch.max_tokens + cfg->tile_tokens - 1) / cfg->tile_tokens;
  p->cblocks = (int)cblocks;
  p->tiles = (int)(tiles > 0 ? tiles : 1);
  p->min_run = cfg->tile_tokens < GDN_CONV1D_MIN_RUN ? cfg->tile_tokens : GDN_CONV1D_MIN_RUN;

  call->func = a->mixed.dtype == GDN_DTYPE_BF16 ? pick_w<__nv_bfloat16>(s.W, cfg->vec) : pick_w<__half>(s.W, cfg->vec);
  call->grid = dim3((unsigned)(p->tiles * cblocks), 1, 1);
  call->block = dim3((unsigned)cfg->threads, 1, 1);
  call->smem = (size_t)GDN_CONV1D_RING * cfg->threads * cfg->vec * gdn_dtype_size(a->mixed.dtype);
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
