/* The chunk state scan of the gated delta rule: one CTA walks the chunks of one
 * (sequence, value head, V-block) in order, carrying the state S [K x BV] in fp32
 * registers, with the chunk inputs prefetched `stages` deep by cp.async.
 *
 * Per chunk (g = chunk-local cumsum of the log gate, 64 rows; rows past the sequence
 * end are zero-filled so they contribute nothing):
 *   h_c   = S                                                  (optional output)
 *   v_new = u - w S                                            (optional output, unscaled)
 *   o     = scale qf e^g (q S) + aqk v_new                     (O_MODE)
 *   S     = e^{g_last} [e^{gk_last}] S + k^T (kf e^{g_last - g} v_new)
 * aqk is the scaled causal intra-chunk q.k matrix, made by the parallel intra kernel so
 * the sequential loop only runs the state-dependent products; qf / kf are optional row
 * factors (1/||q||, 1/||k|| for l2norm). With a per-key gate (gk), k arrives pre-gated.
 *
 * Warp layout: W warps = 4 row groups x W/4 column groups. Row group wr owns token
 * rows [16wr, 16wr+16) of the chunk products and S rows [wr K/4, (wr+1) K/4);
 * column group wc owns columns [wc BV/(W/4), ...) of the V-block. Tensor-core mma
 * with 16-bit operands (S is rounded to the input dtype for the products, as FLA
 * does), fp32 accumulation and fp32 state. The loop is latency-bound (a few warps per
 * SM), so per-chunk scalar work is kept minimal: addresses are advanced, not recomputed. */
#ifndef GDN_SCAN_KERNEL_CUH
#define GDN_SCAN_KERNEL_CUH

#include "core/elem.cuh"
#include "core/mma.cuh"
#include "ops/chunk_scan/scan_params.h"

/* A compile-time int as a value (for generic lambdas). */
template <int N> struct gdn_int_c { static constexpr int value = N; };

/* Stage layout; FOLD: the w slot holds the 64x64 Tu tile (see scan_col_kernel.cuh).
 * SW (the warpgroup kernel, scan_wg_kernel.cuh): the k, w / Tu, q and aqk tiles are the
 * tensor cores' 128-byte-swizzled slabs (core/wgmma.cuh), unpadded and 1024-byte aligned;
 * the u block, read only by ldmatrix, keeps its padded rows. */
template <int K, int BV, int O_MODE, int FOLD = 0, int SW = 0>
struct gdn_scan_smem {
  static constexpr int KP = K + 8, BVP = BV + 8, AP = 72;
  static constexpr size_t tile_k = SW ? (size_t)64 * K * 2 : (size_t)64 * KP * 2;
  static constexpr size_t tile_64 = SW ? (size_t)64 * 64 * 2 : (size_t)64 * AP * 2;
  static constexpr size_t off_k = 0;
  static constexpr size_t off_w = tile_k;
  static constexpr size_t off_q = off_w + (FOLD ? tile_64 : tile_k);
  static constexpr size_t off_a = off_q + (O_MODE ? tile_k : 0);
  static constexpr size_t off_u = off_a + (O_MODE ? tile_64 : 0);
  static constexpr size_t off_g = off_u + (size_t)64 * BVP * 2;
  static constexpr size_t off_qf = off_g + 64 * 4;
  static constexpr size_t off_kf = off_qf + 64 * 4;
  static constexpr size_t off_gkl = off_kf + 64 * 4;
  static constexpr size_t stage_raw = off_gkl + (size_t)K * 4;
  static constexpr size_t stage = SW ? (stage_raw + 1023) / 1024 * 1024 : stage_raw;
};

/* cp.async of the 64 x COLS tile at rows t0.. of `base` (row stride `rs`) into a
 * shared tile of pitch `pitch`; rows >= L are zero-filled. Each thread owns one
 * 16-byte column slot and walks rows with a fixed pointer step. */
template <int COLS, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_load_tile(elem *dst, int pitch, const elem *base, int64_t rs, int t0, int L,
                                                   int tid) {
  constexpr int VPR = COLS / 8;
  constexpr int RPP = NT / VPR; /* rows per pass */
  static_assert(NT % VPR == 0 && 64 % RPP == 0, "tile shape");
  const int r0 = tid / VPR, c = (tid % VPR) * 8;
  const elem *src = base + (int64_t)(t0 + r0) * rs + c;
  const int64_t step = (int64_t)RPP * rs;
  dst += r0 * pitch + c;
#pragma unroll
  for (int k = 0; k < 64 / RPP; ++k) {
    const bool ok = r0 + k * RPP < L;
    gdn_cp_async16(dst, ok ? (const void *)src : (const void *)base, ok ? 16 : 0);
    src += step;
    dst += RPP * pitch;
  }
}

/* The same into the 128-byte-swizzled slabs of the warpgroup kernel: 16-byte chunk c of
 * row r goes to slab c / 8, chunk (c % 8) ^ (r % 8); rows a pass apart share r % 8. */
template <int COLS, int NT, typename elem>
__device__ __forceinline__ void gdn_scan_load_tile_sw(unsigned char *dst, const elem *base, int64_t rs, int t0, int L,
                                                      int tid) {
  constexpr int VPR = COLS / 8;
  constexpr int RPP = NT / VPR;
  static_assert(NT % VPR == 0 && 64 % RPP == 0 && RPP % 8 == 0, "tile shape");
  const int r0 = tid / VPR, c = tid % VPR;
  const elem *src = base + (int64_t)(t0 + r0) * rs + c * 8;
  const int64_t step = (int64_t)RPP * rs;
  dst += (c >> 3) * (64 * 128) + r0 * 128 + (((c & 7) ^ (r0 & 7)) << 4);
#pragma unroll
  for (int k = 0; k < 64 / RPP; ++k) {
    const bool ok = r0 + k * RPP < L;
    gdn_cp_async16(dst, ok ? (const void *)src : (const void *)base, ok ? 16 : 0);
    src += step;
    dst += RPP * 128;
  }
}

/* One float per row (strided), rows >= L zero-filled; threads [lo, lo + 64) do it. */
__device__ __forceinline__ void gdn_scan_load_rows(float *dst, const float *base, int64_t rs, int t0, int L, int lo,
                                                   int tid) {
  const int r = tid - lo;
  if (r >= 0 && r < 64) {
    const bool ok = r < L;
    gdn_cp_async4(dst + r, ok ? base + (int64_t)(t0 + r) * rs : base, ok ? 4 : 0);
  }
}

/* L_u: rows of the u / v block to load (0 for an identity block of the transition pass,
 * whose u is zero). tid: the thread's index among the NT loading threads. TILES 0 leaves
 * the k, w / Tu, q and aqk tiles to the caller (the warpgroup kernel's copy engine). */
template <int K, int BV, int NT, int O_MODE, typename elem, int FOLD = 0, int SW = 0, int TILES = 1>
__device__ __forceinline__ void gdn_scan_load_stage(const gdn_scan_params &p, unsigned char *st, int head, int k_head,
                                                    int q_head, int vb, int t0, int L, int L_u, int tid) {
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD, SW> SM;
  /* a 16-bit 64 x COLS tile into its slot, padded or swizzled */
  auto tile = [&](auto cols, size_t off, int pitch, const void *src, int64_t rs) {
    constexpr int COLS = decltype(cols)::value;
    if constexpr (SW)
      gdn_scan_load_tile_sw<COLS, NT>(st + off, (const elem *)src, rs, t0, L, tid);
    else
      gdn_scan_load_tile<COLS, NT>((elem *)(st + off), pitch, (const elem *)src, rs, t0, L, tid);
  };
  if (TILES) {
    tile(gdn_int_c<K>(), SM::off_k, SM::KP, (const elem *)p.k + (int64_t)k_head * p.k_sh, p.k_st);
    if (FOLD)
      tile(gdn_int_c<64>(), SM::off_w, SM::AP, (const elem *)p.w + (int64_t)head * p.w_sh, p.w_st);
    else
      tile(gdn_int_c<K>(), SM::off_w, SM::KP, (const elem *)p.w + (int64_t)head * p.w_sh, p.w_st);
  }
  gdn_scan_load_tile<BV, NT>((elem *)(st + SM::off_u), SM::BVP,
                             (const elem *)p.u + (int64_t)head * p.u_sh + (int64_t)(L_u ? vb : 0) * BV, p.u_st, t0, L_u,
                             tid);
  if (O_MODE && TILES) {
    tile(gdn_int_c<K>(), SM::off_q, SM::KP, (const elem *)p.q + (int64_t)q_head * p.q_sh, p.q_st);
    tile(gdn_int_c<64>(), SM::off_a, SM::AP, (const elem *)p.aqk + (int64_t)head * p.aqk_sh, p.aqk_st);
  }
  if (p.g) gdn_scan_load_rows((float *)(st + SM::off_g), p.g + (int64_t)head * p.g_sh, p.g_st, t0, L, 0, tid);
  if (p.kf)
    gdn_scan_load_rows((float *)(st + SM::off_kf), p.kf + (int64_t)head * p.kf_sh, p.kf_st, t0, L, NT >= 128 ? 64 : 0,
                       tid);
  if (O_MODE && p.qf)
    gdn_scan_load_rows((float *)(st + SM::off_qf), p.qf + (int64_t)head * p.qf_sh, p.qf_st, t0, L, NT - 64, tid);
  if (p.gk != NULL) {
    const float *src = p.gk + (int64_t)(t0 + L - 1) * p.gk_st + (int64_t)head * p.gk_sh;
    for (int idx = tid; idx < K / 4; idx += NT) gdn_cp_async16((float *)(st + SM::off_gkl) + idx * 4, src + idx * 4, 16);
  }
}

/* Where a CTA of either scan kernel works: (segment, value head, V-block) of blockIdx.x
 * (a segment is a sequence without context parallelism), the segment's tokens and
 * chunks, where its state comes from and goes to. False when the batch failed its check,
 * the CTA is past the batch, or it has nothing to do in this pass.
 *
 * State rows: row v < V is column v of S (the pool's [V][K] layout). In the transition
 * pass (cp_phase 1) blocks past V / BV are identity blocks: row V + c starts as e_c, so the
 * scan computes column c of the segment's transition (u is zero there). */
struct gdn_scan_work {
  int seq, head, k_head, q_head, vb, row0, t_begin, t_end, nchunks, chunk0, load_u;
  int64_t chunk_base;
  const void *src; int64_t src_v, src_k; int src_dt; int src_identity; /* src NULL, no identity: zero */
  void *dst; int64_t dst_v, dst_k; int dst_dt; int dst_rows;           /* dst NULL: not written */
  int ckpt_row0;                                                         /* -1: no checkpoints */
};

template <int K, int BV>
__device__ __forceinline__ bool gdn_scan_work_at(const gdn_scan_params &p, gdn_scan_work &w) {
  const gdn_batch_header *hdr = p.header;
  if (hdr->status != 0) return false;
  if (p.when_cut != 0 && (p.when_cut > 0) != (hdr->num_segments > hdr->num_seqs)) return false; /* the other schedule */
  const int nvb = p.V / BV, nvb_all = p.cp_phase ? nvb + (K + BV - 1) / BV : nvb;
  const int64_t bid = blockIdx.x;
  w.vb = (int)(bid % nvb_all);
  w.head = (int)((bid / nvb_all) % p.Hv);
  const int64_t unit = bid / ((int64_t)nvb_all * p.Hv);
  int first = 1, last = 1, c_begin = 0, c_end = -1;
  if (p.segments != NULL) {
    if (unit >= hdr->num_segments) return false;
    const gdn_batch_segment sg = p.segments[unit];
    w.seq = sg.seq;
    first = sg.flags & GDN_SEGMENT_FIRST;
    last = sg.flags & GDN_SEGMENT_LAST;
    c_begin = sg.chunk_begin;
    c_end = sg.chunk_end;
  } else {
    if (unit >= hdr->num_seqs) return false;
    w.seq = (int)unit;
  }
  const int identity = w.vb >= nvb;
  if (p.cp_phase && (last || (first && identity))) return false; /* no transition needed */
  const int seq_begin = p.cu_seqlens[w.seq];
  w.t_end = p.cu_seqlens[w.seq + 1];
  if (c_end < 0) c_end = (w.t_end - seq_begin + 63) / 64;
  w.chunk0 = c_begin;
  w.nchunks = c_end - c_begin;
  w.t_begin = seq_begin + 64 * c_begin;
  w.chunk_base = p.chunk_offsets[w.seq] + c_begin;
  w.row0 = w.vb * BV;
  w.load_u = !identity;
  w.k_head = w.head / p.group_k; /* once per CTA: a runtime division is ~20 instructions */
  w.q_head = w.head / p.group_q;

  const int slot_in = p.slots != NULL ? p.slots[w.seq] : -1;
  const int slot_out = p.slots_out != NULL ? p.slots_out[w.seq] : slot_in;
  float *cpx = p.cp_x != NULL ? p.cp_x + ((int64_t)unit * p.Hv + w.head) * (int64_t)(p.V + K) * K : NULL;
  w.src = NULL; w.src_v = w.src_k = 0; w.src_dt = GDN_DTYPE_F32; w.src_identity = 0;
  w.dst = NULL; w.dst_v = w.dst_k = 0; w.dst_dt = GDN_DTYPE_F32; w.dst_rows = p.V;
  if (first && !identity) {
    if (p.state_in != NULL && slot_in >= 0) {
      w.src = (const char *)p.state_in +
              ((int64_t)slot_in * p.si_row + (int64_t)w.head * p.si_h) * (int64_t)gdn_dtype_bytes(p.si_dt);
      w.src_v = p.si_v; w.src_k = p.si_k; w.src_dt = p.si_dt;
    }
  } else if (identity) {
    w.src_identity = 1;
  } else if (!p.cp_phase) {
    w.src = cpx; w.src_v = K; w.src_k = 1; /* the combine pass left the incoming state here */
  }
  if (p.cp_phase) {
    w.dst = cpx; w.dst_v = K; w.dst_k = 1; w.dst_rows = p.V + K;
  } else if (last && p.state_out != NULL && slot_out >= 0) {
    w.dst = (char *)p.state_out +
            ((int64_t)slot_out * p.so_row + (int64_t)w.head * p.so_h) * (int64_t)gdn_dtype_bytes(p.so_dt);
    w.dst_v = p.so_v; w.dst_k = p.so_k; w.dst_dt = p.so_dt;
  }
  w.ckpt_row0 = (!p.cp_phase && p.ckpt != NULL && p.ckpt_offsets != NULL) ? p.ckpt_offsets[w.seq] : -1;
  return true;
}

/* The initial state's source, for loops that branch once instead of per element (a
 * branch per element serializes the loads: measured ~30 us per CTA on H200). */
enum { GDN_STATE_ZERO = 0, GDN_STATE_IDENTITY = 1, GDN_STATE_F32 = 2, GDN_STATE_BF16 = 3, GDN_STATE_F16 = 4 };
__device__ __forceinline__ int gdn_scan_state_kind(const gdn_scan_work &w) {
  if (w.src_identity) return GDN_STATE_IDENTITY;
  if (w.src == NULL) return GDN_STATE_ZERO;
  return w.src_dt == GDN_DTYPE_BF16 ? GDN_STATE_BF16 : w.src_dt == GDN_DTYPE_F16 ? GDN_STATE_F16 : GDN_STATE_F32;
}
/* Element (state row v, key k) of the initial state. */
template <int KIND>
__device__ __forceinline__ float gdn_scan_state_elem(const gdn_scan_work &w, int V, int v, int k) {
  const int64_t i = (int64_t)v * w.src_v + (int64_t)k * w.src_k;
  if (KIND == GDN_STATE_IDENTITY) return v - V == k ? 1.f : 0.f;
  if (KIND == GDN_STATE_ZERO) return 0.f;
  if (KIND == GDN_STATE_BF16) return __bfloat162float(((const __nv_bfloat16 *)w.src)[i]);
  if (KIND == GDN_STATE_F16) return __half2float(((const __half *)w.src)[i]);
  return ((const float *)w.src)[i];
}
/* Runs body(gdn_int_c<KIND>()) for the work's source kind: one branch. */
template <typename F>
__device__ __forceinline__ void gdn_scan_state_dispatch(const gdn_scan_work &w, F &&body) {
  switch (gdn_scan_state_kind(w)) {
    case GDN_STATE_IDENTITY: body(gdn_int_c<GDN_STATE_IDENTITY>()); break;
    case GDN_STATE_ZERO: body(gdn_int_c<GDN_STATE_ZERO>()); break;
    case GDN_STATE_BF16: body(gdn_int_c<GDN_STATE_BF16>()); break;
    case GDN_STATE_F16: body(gdn_int_c<GDN_STATE_F16>()); break;
    default: body(gdn_int_c<GDN_STATE_F32>());
  }
}
/* The destination's element type, chosen once (as for the load): body(gdn_type_c<T>()). */
template <typename T> struct gdn_type_c { typedef T type; };
template <typename F>
__device__ __forceinline__ void gdn_scan_dst_dispatch(const gdn_scan_work &w, F &&body) {
  if (w.dst_dt == GDN_DTYPE_BF16) body(gdn_type_c<__nv_bfloat16>());
  else if (w.dst_dt == GDN_DTYPE_F16) body(gdn_type_c<__half>());
  else body(gdn_type_c<float>());
}
template <typename T>
__device__ __forceinline__ void gdn_scan_state_put(const gdn_scan_work &w, int v, int k, float x) {
  if (v < w.dst_rows) ((T *)w.dst)[(int64_t)v * w.dst_v + (int64_t)k * w.dst_k] = gdn_from_float<T>(x);
}
/* The base of the checkpoint row that chunk c (of the segment) ends. */
__device__ __forceinline__ void *gdn_scan_ckpt_row(const gdn_scan_params &p, const gdn_scan_work &w, int c) {
  const int64_t row = w.ckpt_row0 + (w.chunk0 + c + 1) / p.ckpt_chunks - 1;
  return (char *)p.ckpt + (row * p.ck_row + (int64_t)w.head * p.ck_h) * (int64_t)gdn_dtype_bytes(p.ck_dt);
}
/* Chunk c (of the segment) ends a checkpoint: the base of its checkpoint row, else NULL. */
__device__ __forceinline__ void *gdn_scan_ckpt_at(const gdn_scan_params &p, const gdn_scan_work &w, int c, int L) {
  if (w.ckpt_row0 < 0 || L != 64 || (w.chunk0 + c + 1) % p.ckpt_chunks != 0) return NULL;
  return gdn_scan_ckpt_row(p, w, c);
}
/* The same decision alone, for the warpgroup kernels to take at the top of a chunk: there
 * the work fields it reads live in local memory, and a load issued at the chunk's end
 * waits behind the chunk's global stores (bench/NOTES.md). No checkpoint buffer: false
 * without reading them. */
__device__ __forceinline__ bool gdn_scan_ckpt_due(const gdn_scan_params &p, const gdn_scan_work &w, int c, int L) {
  return p.ckpt != NULL && w.ckpt_row0 >= 0 && L == 64 && (w.chunk0 + c + 1) % p.ckpt_chunks == 0;
}

/* Issues the loads of chunk c into stage buffer `st` (none past the last chunk). */
template <int K, int BV, int NT, int O_MODE, typename elem, int FOLD>
__device__ __forceinline__ void gdn_scan_load_chunk(const gdn_scan_params &p, unsigned char *st, const gdn_scan_work &w,
                                                    int c) {
  if (c < w.nchunks) {
    const int t0 = w.t_begin + 64 * c, L = min(64, w.t_end - t0);
    gdn_scan_load_stage<K, BV, NT, O_MODE, elem, FOLD>(p, st, w.head, w.k_head, w.q_head, w.vb, t0, L, w.load_u ? L : 0,
                                                       (int)threadIdx.x);
  }
}

/* The cp.async pipeline over the stage buffers at `base`: gdn_scan_prefetch issues
 * chunks 0 .. stages-2 (one commit group each); gdn_scan_stage_in(c) returns once chunk
 * c's buffer (c % stages) has landed for every thread (a CTA barrier, which also means
 * every thread is done with chunk c-1), and refills chunk c-1's buffer with c + stages - 1.
 * With one stage chunk c is loaded there and waited for. */
template <int K, int BV, int NT, int O_MODE, typename elem, int FOLD = 0>
__device__ __forceinline__ void gdn_scan_prefetch(const gdn_scan_params &p, unsigned char *base, const gdn_scan_work &w) {
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD> SM;
  for (int c = 0; c < p.stages - 1; ++c) {
    gdn_scan_load_chunk<K, BV, NT, O_MODE, elem, FOLD>(p, base + (size_t)c * SM::stage, w, c);
    gdn_cp_async_commit();
  }
}
template <int K, int BV, int NT, int O_MODE, typename elem, int FOLD = 0>
__device__ __forceinline__ void gdn_scan_stage_in(const gdn_scan_params &p, unsigned char *base, const gdn_scan_work &w,
                                                  int c) {
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD> SM;
  const int stages = p.stages;
  if (stages == 1) {
    __syncthreads(); /* every thread is done with the previous chunk's buffer */
    gdn_scan_load_chunk<K, BV, NT, O_MODE, elem, FOLD>(p, base, w, c);
    gdn_cp_async_commit();
    gdn_cp_async_wait<0>();
  } else if (stages == 2) {
    gdn_cp_async_wait<0>();
  } else if (stages == 3) {
    gdn_cp_async_wait<1>();
  } else {
    gdn_cp_async_wait<2>();
  }
  __syncthreads(); /* chunk c landed for every thread; chunk c-1 fully consumed */
  if (stages > 1) {
    const int cn = c + stages - 1;
    gdn_scan_load_chunk<K, BV, NT, O_MODE, elem, FOLD>(p, base + (size_t)(cn % stages) * SM::stage, w, cn);
    gdn_cp_async_commit();
  }
}

/* Loads (LOAD: from w's source) or stores (to `dst`, strides dst_v / dst_k, dtype dst_dt)
 * this thread's fragment of S [K x BV]; rows are the state's [V][K] rows (S transposed). */
template <int MT, int NTW>
__device__ __forceinline__ void gdn_scan_state_load(float (&acc)[MT][NTW][4], const gdn_scan_work &w, int V, int srow0,
                                                    int vcol0) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  gdn_scan_state_dispatch(w, [&](auto kind) {
    constexpr int KIND = decltype(kind)::value;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[mt][nt][e] =
              gdn_scan_state_elem<KIND>(w, V, vcol0 + 8 * nt + 2 * t4 + (e & 1), srow0 + 16 * mt + g8 + ((e >> 1) << 3));
  });
}
template <int MT, int NTW>
__device__ __forceinline__ void gdn_scan_state_store(const float (&acc)[MT][NTW][4], const gdn_scan_work &w, int srow0,
                                                     int vcol0) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  gdn_scan_dst_dispatch(w, [&](auto type) {
    typedef typename decltype(type)::type T;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          gdn_scan_state_put<T>(w, vcol0 + 8 * nt + 2 * t4 + (e & 1), srow0 + 16 * mt + g8 + ((e >> 1) << 3),
                                acc[mt][nt][e]);
  });
}

template <int K, int BV, int W, int IS_F16, int O_MODE>
__global__ void __launch_bounds__(W * 32, 1) gdn_scan_kernel(const gdn_scan_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  typedef gdn_scan_smem<K, BV, O_MODE> SM;
  constexpr int NT = W * 32;
  constexpr int WC = W / 4;         /* column groups */
  constexpr int NCOLS = BV / WC;    /* columns per warp */
  constexpr int NTW = NCOLS / 8;    /* n-tiles per warp */
  constexpr int MT = K / 64;        /* S m-tiles per warp */
  constexpr int KP = SM::KP, BVP = SM::BVP;
  static_assert(W == 4 || W == 8, "4 or 8 warps");
  static_assert(NCOLS % 16 == 0, "each warp needs a multiple of 16 columns");
  static_assert(K % 64 == 0, "K is a multiple of 64");

  extern __shared__ __align__(16) unsigned char gdn_smem[];
  gdn_scan_work w;
  if (!gdn_scan_work_at<K, BV>(p, w)) return;
  const int vb = w.vb, head = w.head, t_begin = w.t_begin, t_end = w.t_end, nchunks = w.nchunks;
  const int64_t chunk_base = w.chunk_base;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wr = warp & 3, wc = warp >> 2;
  const int g8 = lane >> 2, t4 = lane & 3;
  const int srow0 = wr * (K / 4);
  const int col0 = wc * NCOLS;
  const int vcol0 = w.row0 + col0; /* state row of this warp's first column */
  const int i0 = 16 * wr + g8, i1 = i0 + 8; /* this thread's token rows in the chunk */
  const int stages = p.stages;

  unsigned char *stage_base = gdn_smem;
  elem *Sb = (elem *)(gdn_smem + (size_t)stages * SM::stage);
  elem *Vo = Sb + K * BVP;
  elem *Vs = Vo + 64 * BVP;

  /* ---- initial state (the pool stores S transposed: [V][K]) */
  float acc_s[MT][NTW][4];
  gdn_scan_state_load<MT, NTW>(acc_s, w, p.V, srow0, vcol0);

  const bool has_g = p.g != NULL, has_kf = p.kf != NULL, has_qf = O_MODE && p.qf != NULL;

  /* Output row pointers, advanced by 64 rows per chunk. */
  elem *o_row = O_MODE ? (elem *)p.o + (int64_t)(t_begin + i0) * p.o_st + (int64_t)head * p.o_sh + vcol0 + 2 * t4 : NULL;
  elem *vn_row = p.v_new ? (elem *)p.v_new + (int64_t)(t_begin + i0) * p.vn_st + (int64_t)head * p.vn_sh + vcol0 + 2 * t4
                         : NULL;
  const int64_t o_step = 64 * p.o_st, vn_step = 64 * p.vn_st;

  gdn_scan_prefetch<K, BV, NT, O_MODE, elem>(p, stage_base, w);

  for (int c = 0; c < nchunks; ++c) {
    const int t0 = t_begin + 64 * c;
    const int L = min(64, t_end - t0);
    unsigned char *st = stage_base + (size_t)(c % stages) * SM::stage;
    const elem *Ks = (const elem *)(st + SM::off_k);
    const elem *Ws = (const elem *)(st + SM::off_w);
    const elem *Qs = (const elem *)(st + SM::off_q);
    const elem *Us = (const elem *)(st + SM::off_u);
    const elem *As = (const elem *)(st + SM::off_a);
    const float *Gs = (const float *)(st + SM::off_g);
    const float *Qf = (const float *)(st + SM::off_qf);
    const float *Kf = (const float *)(st + SM::off_kf);
    const float *Gkl = (const float *)(st + SM::off_gkl);

    /* ---- h_c = S: to shared memory (16-bit, [K][BV]) for the products, and out */
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          int kk = srow0 + 16 * mt + g8 + 8 * hf;
          *(uint32_t *)(Sb + kk * BVP + col0 + 8 * nt + 2 * t4) =
              gdn_pack2<IS_F16>(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
        }
    if (p.h != NULL && !p.h_vec16) {
      const int64_t hrow = (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + (int64_t)(srow0 + g8) * p.h_sk + vcol0 + 2 * t4;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int64_t off = hrow + (int64_t)(16 * mt + 8 * hf) * p.h_sk;
#pragma unroll
          for (int nt = 0; nt < NTW; ++nt) {
            if (p.h_f32)
              *(float2 *)((float *)p.h + off + 8 * nt) = make_float2(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
            else
              *(uint32_t *)((elem *)p.h + off + 8 * nt) = gdn_pack2<IS_F16>(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
          }
        }
    }

    /* (A): chunk c landed; Sb written; previous chunk fully consumed */
    gdn_scan_stage_in<K, BV, NT, O_MODE, elem>(p, stage_base, w, c);
    if (p.h != NULL && p.h_vec16) {
      /* 16-bit h with 16-byte aligned rows: copied from Sb (complete since (A); rewritten
       * only after (B)) in 16-byte row pieces instead of 4-byte fragment pairs */
      elem *hb = (elem *)p.h + (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + (int64_t)vb * BV;
      for (int idx = threadIdx.x; idx < K * (BV / 8); idx += NT) {
        const int row = idx / (BV / 8), c8 = (idx % (BV / 8)) * 8;
        *(uint4 *)(hb + (int64_t)row * p.h_sk + c8) = *(const uint4 *)(Sb + row * BVP + c8);
      }
    }

    /* ---- w S (and q S) for token rows [16wr, 16wr+16) */
    float acc_v[NTW][4], acc_o[NTW][4];
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_v[nt][e] = acc_o[nt][e] = 0.f;
#pragma unroll
    for (int kb = 0; kb < K / 16; ++kb) {
      uint32_t aw[4], aq[4];
      gdn_load_a(aw, Ws, KP, 16 * wr, 16 * kb);
      if (O_MODE) gdn_load_a(aq, Qs, KP, 16 * wr, 16 * kb);
#pragma unroll
      for (int np = 0; np < NTW / 2; ++np) {
        uint32_t b[4];
        gdn_load_b_kn(b, Sb, BVP, 16 * kb, col0 + 16 * np);
        gdn_mma<IS_F16>(acc_v[2 * np], aw, b[0], b[1]);
        gdn_mma<IS_F16>(acc_v[2 * np + 1], aw, b[2], b[3]);
        if (O_MODE) {
          gdn_mma<IS_F16>(acc_o[2 * np], aq, b[0], b[1]);
          gdn_mma<IS_F16>(acc_o[2 * np + 1], aq, b[2], b[3]);
        }
      }
    }

    /* ---- v_new = u - w S; keep it (16-bit) for o, and scaled for the state update */
    const float g_last = has_g ? Gs[L - 1] : 0.f;
    const float g0 = has_g ? Gs[i0] : 0.f, g1 = has_g ? Gs[i1] : 0.f;
    const float f0 = (has_kf ? Kf[i0] : 1.f) * (has_g ? __expf(g_last - g0) : 1.f);
    const float f1 = (has_kf ? Kf[i1] : 1.f) * (has_g ? __expf(g_last - g1) : 1.f);
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int i = hf ? i1 : i0;
        const int col = col0 + 8 * nt + 2 * t4;
        float2 uu = gdn_unpack2<IS_F16>(*(const uint32_t *)(Us + i * BVP + col));
        float v0 = uu.x - acc_v[nt][2 * hf], v1 = uu.y - acc_v[nt][2 * hf + 1];
        uint32_t packed = gdn_pack2<IS_F16>(v0, v1);
        if (vn_row != NULL && i < L) *(uint32_t *)(vn_row + (hf ? 8 * p.vn_st : 0) + 8 * nt) = packed;
        if (O_MODE) *(uint32_t *)(Vo + i * BVP + col) = packed;
        const float f = hf ? f1 : f0;
        *(uint32_t *)(Vs + i * BVP + col) = gdn_pack2<IS_F16>(v0 * f, v1 * f);
      }
    __syncthreads(); /* (B) Vo, Vs complete */

    if (O_MODE) {
      const float o0 = p.scale * (has_qf ? Qf[i0] : 1.f) * (has_g ? __expf(g0) : 1.f);
      const float o1 = p.scale * (has_qf ? Qf[i1] : 1.f) * (has_g ? __expf(g1) : 1.f);
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt) {
        acc_o[nt][0] *= o0; acc_o[nt][1] *= o0;
        acc_o[nt][2] *= o1; acc_o[nt][3] *= o1;
      }
      /* causal: only token blocks kb <= wr of aqk are nonzero for these rows */
#pragma unroll
      for (int kb = 0; kb < 4; ++kb) {
        if (kb <= wr) {
          uint32_t a[4];
          gdn_load_a(a, As, SM::AP, 16 * wr, 16 * kb);
#pragma unroll
          for (int np = 0; np < NTW / 2; ++np) {
            uint32_t b[4];
            gdn_load_b_kn(b, Vo, BVP, 16 * kb, col0 + 16 * np);
            gdn_mma<IS_F16>(acc_o[2 * np], a, b[0], b[1]);
            gdn_mma<IS_F16>(acc_o[2 * np + 1], a, b[2], b[3]);
          }
        }
      }
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt) {
        if (i0 < L) *(uint32_t *)(o_row + 8 * nt) = gdn_pack2<IS_F16>(acc_o[nt][0], acc_o[nt][1]);
        if (i1 < L) *(uint32_t *)(o_row + 8 * p.o_st + 8 * nt) = gdn_pack2<IS_F16>(acc_o[nt][2], acc_o[nt][3]);
      }
      o_row += o_step;
    }
    if (vn_row != NULL) vn_row += vn_step;

    /* ---- S = decay * S + k^T Vs */
    const float decay = has_g ? __expf(g_last) : 1.f;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        float d = decay;
        if (p.gk != NULL) d *= __expf(Gkl[srow0 + 16 * mt + g8 + 8 * hf]);
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt) {
          acc_s[mt][nt][2 * hf] *= d;
          acc_s[mt][nt][2 * hf + 1] *= d;
        }
      }
#pragma unroll
    for (int kb = 0; kb < 4; ++kb) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        uint32_t a[4];
        gdn_load_a_trans(a, Ks, KP, 16 * kb, srow0 + 16 * mt);
#pragma unroll
        for (int np = 0; np < NTW / 2; ++np) {
          uint32_t b[4];
          gdn_load_b_kn(b, Vs, BVP, 16 * kb, col0 + 16 * np);
          gdn_mma<IS_F16>(acc_s[mt][2 * np], a, b[0], b[1]);
          gdn_mma<IS_F16>(acc_s[mt][2 * np + 1], a, b[2], b[3]);
        }
      }
    }
    if (void *ck = gdn_scan_ckpt_at(p, w, c, L)) {
      gdn_scan_work cw = w;
      cw.dst = ck; cw.dst_v = p.ck_v; cw.dst_k = p.ck_k; cw.dst_dt = p.ck_dt; cw.dst_rows = p.V;
      gdn_scan_state_store<MT, NTW>(acc_s, cw, srow0, vcol0);
    }
  }
  gdn_cp_async_wait<0>();

  /* ---- final state to its row (in place for a pool) */
  if (w.dst != NULL) gdn_scan_state_store<MT, NTW>(acc_s, w, srow0, vcol0);
}

#endif
