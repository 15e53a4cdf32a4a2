/* qkv_split kernels: a vectorized row copy (token-major and generic inputs) and a
 * shared-memory tiled transpose (channel-major inputs), plus launch / add-node /
 * update-node. Every path copies bits; the dtype only fixes the element size. */
#include <cuda_runtime.h>
#include <stdint.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "ops/qkv_split/qkv_split_internal.h"

namespace {

constexpr int kThreads = GDN_QKV_SPLIT_THREADS;
constexpr int kRows = GDN_QKV_SPLIT_ROWS_PER_THREAD;
constexpr int kTileC = GDN_QKV_SPLIT_TILE_C;
constexpr int kTileBytes = GDN_QKV_SPLIT_TILE_BYTES;

/* Where channel (unit) j of a row goes: the output's base pointer, its token stride and
 * the offset of j inside the token's row of that output (all in units). */
struct route {
  char *base;
  int64_t s0;
  int64_t off;
};

__device__ __forceinline__ route route_channel(const gdn_qkv_split_desc &p, int j, int unit) {
  const int qk = (int)p.qk_cols;
  /* Selects instead of indexing p.out[] with a runtime index (keeps the params in the
   * constant bank). */
  const int seg = j < qk ? 0 : (j < 2 * qk ? 1 : 2);
#define GDN_QKV_PICK(f) (seg == 0 ? p.out[0].f : (seg == 1 ? p.out[1].f : p.out[2].f))
  const int hd = (int)GDN_QKV_PICK(hd);
  const int64_t s1 = GDN_QKV_PICK(s1);
  route r;
  r.base = (char *)GDN_QKV_PICK(data);
  r.s0 = GDN_QKV_PICK(s0) * unit;
#undef GDN_QKV_PICK
  const int jj = j - seg * qk;
  const int h = jj / hd;
  r.off = ((int64_t)h * s1 + (jj - h * hd)) * unit;
  return r;
}

/* ---- row copy: one thread moves one VEC-byte vector of kRows rows. Lanes run along the
 * row (coalesced reads and writes); each thread issues its kRows loads before storing.
 * Grid: x over row groups of blockDim.y * kRows, y over vector columns of blockDim.x. */
template <int VEC>
__global__ void __launch_bounds__(kThreads) qkv_split_rows_kernel(gdn_qkv_split_desc p) {
  typedef typename gdn_bits<VEC>::T vec_t;
  const vec_t *src = (const vec_t *)p.src;
  const int64_t t_first = (int64_t)blockIdx.x * blockDim.y * kRows + threadIdx.y;
  for (int64_t j = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; j < p.cols; j += (int64_t)gridDim.y * blockDim.x) {
    const route r = route_channel(p, (int)j, VEC);
    vec_t v[kRows];
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      const int64_t t = t_first + (int64_t)i * blockDim.y;
      if (t < p.T) v[i] = src[t * p.src_s0 + j * p.src_s1];
    }
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      const int64_t t = t_first + (int64_t)i * blockDim.y;
      if (t < p.T) *(vec_t *)(r.base + t * r.s0 + r.off) = v[i];
    }
  }
}

/* ---- transpose (channel-major input: element (t, c) at src + c * src_s1 + t).
 * A block owns TT tokens (TT * E = 128 bytes) and walks tiles of 64 channels:
 *  1. read: each channel row's token range is covered by 16-byte ALIGNED chunks (8, or 9
 *     when the row is misaligned, as for odd T), so reads are 16-byte and coalesced
 *     whatever T's alignment; chunks reaching outside the tensor's span fall back to
 *     element loads. Elements land in smem tile[c][t] (scalar stores).
 *  2. write: each thread gathers NO = OV / E consecutive channels of one token from smem
 *     and stores them as one OV-byte vector; 8+ lanes cover a token's 64 channels, so
 *     the writes are coalesced rows of q / k / v.
 * The smem pitch is TT + 1 elements (odd): the step-2 reads (lanes spread over channels
 * and tokens) are then bank-conflict free; step 1 sees at most 2-4 way conflicts, far
 * below what would limit a copy running at DRAM speed. */
template <int E>
__device__ __forceinline__ unsigned int chunk_elem(const uint4 &v, int e) {
  const int w = e * E / 4;
  const unsigned int word = w == 0 ? v.x : (w == 1 ? v.y : (w == 2 ? v.z : v.w));
  return E == 4 ? word : (word >> (16 * (e & 1))) & 0xffffu;
}

template <int E>
__device__ __forceinline__ void chunk_set(uint4 &v, int e, unsigned int x) {
  const int w = e * E / 4;
  const unsigned int add = E == 4 ? x : x << (16 * (e & 1));
  if (w == 0) v.x |= add;
  else if (w == 1) v.y |= add;
  else if (w == 2) v.z |= add;
  else v.w |= add;
}

/* 6 blocks per SM (40 registers, no spills): loads of 6 tiles in flight per SM. */
template <int E, int OV>
__global__ void __launch_bounds__(kThreads, 6) qkv_split_transpose_kernel(gdn_qkv_split_desc p) {
  typedef typename gdn_bits<E>::T elem_t;
  constexpr int TT = kTileBytes / E;   /* tokens per tile */
  constexpr int P = TT + 1;            /* smem pitch (elements) */
  constexpr int CH = 16 / E;           /* elements per 16-byte chunk */
  constexpr int NO = OV / E;           /* channels per output vector */
  constexpr int VPR = kTileC / NO;     /* output vectors per token per tile */
  constexpr int TOK_STEP = kThreads / VPR;
  constexpr int STORES = TT / TOK_STEP;
  constexpr int SLOTS = kTileC * 8 / kThreads; /* regular chunks per thread (8 per row) */
  static_assert(kThreads % VPR == 0 && TT % TOK_STEP == 0 && (kTileC * 8) % kThreads == 0, "tile shape");
  __shared__ elem_t tile[kTileC * P];

  const int tid = threadIdx.x;
  const int64_t t0 = (int64_t)blockIdx.x * TT;
  const int64_t left = p.T - t0;
  if (left <= 0) return; /* the 1-block node of an empty problem */
  const int nt = left < TT ? (int)left : TT;
  const uintptr_t lo = (uintptr_t)p.src, hi = lo + (uintptr_t)p.src_span_bytes;
  const int64_t row_bytes = p.src_s1 * E;

  /* Step 2's (token, channel vector) for this thread is the same in every tile. */
  const int vec = tid % VPR;
  const int tok_first = tid / VPR;

  for (int64_t c0 = (int64_t)blockIdx.y * kTileC; c0 < p.cols; c0 += (int64_t)gridDim.y * kTileC) {
    /* Step 1: slots s = tid + kThreads * i: row s / 8, chunk s % 8 (a warp reads 4 rows x
     * 128 B). The lane with chunk 7 also takes chunk 8 of a misaligned row. */
    uint4 buf[SLOTS][2];
    int tt0[SLOTS][2]; /* tile token index of the chunk's element 0 (may be negative) */
    bool on[SLOTS][2];
#pragma unroll
    for (int i = 0; i < SLOTS; ++i) {
      const int s = tid + kThreads * i;
      const int64_t c = c0 + (s >> 3);
      const int k = s & 7;
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        buf[i][x] = make_uint4(0, 0, 0, 0);
        on[i][x] = false;
        tt0[i][x] = 0;
        if (c >= p.cols || (x == 1 && k != 7)) continue;
        const uintptr_t a = lo + (uintptr_t)(c * row_bytes + t0 * E); /* first wanted byte */
        const uintptr_t b = a + (uintptr_t)nt * E;                    /* one past the last */
        const uintptr_t X = (a & ~(uintptr_t)15) + 16u * (uintptr_t)(x ? 8 : k);
        if (X >= b) continue;
        on[i][x] = true;
        tt0[i][x] = (int)(((intptr_t)X - (intptr_t)a) / E);
        /* __ldg: a global (read-only path) load; the address came through integer math,
         * which would otherwise leave a generic load. The input is never written here. */
        if (X >= lo && X + 16 <= hi) {
          buf[i][x] = __ldg((const uint4 *)X);
        } else {
#pragma unroll
          for (int e = 0; e < CH; ++e) {
            const uintptr_t ea = X + (uintptr_t)(e * E);
            if (ea >= a && ea < b) chunk_set<E>(buf[i][x], e, __ldg((const elem_t *)ea));
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < SLOTS; ++i) {
      const int cl = (tid + kThreads * i) >> 3;
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        if (!on[i][x]) continue;
#pragma unroll
        for (int e = 0; e < CH; ++e) {
          const int tt = tt0[i][x] + e;
          if (tt >= 0 && tt < nt) tile[cl * P + tt] = (elem_t)chunk_elem<E>(buf[i][x], e);
        }
      }
    }
    __syncthreads();

    /* Step 2. */
    const int64_t c = c0 + (int64_t)vec * NO;
    if (c < p.cols) {
      const route r = route_channel(p, (int)c, E);
      const elem_t *col = tile + vec * NO * P;
#pragma unroll
      for (int i = 0; i < STORES; ++i) {
        const int tok = tok_first + i * TOK_STEP;
        if (tok >= nt) break;
        char *dst = r.base + (t0 + tok) * r.s0 + r.off;
        if constexpr (OV == 2) {
          *(unsigned short *)dst = col[tok];
        } else {
          unsigned int w[OV / 4];
#pragma unroll
          for (int q = 0; q < OV / 4; ++q) {
            if constexpr (E == 4) {
              w[q] = col[q * P + tok];
            } else {
              w[q] = (unsigned int)col[(2 * q) * P + tok] | ((unsigned int)col[(2 * q + 1) * P + tok] << 16);
            }
          }
          if constexpr (OV == 16) *(uint4 *)dst = make_uint4(w[0], w[1], w[2], w[3]);
          else if constexpr (OV == 8) *(uint2 *)dst = make_uint2(w[0], w[1]);
          else *(unsigned int *)dst = w[0];
        }
      }
    }
    __syncthreads(); /* the next tile reuses smem */
  }
}

const void *pick_kernel(const gdn_qkv_split_config *cfg) {
  const int E = cfg->elem_bytes, V = cfg->vec_bytes;
  if (cfg->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR) {
    if (E == 2) {
      switch (V) {
        case 16: return (const void *)qkv_split_transpose_kernel<2, 16>;
        case 8: return (const void *)qkv_split_transpose_kernel<2, 8>;
        case 4: return (const void *)qkv_split_transpose_kernel<2, 4>;
        case 2: return (const void *)qkv_split_transpose_kernel<2, 2>;
      }
    } else if (E == 4) {
      switch (V) {
        case 16: return (const void *)qkv_split_transpose_kernel<4, 16>;
        case 8: return (const void *)qkv_split_transpose_kernel<4, 8>;
        case 4: return (const void *)qkv_split_transpose_kernel<4, 4>;
      }
    }
    return NULL;
  }
  switch (V) {
    case 16: return (const void *)qkv_split_rows_kernel<16>;
    case 8: return (const void *)qkv_split_rows_kernel<8>;
    case 4: return (const void *)qkv_split_rows_kernel<4>;
    case 2: return (const void *)qkv_split_rows_kernel<2>;
  }
  return NULL;
}

/* Builds the launch for args under cfg: the description (checked against cfg) and a grid
 * derived from T. */
gdn_status make_call(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg, const char *who,
                     gdn_qkv_split_desc *desc, gdn_kernel_call *call) {
  GDN_TRY(gdn_qkv_split_describe(args, cfg, who, desc));
  call->func = pick_kernel(cfg);
  if (call->func == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: no kernel for elem_bytes %d, vec_bytes %d; plan again", who,
                    cfg->elem_bytes, cfg->vec_bytes);
  const int64_t T = desc->T;
  const int64_t gx = (T + cfg->tile_tokens - 1) / cfg->tile_tokens;
  const int64_t col_tile = cfg->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR ? kTileC : cfg->block_x;
  int64_t gy = (desc->cols + col_tile - 1) / col_tile;
  if (gy > 65535) gy = 65535; /* the kernels loop over further column tiles */
  if (gx > 0x7fffffffLL)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "%s: T = %lld needs %lld blocks in x, above 2^31-1", who, (long long)T,
                    (long long)gx);
  call->grid = dim3((unsigned)gx, (unsigned)gy, 1);
  call->block = dim3((unsigned)cfg->block_x, (unsigned)cfg->block_y, 1);
  call->smem = 0; /* static shared memory only */
  call->params = desc;
  return GDN_SUCCESS;
}

} // namespace

extern "C" gdn_status gdn_qkv_split_launch(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                           cudaStream_t stream) {
  gdn_clear_last_error();
  gdn_qkv_split_desc desc;
  gdn_kernel_call call;
  GDN_TRY(make_call(args, cfg, "qkv_split_launch", &desc, &call));
  return gdn_kernel_launch(&call, stream);
}

extern "C" gdn_status gdn_qkv_split_add_node(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                             cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                             cudaGraphNode_t *node) {
  gdn_clear_last_error();
  gdn_qkv_split_desc desc;
  gdn_kernel_call call;
  GDN_TRY(make_call(args, cfg, "qkv_split_add_node", &desc, &call));
  return gdn_kernel_add_node(&call, graph, deps, num_deps, node);
}

extern "C" gdn_status gdn_qkv_split_update_node(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                                cudaGraphExec_t exec, cudaGraphNode_t node) {
  gdn_clear_last_error();
  if (exec == NULL || node == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "qkv_split_update_node: exec and node must not be NULL");
  gdn_qkv_split_desc desc;
  gdn_kernel_call call;
  GDN_TRY(make_call(args, cfg, "qkv_split_update_node", &desc, &call));
  return gdn_kernel_update_node(&call, exec, node);
}
