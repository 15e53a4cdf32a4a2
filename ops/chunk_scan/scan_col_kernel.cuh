/* The chunk state scan, column-split form (K <= 128): each warp owns 16 value columns
 * of the state and walks the chunks without talking to the other warps.
 *
 * The delta rule never mixes value columns: column v of S only needs column v of u and
 * of v_new. So a warp keeps S^T [16 v x K] in fp32 mma accumulators and
 *   v_new^T = u^T - S^T w^T              (A = S^T from registers, B = w from smem)
 *   o       = sc (q S) + aqk v_new       (B = S and v_new straight from registers)
 *   S^T     = decay S^T + v'^T k         (A = scaled v_new^T from registers)
 * An mma accumulator holds X[g][2t..2t+1], which is both the A fragment of X and the B
 * fragment of X^T, so S and v_new never pass through shared memory and the only barrier
 * per chunk is the one that recycles the cp.async stage (the tiles k, w, q, u, aqk are
 * shared by the CTA's warps). Notation as in scan_kernel.cuh; BV = 16 x warps.
 *
 * FOLD (chunk_scan_o only): the WY form is applied here instead of being stored by
 * chunk_intra. With Tu = (I + A)^-1 diag(beta) (16-bit [T, Hv, 64]) and c_j = kf_j e^{g_j},
 * w = Tu diag(c) k and u = Tu v, so v_new^T = (v^T - (S^T k^T) diag(c)) Tu^T: w and u never
 * exist in memory (4 [T, Hv, 128] tensors less traffic), for one 64x64 product more. */
#ifndef GDN_SCAN_COL_KERNEL_CUH
#define GDN_SCAN_COL_KERNEL_CUH

#include "ops/chunk_scan/scan_kernel.cuh"

/* Stores a 16-bit tile X [rows x 16 cols] held transposed as mma accumulator pairs
 * (x = X^T[c][r..r+1] packed, for c = g (hf 0) or g + 8 (hf 1), r = row0 + 2t): lanes
 * g and g^1 swap halves so each writes two adjacent columns of one row (4 bytes).
 * `base` points at X[0][0] in global memory, `ld` is the row stride. */
__device__ __forceinline__ void gdn_col_store_pair(void *base, int64_t ld, uint32_t x, int row0, int hf, int rows_valid) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  const uint32_t y = __shfl_xor_sync(0xffffffffu, x, 4);
  const bool odd = g8 & 1;
  /* even g: row 2t, columns (g, g+1) = low halves; odd g: row 2t+1, columns (g-1, g) = high halves */
  const uint32_t v = odd ? __byte_perm(y, x, 0x7632) : __byte_perm(x, y, 0x5410);
  const int r = row0 + 2 * t4 + (odd ? 1 : 0);
  if (r < rows_valid) *(uint32_t *)((uint16_t *)base + (int64_t)r * ld + (g8 & ~1) + 8 * hf) = v;
}

/* The tile x[j][hf] of gdn_col_store_pair's layout as rows of 16 elements at `stage` (pitch
 * PITCH; 24 or any pitch of 8 mod 16 elements keeps stmatrix free of bank conflicts), by
 * stmatrix.trans; the warp's lanes see it after a __syncwarp. */
template <int NJ, int PITCH = 24>
__device__ __forceinline__ void gdn_col_stage_tile(const uint32_t (&x)[NJ][2], uint16_t *stage) {
  static_assert(NJ % 2 == 0, "pairs of 8-row blocks");
  const int lane = threadIdx.x & 31, m = lane >> 3, r = lane & 7;
#pragma unroll
  for (int j = 0; j < NJ; j += 2) {
    const uint32_t regs[4] = {x[j][0], x[j][1], x[j + 1][0], x[j + 1][1]};
    gdn_stmatrix_x4_trans(stage + (8 * (j + (m >> 1)) + r) * PITCH + 8 * (m & 1), regs);
  }
}

/* Same as gdn_col_store_pair for a whole [8 NJ rows x 16] tile x[j][hf], through the
 * warp's staging tile: gdn_col_stage_tile, then 16-byte stores of full 32-byte row
 * segments. Rows >= rows_valid are not stored. Ends warp-synchronized. */
template <int NJ, int PITCH = 24>
__device__ __forceinline__ void gdn_col_store_tile(const uint32_t (&x)[NJ][2], uint16_t *stage, void *base, int64_t ld,
                                                   int rows_valid) {
  const int lane = threadIdx.x & 31;
  gdn_col_stage_tile<NJ, PITCH>(x, stage);
  __syncwarp();
  /* 16-byte unit `lane + 32k`: row lane / 2 + 16k, half lane % 2; one 64-bit address per
   * thread, stepped by 16 rows, and no row guards for a full tile (the common case) */
  const int row0 = lane >> 1, half = lane & 1;
  uint16_t *dst = (uint16_t *)base + (int64_t)row0 * ld + 8 * half;
  const uint16_t *src = stage + row0 * PITCH + 8 * half;
  const int64_t step = 16 * ld;
  if (rows_valid >= 8 * NJ) {
#pragma unroll
    for (int k = 0; k < NJ / 2; ++k) *(uint4 *)(dst + k * step) = *(const uint4 *)(src + 16 * k * PITCH);
  } else {
#pragma unroll
    for (int k = 0; k < NJ / 2; ++k)
      if (row0 + 16 * k < rows_valid) *(uint4 *)(dst + k * step) = *(const uint4 *)(src + 16 * k * PITCH);
  }
  __syncwarp();
}

/* Loads S^T [16 v x K] as s[j][e] = S^T[g + 8(e>>1)][8j + 2t + (e&1)] from w's source
 * (state row v = column v of S: the pool's [V][K] layout), one source branch per thread. */
template <int KT>
__device__ __forceinline__ void gdn_col_state_load(float (&s)[KT][4], const gdn_scan_work &w, int V, int vcol0) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  gdn_scan_state_dispatch(w, [&](auto kind) {
    constexpr int KIND = decltype(kind)::value;
#pragma unroll
    for (int j = 0; j < KT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[j][e] = gdn_scan_state_elem<KIND>(w, V, vcol0 + g8 + 8 * (e >> 1), 8 * j + 2 * t4 + (e & 1));
  });
}

/* Stores S^T [16 v x K] held as s[j][e] = S^T[g + 8(e>>1)][8j + 2t + (e&1)] to w's destination. */
template <int KT>
__device__ __forceinline__ void gdn_col_state_store(const float (&s)[KT][4], const gdn_scan_work &w, int vcol0) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  gdn_scan_dst_dispatch(w, [&](auto type) {
    typedef typename decltype(type)::type T;
#pragma unroll
    for (int j = 0; j < KT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) gdn_scan_state_put<T>(w, vcol0 + g8 + 8 * (e >> 1), 8 * j + 2 * t4 + (e & 1), s[j][e]);
  });
}

/* ---- the elementwise steps of a chunk, shared with the warpgroup kernel (the same
 * registers: S^T, X^T and v_new^T as accumulator pairs of 16 value rows per warp) */

/* Per-token factors of the chunk, one copy per warp (two tokens a lane) instead of per
 * fragment element: fc = kf e^g (folded w), ff = kf e^{g_last - g} (state update),
 * fo = scale qf e^g (o); ff = fc + 64, fo = fc + 128. */
template <int O_MODE, int FOLD>
__device__ __forceinline__ void gdn_col_factors(const gdn_scan_params &p, const float *Gs, const float *Kf,
                                                const float *Qf, float g_last, float *fc) {
  const int lane = threadIdx.x & 31;
  const bool has_g = p.g != NULL, has_kf = p.kf != NULL, has_qf = O_MODE && p.qf != NULL;
  float *ff = fc + 64, *fo = fc + 128;
  __syncwarp(); /* every lane has read the previous chunk's rows (racecheck: write after read) */
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = lane + 32 * h;
    const float kf = has_kf ? Kf[r] : 1.f, g = has_g ? Gs[r] : 0.f, eg = has_g ? gdn_exp_fast(g) : 1.f;
    if (FOLD) fc[r] = kf * eg;
    ff[r] = has_g ? kf * gdn_exp_fast(g_last - g) : kf;
    if (O_MODE) fo[r] = p.scale * (has_qf ? Qf[r] : 1.f) * eg;
  }
  __syncwarp();
}

/* S in 16 bits: sb[j][hf] packs S^T row g + 8hf, keys 8j + 2t..+1 (an A fragment / B of S). */
template <int KT, int IS_F16>
__device__ __forceinline__ void gdn_col_pack_state(const float (&s)[KT][4], uint32_t (&sb)[KT][2]) {
#pragma unroll
  for (int j = 0; j < KT; ++j) {
    sb[j][0] = gdn_pack2<IS_F16>(s[j][0], s[j][1]);
    sb[j][1] = gdn_pack2<IS_F16>(s[j][2], s[j][3]);
  }
}

/* h_c = S into its [K][V] rows (fp32, 16-byte staged tiles for chunk_delta_h, or pairs);
 * `hbase` is the element offset of the warp's first column in chunk c's h. */
template <int K, int O_MODE, typename elem>
__device__ __forceinline__ void gdn_col_store_h(const gdn_scan_params &p, const float (&s)[K / 8][4],
                                                const uint32_t (&sb)[K / 8][2], uint16_t *ostage, int64_t hbase) {
  constexpr int KT = K / 8;
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
  if (p.h_f32) {
    float *hp = (float *)p.h + hbase;
#pragma unroll
    for (int j = 0; j < KT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) hp[(int64_t)(8 * j + 2 * t4 + (e & 1)) * p.h_sk + g8 + 8 * (e >> 1)] = s[j][e];
  } else if (O_MODE == 0 && p.h_vec16) {
    gdn_col_store_tile<KT>(sb, ostage, (elem *)p.h + hbase, p.h_sk, K);
  } else {
    elem *hp = (elem *)p.h + hbase;
#pragma unroll
    for (int j = 0; j < KT; ++j)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) gdn_col_store_pair(hp, p.h_sk, sb[j][hf], 8 * j, hf, K);
  }
}

/* From X^T [16 v x 64 t] (x) and the warp's columns of the u / v block: v_new^T = u^T - X^T
 * into vt, or folded Y = v^T - X^T diag(fc) as 16-bit A fragments ya. x may be vt. */
template <int FOLD, int IS_F16, typename elem>
__device__ __forceinline__ void gdn_col_form_y(const float (&x)[8][4], const elem *Us, int BVP, int ucol,
                                               const float *fc, float (&vt)[8][4], uint32_t (&ya)[8][2]) {
  const int t4 = threadIdx.x & 3;
#pragma unroll
  for (int np = 0; np < 4; ++np) {
    /* u^T accumulator pairs: B fragments of the block stored [token][v] (b0: tokens 16np.., v g) */
    uint32_t b[4];
    gdn_load_b_kn(b, Us, BVP, 16 * np, ucol);
    const uint32_t bu[4] = {b[0], b[2], b[1], b[3]}; /* (n, hf) = (2np,0) (2np,1) (2np+1,0) (2np+1,1) */
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int n = 2 * np + (q >> 1), hf = q & 1;
      const float2 uu = gdn_unpack2<IS_F16>(bu[q]);
      const float x0 = x[n][2 * hf], x1 = x[n][2 * hf + 1];
      if (FOLD) {
        const float2 cc = *(const float2 *)(fc + 8 * n + 2 * t4);
        ya[n][hf] = gdn_pack2<IS_F16>(uu.x - x0 * cc.x, uu.y - x1 * cc.y);
      } else {
        vt[n][2 * hf] = uu.x - x0;
        vt[n][2 * hf + 1] = uu.y - x1;
      }
    }
  }
}

/* 16-bit v_new (for o and the output) and v' = ff v_new (for S). */
template <int IS_F16>
__device__ __forceinline__ void gdn_col_pack_vnew(const float (&vt)[8][4], const float *ff, uint32_t (&vn)[8][2],
                                                  uint32_t (&vp)[8][2]) {
  const int t4 = threadIdx.x & 3;
#pragma unroll
  for (int n = 0; n < 8; ++n) {
    const float2 fp = *(const float2 *)(ff + 8 * n + 2 * t4);
    vn[n][0] = gdn_pack2<IS_F16>(vt[n][0], vt[n][1]);
    vn[n][1] = gdn_pack2<IS_F16>(vt[n][2], vt[n][3]);
    vp[n][0] = gdn_pack2<IS_F16>(vt[n][0] * fp.x, vt[n][1] * fp.y);
    vp[n][1] = gdn_pack2<IS_F16>(vt[n][2] * fp.x, vt[n][3] * fp.y);
  }
}

/* S^T *= e^{g_last} [e^{gk_last}] (Gkl: the chunk's last per-key log gate, with gk). */
template <int KT, int GK>
__device__ __forceinline__ void gdn_col_decay(const gdn_scan_params &p, float (&s)[KT][4], float g_last, const float *Gkl) {
  const int t4 = threadIdx.x & 3;
  const float decay = p.g != NULL ? gdn_exp_fast(g_last) : 1.f;
  if (GK && p.gk != NULL) { /* (a runtime-only test lets ptxas merge both loops through 32 MOVs) */
#pragma unroll
    for (int j = 0; j < KT; ++j) {
      const float d0 = decay * __expf(Gkl[8 * j + 2 * t4]), d1 = decay * __expf(Gkl[8 * j + 2 * t4 + 1]);
      s[j][0] *= d0; s[j][1] *= d1; s[j][2] *= d0; s[j][3] *= d1;
    }
  } else {
#pragma unroll
    for (int j = 0; j < KT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] *= decay;
  }
}

template <int K, int W, int IS_F16, int O_MODE, int FOLD>
__global__ void __launch_bounds__(W * 32, 1) gdn_scan_col_kernel(const gdn_scan_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int BV = 16 * W, NT = 32 * W;
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD> SM;
  constexpr int KP = SM::KP, BVP = SM::BVP;
  constexpr int KT = K / 8; /* key n-tiles of S^T */
  static_assert(K == 64 || K == 128, "the column-split scan holds S^T in registers: K <= 128");

  extern __shared__ __align__(16) unsigned char gdn_smem[];
  gdn_scan_work w;
  if (!gdn_scan_work_at<K, BV>(p, w)) return;
  const int head = w.head, t_begin = w.t_begin, t_end = w.t_end, nchunks = w.nchunks;
  const int64_t chunk_base = w.chunk_base;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g8 = lane >> 2, t4 = lane & 3;
  const int ucol = 16 * warp;          /* this warp's columns in the u tile */
  const int vcol0 = w.row0 + ucol;     /* ... and among the state rows */
  const int stages = p.stages;
  float *fac = (float *)(gdn_smem + (size_t)stages * SM::stage); /* per-warp factor rows, 3 x 64 */
  /* chunk_delta_h: per-warp staging tile for the h and v_new stores, [K rows][24] */
  uint16_t *ostage = (uint16_t *)(fac + W * 192) + warp * (K * 24);

  /* ---- S^T [16 v x K]: s[j][e] = S^T[g + 8(e>>1)][8j + 2t + (e&1)]; the pool stores S^T */
  float s[KT][4];
  gdn_col_state_load<KT>(s, w, p.V, vcol0);

  const bool has_g = p.g != NULL;

  gdn_scan_prefetch<K, BV, NT, O_MODE, elem, FOLD>(p, gdn_smem, w);

  for (int c = 0; c < nchunks; ++c) {
    const int t0 = t_begin + 64 * c;
    const int L = min(64, t_end - t0);
    unsigned char *st = gdn_smem + (size_t)(c % stages) * SM::stage;
    /* chunk c landed for all; chunk c-1's buffer is free and takes chunk c + stages - 1 */
    gdn_scan_stage_in<K, BV, NT, O_MODE, elem, FOLD>(p, gdn_smem, w, c);
    const elem *Ks = (const elem *)(st + SM::off_k);
    const elem *Ws = (const elem *)(st + SM::off_w);
    const elem *Us = (const elem *)(st + SM::off_u);
    const float *Gs = (const float *)(st + SM::off_g);

    const float g_last = has_g ? Gs[L - 1] : 0.f;
    float *fc = fac + warp * 192, *ff = fc + 64, *fo = ff + 64;
    gdn_col_factors<O_MODE, FOLD>(p, Gs, (const float *)(st + SM::off_kf), (const float *)(st + SM::off_qf), g_last, fc);

    uint32_t sb[KT][2];
    gdn_col_pack_state<KT, IS_F16>(s, sb);

    /* ---- h_c = S, [K][V] rows */
    if (p.h != NULL)
      gdn_col_store_h<K, O_MODE, elem>(p, s, sb, ostage, (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + vcol0);

    /* ---- v_new^T [16 v x 64 tokens] = u^T - S^T w^T; folded (w = Tu diag(c) k, u = Tu v,
     * c_j = kf_j e^{g_j}): v_new^T = (v^T - (S^T k^T) diag(c)) Tu^T */
    float vt[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) vt[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
      const uint32_t a[4] = {sb[2 * kk][0], sb[2 * kk][1], sb[2 * kk + 1][0], sb[2 * kk + 1][1]};
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t b[4];
        gdn_load_b_nk(b, FOLD ? Ks : Ws, KP, 16 * kk, 16 * np);
        gdn_mma<IS_F16>(vt[2 * np], a, b[0], b[1]);
        gdn_mma<IS_F16>(vt[2 * np + 1], a, b[2], b[3]);
      }
    }
    uint32_t ya[8][2]; /* folded: Y = v^T - X diag(c) in 16 bits, as A fragments */
    gdn_col_form_y<FOLD, IS_F16>(vt, Us, BVP, ucol, fc, vt, ya);
    if (FOLD) {
      const elem *Tus = Ws;
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) vt[n][e] = 0.f;
      /* Tu is lower triangular: token block np of v_new takes blocks kb <= np of Y */
#pragma unroll
      for (int np = 0; np < 4; ++np)
#pragma unroll
        for (int kb = 0; kb < 4; ++kb) {
          if (kb <= np) {
            const uint32_t a[4] = {ya[2 * kb][0], ya[2 * kb][1], ya[2 * kb + 1][0], ya[2 * kb + 1][1]};
            uint32_t b[4];
            gdn_load_b_nk(b, Tus, SM::AP, 16 * kb, 16 * np);
            gdn_mma<IS_F16>(vt[2 * np], a, b[0], b[1]);
            gdn_mma<IS_F16>(vt[2 * np + 1], a, b[2], b[3]);
          }
        }
    }

    /* 16-bit v_new (for o and the output) and v' = kf e^{g_last - g} v_new (for S) */
    uint32_t vn[8][2], vp[8][2];
    gdn_col_pack_vnew<IS_F16>(vt, ff, vn, vp);
    if (p.v_new != NULL) {
      elem *vb_out = (elem *)p.v_new + (int64_t)t0 * p.vn_st + (int64_t)head * p.vn_sh + vcol0;
      if (O_MODE == 0) { /* v_new rows are 16-byte aligned (validated) */
        gdn_col_store_tile<8>(vn, ostage, vb_out, p.vn_st, L);
      } else {
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) gdn_col_store_pair(vb_out, p.vn_st, vn[n][hf], 8 * n, hf, L);
      }
    }

    /* ---- S^T = decay S^T + v'^T k: before o, so its mma chain interleaves with o's (o uses
     * the 16-bit copy sb of the chunk's entering state) */
    gdn_col_decay<KT, !FOLD>(p, s, g_last, (const float *)(st + SM::off_gkl));
#pragma unroll
    for (int kb = 0; kb < 4; ++kb) {
      const uint32_t a[4] = {vp[2 * kb][0], vp[2 * kb][1], vp[2 * kb + 1][0], vp[2 * kb + 1][1]};
#pragma unroll
      for (int jp = 0; jp < K / 16; ++jp) {
        uint32_t b[4];
        gdn_load_b_kn(b, Ks, KP, 16 * kb, 16 * jp);
        gdn_mma<IS_F16>(s[2 * jp], a, b[0], b[1]);
        gdn_mma<IS_F16>(s[2 * jp + 1], a, b[2], b[3]);
      }
    }
    if (void *ck = gdn_scan_ckpt_at(p, w, c, L)) {
      gdn_scan_work cw = w;
      cw.dst = ck; cw.dst_v = p.ck_v; cw.dst_k = p.ck_k; cw.dst_dt = p.ck_dt; cw.dst_rows = p.V;
      gdn_col_state_store<KT>(s, cw, vcol0);
    }

    /* ---- o = (scale qf e^g) (q S) + aqk v_new, [64 tokens x 16 v] */
    if (O_MODE) {
      const elem *Qs = (const elem *)(st + SM::off_q);
      const elem *As = (const elem *)(st + SM::off_a);
      float oa[4][2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int nv = 0; nv < 2; ++nv)
#pragma unroll
          for (int e = 0; e < 4; ++e) oa[mi][nv][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < K / 16; ++kk) {
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
          uint32_t a[4];
          gdn_load_a(a, Qs, KP, 16 * mi, 16 * kk);
          gdn_mma<IS_F16>(oa[mi][0], a, sb[2 * kk][0], sb[2 * kk + 1][0]);
          gdn_mma<IS_F16>(oa[mi][1], a, sb[2 * kk][1], sb[2 * kk + 1][1]);
        }
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int i = 16 * mi + g8 + 8 * hf;
          const float sc = fo[i];
#pragma unroll
          for (int nv = 0; nv < 2; ++nv) {
            oa[mi][nv][2 * hf] *= sc;
            oa[mi][nv][2 * hf + 1] *= sc;
          }
        }
        /* causal: token blocks kb <= mi of aqk */
#pragma unroll
        for (int kb = 0; kb < 4; ++kb) {
          if (kb <= mi) {
            uint32_t a[4];
            gdn_load_a(a, As, SM::AP, 16 * mi, 16 * kb);
            gdn_mma<IS_F16>(oa[mi][0], a, vn[2 * kb][0], vn[2 * kb + 1][0]);
            gdn_mma<IS_F16>(oa[mi][1], a, vn[2 * kb][1], vn[2 * kb + 1][1]);
          }
        }
      }
      elem *ob = (elem *)p.o + (int64_t)t0 * p.o_st + (int64_t)head * p.o_sh + vcol0 + 2 * t4;
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int i = 16 * mi + g8 + 8 * hf;
          if (i < L) {
#pragma unroll
            for (int nv = 0; nv < 2; ++nv)
              *(uint32_t *)(ob + (int64_t)i * p.o_st + 8 * nv) =
                  gdn_pack2<IS_F16>(oa[mi][nv][2 * hf], oa[mi][nv][2 * hf + 1]);
          }
        }
    }
  }
  gdn_cp_async_wait<0>();

  /* ---- final state to its row (in place for a pool) */
  if (w.dst != NULL) gdn_col_state_store<KT>(s, w, vcol0);
}

#endif
