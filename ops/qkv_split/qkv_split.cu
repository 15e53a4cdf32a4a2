/* qkv_split kernels: a vectorized row copy (token-major and generic inputs) and a
 * register + shared-memory tiled transpose (channel-major inputs), plus launch / add-node /
 * update-node. Every path copies bits; the dtype only fixes the element size. */
#include <cuda_runtime.h>
#include <stdint.h>
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "ops/qkv_split/qkv_split_internal.h"

namespace {

constexpr int kThreads = GDN_QKV_SPLIT_THREADS;
constexpr int kRows = GDN_QKV_SPLIT_ROWS_PER_THREAD;

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
 * A block owns a tile of kTileC = 128 channels x kTileBytes = 256 bytes of tokens (128
 * bf16 / 64 fp32 tokens): 32 KB read and 32 KB written, every global and shared access
 * 16 bytes wide. A thread owns (channel x token) blocks of CH x CH elements, CH = 16 / E
 * (one 8x8 block for 16-bit types, two 4x4 for fp32: 8 loads, 128 bytes, either way):
 *  1. read: one 16-byte chunk (CH tokens) of each of its CH channel rows, all issued
 *     before any is used; a quarter-warp reads one 128-byte line of one row. Rows that
 *     do not start on a 16-byte boundary (odd T, offset views: the ALIGNED == false
 *     kernel) load the aligned chunks around them instead, take the next one from the
 *     neighbour lane (shuffle) and shift. Chunks leaving the tensor's span are read
 *     element by element, so no load leaves the allocation.
 *  2. the block is transposed in registers (byte permutes of 16-bit pairs; renaming for
 *     fp32) into CH "units": the CH channels of one token, 16 bytes.
 *  3. units pass through shared memory [token][unit], XOR-swizzled by (token / CH) % 8:
 *     the writes (a quarter-warp: 8 chunks of one row, tokens CH apart) and the reads (a
 *     quarter-warp: 8 units of one token) both hit 8 distinct 16-byte bank groups.
 *  4. write: a quarter-warp stores 8 units of one token = 128 contiguous bytes of its row
 *     of q / k / v (OV-byte pieces where an output does not allow 16-byte vectors).
 * 3 blocks per SM (<= 80 registers) keep up to 96 KB of loads in flight per SM, where a
 * 4 TB/s copy needs ~25 KB (the old 8 KB tiles with 2-byte shared accesses had too few). */
constexpr int kTileC = GDN_QKV_SPLIT_TILE_C;
constexpr int kTileBytes = GDN_QKV_SPLIT_TILE_BYTES;
constexpr int kChunks = kTileBytes / 16; /* 16-byte chunks per tile row = lanes per row */
constexpr int kBand = 16;                /* channel tiles per band of the block order */

/* The 16 bytes at the 16-byte aligned address X as 4 words. CHECKED: element by element
 * where X is not wholly inside [lo, hi), the tensor's span (zeros outside it). */
template <int E, bool CHECKED>
__device__ __forceinline__ void load_chunk(uintptr_t X, uintptr_t lo, uintptr_t hi, unsigned int (&w)[4]) {
  /* __ldg: a global (read-only path) load; the address came through integer math, which
   * would otherwise leave a generic load. The input is never written here. */
  if (!CHECKED || (X >= lo && X + 16 <= hi)) {
    const uint4 v = __ldg((const uint4 *)X);
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    return;
  }
  w[0] = w[1] = w[2] = w[3] = 0;
#pragma unroll
  for (int e = 0; e < 16 / E; ++e) {
    const uintptr_t ea = X + (uintptr_t)(e * E);
    if (ea < lo || ea >= hi) continue;
    const unsigned int x = E == 4 ? __ldg((const unsigned int *)ea) : (unsigned int)__ldg((const unsigned short *)ea);
    w[e * E / 4] |= x << (8 * (e * E % 4));
  }
}

/* The 16 bytes at byte offset sh (0..15) of the 32 bytes a, b (a first). */
__device__ __forceinline__ void shift_chunk(const unsigned int (&a)[4], const unsigned int (&b)[4], int sh,
                                            unsigned int (&out)[4]) {
  const unsigned int w[8] = {a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]};
  const int q = sh >> 2;                        /* whole words */
  const unsigned int bits = 8u * (unsigned)(sh & 3); /* and bytes within one */
  unsigned int u[5];
#pragma unroll
  for (int i = 0; i < 5; ++i) u[i] = q == 0 ? w[i] : q == 1 ? w[i + 1] : q == 2 ? w[i + 2] : w[i + 3];
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = __funnelshift_r(u[i], u[i + 1], bits);
}

/* The loads of step 1 for rows a0 + r row_bytes (r < rows) of one block: chunk g of the
 * row's tile into x[r] (ALIGNED: rows start on 16-byte boundaries; otherwise the aligned
 * chunk at or below, and for the row's last lane also the chunk after, into nxt[r]).
 * Chunks that are not needed are zero. */
template <int E, bool ALIGNED, bool CHECKED>
__device__ __forceinline__ void load_rows(uintptr_t a0, uintptr_t row_bytes, int64_t rows, int g, int nt,
                                          uintptr_t lo, uintptr_t hi, unsigned int (&x)[16 / E][4],
                                          unsigned int (&nxt)[16 / E][4]) {
  constexpr int CH = 16 / E;
#pragma unroll
  for (int r = 0; r < CH; ++r) {
    const uintptr_t a = a0 + r * row_bytes;
    x[r][0] = x[r][1] = x[r][2] = x[r][3] = 0;
    if constexpr (ALIGNED) {
      if (r < rows && CH * g < nt) load_chunk<E, CHECKED>(a + 16u * g, lo, hi, x[r]);
    } else {
      /* lane g - 1 needs the head of chunk g as well */
      const uintptr_t base = a & ~(uintptr_t)15;
      nxt[r][0] = nxt[r][1] = nxt[r][2] = nxt[r][3] = 0;
      if (r < rows && CH * (g - 1) < nt) load_chunk<E, CHECKED>(base + 16u * g, lo, hi, x[r]);
      if (r < rows && g == kChunks - 1 && (a & 15) != 0 && CH * g < nt)
        load_chunk<E, CHECKED>(base + 16u * kChunks, lo, hi, nxt[r]);
    }
  }
}

/* Step 1 for one block: the chunk of tokens [t0 + CH g, + CH) of the CH channel rows from
 * cb, as words x[r][w]. Rows at or past D and chunks at or past T are left zero. A thread
 * whose chunks all lie inside the tensor's span (all but the edge ones) loads without
 * per-chunk checks. */
template <int E, bool ALIGNED>
__device__ __forceinline__ void load_block(const gdn_qkv_split_desc &p, uintptr_t lo, uintptr_t hi, int64_t cb,
                                           int64_t t0, int g, int nt, unsigned int (&x)[16 / E][4]) {
  constexpr int CH = 16 / E;
  const int64_t rows = p.cols - cb; /* rows r < rows exist */
  const uintptr_t row_bytes = (uintptr_t)(p.src_s1 * E);
  const uintptr_t a0 = lo + (uintptr_t)((cb * p.src_s1 + t0) * E); /* row cb's first tile byte */
  const int last_row = rows < 1 ? 0 : rows < CH ? (int)rows - 1 : CH - 1; /* rows < 1: nothing loads */
  const uintptr_t first = (a0 & ~(uintptr_t)15) + 16u * g;
  const uintptr_t last = ((a0 + last_row * row_bytes) & ~(uintptr_t)15) + 16u * (g + (ALIGNED ? 1 : 2));
  unsigned int nxt[CH][4];
  if (first >= lo && last <= hi) load_rows<E, ALIGNED, false>(a0, row_bytes, rows, g, nt, lo, hi, x, nxt);
  else load_rows<E, ALIGNED, true>(a0, row_bytes, rows, g, nt, lo, hi, x, nxt);
  if constexpr (!ALIGNED) {
    /* Lane g shifts its chunk and the next one (lane g + 1's, or for the last lane the
     * extra one) by the row's misalignment. */
#pragma unroll
    for (int r = 0; r < CH; ++r) {
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        /* width kChunks: the 16 lanes of one row (g == lane % 16); every lane takes part */
        const unsigned int n = __shfl_down_sync(0xffffffffu, x[r][w], 1, kChunks);
        if (g != kChunks - 1) nxt[r][w] = n;
      }
      shift_chunk(x[r], nxt[r], (int)((a0 + r * row_bytes) & 15), x[r]);
    }
  }
}

/* Step 2: x[r] holds CH tokens of channel r, y[j] gets the CH channels of token j. For
 * 16-bit elements word w of y[j] pairs channels 2w, 2w + 1: halves of x[2w], x[2w + 1]. */
template <int E>
__device__ __forceinline__ void transpose_block(const unsigned int (&x)[16 / E][4], unsigned int (&y)[16 / E][4]) {
#pragma unroll
  for (int j = 0; j < 16 / E; ++j)
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      if constexpr (E == 4) y[j][w] = x[w][j];
      else y[j][w] = __byte_perm(x[2 * w][j >> 1], x[2 * w + 1][j >> 1], (j & 1) ? 0x7632 : 0x5410);
    }
}

/* Shared memory holds unit u of token t at [t][u ^ ((t / CH) % 8)], UPT units per token
 * (a multiple of 8, so the XOR stays inside the token's row). ALIGNED kernels run 3 blocks
 * per SM; the realigning ones also hold the next chunks (more registers) and run 2. */
template <int E, int OV, bool ALIGNED>
__global__ void __launch_bounds__(kThreads, ALIGNED ? 3 : 2) qkv_split_transpose_kernel(gdn_qkv_split_desc p) {
  typedef typename gdn_bits<OV>::T vec_t;
  constexpr int CH = 16 / E;                    /* elements per chunk = channels per unit */
  constexpr int TT = kTileBytes / E;            /* tokens per tile */
  constexpr int UPT = kTileC / CH;              /* units per token row of the tile */
  constexpr int NB = UPT * kChunks / kThreads;  /* blocks per thread: 1 (16-bit), 2 (fp32) */
  constexpr int TPT = TT * UPT / kThreads;      /* step 4: consecutive tokens per thread (8) */
  constexpr int NO = OV / E;                    /* channels per store */
  static_assert(kChunks == 16 && UPT * kChunks == NB * kThreads && UPT % 8 == 0 && TPT * kThreads == TT * UPT &&
                    TPT % CH == 0 &&
                    TT * UPT * 16 == GDN_QKV_SPLIT_TILE_SMEM,
                "tile shape");
  __shared__ uint4 tile[TT * UPT];

  /* Block order: bands of kBand channel tiles, the channel tile fastest inside a band, so
   * the ~400 blocks resident at a time cover about 16 x 25 tiles: runs of several KB both
   * along the input's channel rows and along the outputs' token rows (x-fastest order
   * would give whole channel rows but 256-byte pieces of the token rows at long T). */
  const int64_t gx = gridDim.x, gy = gridDim.y;
  const int64_t lin = (int64_t)blockIdx.y * gx + blockIdx.x, band = lin / (kBand * gx);
  const int64_t in_band = lin - band * kBand * gx;
  const int64_t bw = gy - band * kBand < kBand ? gy - band * kBand : kBand; /* tiles in this band */
  const int64_t tile_c = band * kBand + in_band % bw, tile_t = in_band / bw;

  const int tid = threadIdx.x;
  const int64_t t0 = tile_t * TT;
  const int64_t left = p.T - t0;
  if (left <= 0) return; /* the 1-block node of an empty problem */
  const int nt = left < TT ? (int)left : TT;
  const uintptr_t lo = (uintptr_t)p.src, hi = lo + (uintptr_t)p.src_span_bytes;
  const int g = tid % kChunks;               /* steps 1-3: this thread's chunk of each row */
  const int su = tid % UPT, st = TPT * (tid / UPT); /* step 4: its unit and first token */

  for (int64_t c0 = tile_c * kTileC; c0 < p.cols; c0 += gy * kTileC) {
    /* Block b of this thread: channels c0 + CH * l .. + CH, l = (tid + kThreads b) / kChunks. */
    unsigned int x[NB][CH][4];
#pragma unroll
    for (int b = 0; b < NB; ++b)
      load_block<E, ALIGNED>(p, lo, hi, c0 + (int64_t)CH * ((tid + kThreads * b) / kChunks), t0, g, nt, x[b]);
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      const int l = (tid + kThreads * b) / kChunks;
      unsigned int y[CH][4];
      transpose_block<E>(x[b], y);
      /* tokens CH g + j: all share the key g % 8 */
      uint4 *row = tile + CH * g * UPT + (l ^ (g & 7));
#pragma unroll
      for (int j = 0; j < CH; ++j) row[j * UPT] = make_uint4(y[j][0], y[j][1], y[j][2], y[j][3]);
    }
    __syncthreads();

    /* Step 4: unit su of tokens st .. st + TPT - 1 (keys (st / CH + k / CH) % 8); one
     * route per OV-byte piece of the unit. */
    const int64_t c = c0 + (int64_t)CH * su;
#pragma unroll
    for (int m = 0; m < CH / NO; ++m) {
      const int64_t cs = c + m * NO;
      if (cs >= p.cols) break;
      const route r = route_channel(p, (int)cs, E);
      char *dst = r.base + (t0 + st) * r.s0 + r.off;
#pragma unroll
      for (int k = 0; k < TPT; ++k) {
        if (st + k >= nt) break;
        const uint4 *u = tile + (st + k) * UPT + (su ^ ((st / CH + k / CH) & 7));
        *(vec_t *)(dst + k * r.s0) = *(const vec_t *)((const char *)u + m * OV);
      }
    }
    __syncthreads(); /* the next tile reuses smem */
  }
}

template <int E, int OV>
const void *transpose_kernel(bool aligned) {
  return aligned ? (const void *)qkv_split_transpose_kernel<E, OV, true>
                 : (const void *)qkv_split_transpose_kernel<E, OV, false>;
}

/* The kernel for cfg; a channel-major input picks the direct-load or the realigning
 * variant from its rows' alignment (same grid, block and tile). */
const void *pick_kernel(const gdn_qkv_split_config *cfg, const gdn_qkv_split_desc *desc) {
  const int E = cfg->elem_bytes, V = cfg->vec_bytes;
  if (cfg->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR) {
    const bool al = desc->src_rows_aligned != 0;
    if (E == 2) {
      switch (V) {
        case 16: return transpose_kernel<2, 16>(al);
        case 8: return transpose_kernel<2, 8>(al);
        case 4: return transpose_kernel<2, 4>(al);
        case 2: return transpose_kernel<2, 2>(al);
      }
    } else if (E == 4) {
      switch (V) {
        case 16: return transpose_kernel<4, 16>(al);
        case 8: return transpose_kernel<4, 8>(al);
        case 4: return transpose_kernel<4, 4>(al);
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
  call->func = pick_kernel(cfg, desc);
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
