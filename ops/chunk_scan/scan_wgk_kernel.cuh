/* chunk_delta_h on Hopper's warpgroup tensor cores with the state's key rows across the
 * warpgroup (sm_90a, K = 128): the form for batches of few (sequence, head) pairs, where one
 * chain of chunks per CTA sets the time and 32 value columns a warpgroup give the most chains.
 *
 * A compute warpgroup owns 32 value columns; S [K x 32] is two fp32 accumulators of m64n32
 * wgmma (key rows 64h.., s[h][4j + e] = S[64h + 16w + g + 8(e>>1)][8j + 2t + (e&1)], warp w,
 * g = lane / 4, t = lane % 4). Per chunk (notation of scan_kernel.cuh):
 *   Sb      = S in 16 bits, [K][32] in shared memory (also h_c, stored from there)
 *   v_new   = u - w Sb                      [64 t x 32 v]: A = w (K-major), B = Sb (MN-major)
 *   S       = decay S + k^T (ff v_new)       A = k (MN-major: k^T), B = v' [64 t][32] (MN-major)
 * 16 m64n32k16 products, both operands from shared memory; S and v' pass through 64-byte-
 * swizzled 16-bit tiles (core/wgmma.cuh), the state tile also the h store's staging, so the
 * only barriers of a chunk are the warpgroup's two (after each tile is written). The global
 * stores (h, v_new) are issued while products run: the proxy fence before a barrier is a CTA
 * memory barrier too and would wait for stores issued just before it. Every
 * per-token and per-key factor a thread needs is its own: rows 16w + g, +8 of the chunk and
 * keys 16w + g (+8, +64, +72) of the state.
 *
 * A CTA runs WG such warpgroups on WG x 32 adjacent columns of one head, sharing the
 * producer warpgroup and its stages (the k and w tiles by the copy engine, the u block and
 * rows by cp.async: scan_wg_kernel.cuh's producer): the chains are independent, so more
 * warpgroups a CTA trade chains per SM for k / w traffic. */
#ifndef GDN_SCAN_WGK_KERNEL_CUH
#define GDN_SCAN_WGK_KERNEL_CUH

#include "ops/chunk_scan/scan_wg_kernel.cuh"

/* Per compute warpgroup after the stages: Sb [K][32] and v' [64][32], 16-bit, 64-byte rows. */
template <int K> struct gdn_scan_wgk_tiles {
  static constexpr size_t sb = 0, vp = (size_t)K * 64, bytes = vp + 64 * 64;
};

/* The accumulator tile rows row0..row0+15 of warp-owned pairs p[j][hf] (row g + 8hf,
 * columns 8j + 2t..+1, j < 4) into a 64-byte-swizzled [rows][32] tile: two stmatrix. */
__device__ __forceinline__ void gdn_wgk_stage_rows(const uint32_t (&p)[4][2], unsigned char *tile, int row0) {
  const int lane = threadIdx.x & 31, m = lane >> 3, r = row0 + 8 * (m & 1) + (lane & 7);
#pragma unroll
  for (int jp = 0; jp < 2; ++jp) {
    const uint32_t regs[4] = {p[2 * jp][0], p[2 * jp][1], p[2 * jp + 1][0], p[2 * jp + 1][1]};
    gdn_stmatrix_x4(tile + gdn_sw64_offset(r, 2 * jp + (m >> 1)), regs);
  }
}

/* Registers: one compute warpgroup launches at 128 (two CTAs an SM, what the shared memory
 * allows), four at 96 (640 threads); the producer then gives the compute warpgroups its
 * share (setmaxnreg: 24 for it, 232 / 112 for them; at the launch counts ptxas spills 300 /
 * 240 bytes in the chunk loop). Two launch at 168 (one CTA an SM) and keep them. */
template <int WG> struct gdn_scan_wgk_regs {
  static constexpr bool realloc = WG != 2;
  static constexpr int launch = WG == 1 ? 128 : WG == 4 ? 96 : 168, producer = 24, consumer = WG == 1 ? 232 : 112;
  static_assert(!realloc || GDN_SCAN_WG_PRODUCER_THREADS * producer + WG * 128 * consumer <=
                                (WG * 128 + GDN_SCAN_WG_PRODUCER_THREADS) * launch,
                "register split");
};

/* Key row and warpgroup column of the state element s[h][4j + e] (warp wp, lane (g8, t4)). */
#define GDN_WGK_KEY(h, e) (64 * (h) + 16 * wp + g8 + 8 * ((e) >> 1))
#define GDN_WGK_COL(j, e) (8 * (j) + 2 * t4 + ((e) & 1))

/* S (s[h][4j + e] of warp wp, lane (g8, t4)) to w's destination rows vcol0 + column. */
__device__ __forceinline__ void gdn_wgk_state_store(const float (&s)[2][16], const gdn_scan_work &w, int vcol0, int wp,
                                                    int g8, int t4) {
  gdn_scan_dst_dispatch(w, [&](auto type) {
    typedef typename decltype(type)::type T;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int i = 0; i < 16; ++i) gdn_scan_state_put<T>(w, vcol0 + GDN_WGK_COL(i >> 2, i), GDN_WGK_KEY(h, i & 3), s[h][i]);
  });
}

template <int K, int WG, int IS_F16>
__global__ void __launch_bounds__(WG * 128 + GDN_SCAN_WG_PRODUCER_THREADS, WG == 1 ? 2 : 1)
    gdn_scan_wgk_kernel(const __grid_constant__ gdn_scan_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int BV = 32 * WG, NT = 128 * WG;
  typedef gdn_scan_smem<K, BV, 0, 0, 1> SM;
  typedef gdn_scan_wgk_tiles<K> TL;
  static_assert(K == 128, "the key-row warpgroup scan is built for K = 128 (two m64 key halves)");

  extern __shared__ __align__(16) unsigned char gdn_smem_raw[];
  unsigned char *smem = gdn_smem_raw + ((1024u - (gdn_smem_addr(gdn_smem_raw) & 1023u)) & 1023u);
  gdn_scan_work w;
  if (!gdn_scan_work_at<K, BV>(p, w)) return;
  const int head = w.head, t_begin = w.t_begin, t_end = w.t_end, nchunks = w.nchunks;

  const int lane = threadIdx.x & 31, wp = (threadIdx.x >> 5) & 3, g8 = lane >> 2, t4 = lane & 3;
  const int wg = threadIdx.x >> 7;
  const int stages = p.stages;
  /* the warpgroups' tiles first, then the stages: a tile's address does not depend on the
   * stage count (a product with it was a value ptxas kept in local memory) */
  unsigned char *tiles = smem + (size_t)(wg < WG ? wg : 0) * TL::bytes, *stage0 = smem + (size_t)WG * TL::bytes;
  unsigned char *Sb = tiles + TL::sb, *Vp = tiles + TL::vp;
  uint64_t *full = (uint64_t *)(stage0 + (size_t)stages * SM::stage), *empty = full + 4;
  gdn_scan_wg_setup<0>(p, full, empty, stages, NT);
  if (wg == WG) {
    if constexpr (gdn_scan_wgk_regs<WG>::realloc) gdn_setmaxnreg_dec<gdn_scan_wgk_regs<WG>::producer>();
    gdn_scan_wg_produce<K, BV, 0, elem, 0>(p, w, stage0, full, empty);
    return;
  }
  if constexpr (gdn_scan_wgk_regs<WG>::realloc) gdn_setmaxnreg_inc<gdn_scan_wgk_regs<WG>::consumer>();

  const int ucol = 32 * wg;         /* the warpgroup's columns in the u block */
  const int vcol0 = w.row0 + ucol;  /* ... and among the state rows */
  float s[2][16];
  gdn_scan_state_dispatch(w, [&](auto kind) {
    constexpr int KIND = decltype(kind)::value;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int i = 0; i < 16; ++i)
        s[h][i] = gdn_scan_state_elem<KIND>(w, p.V, vcol0 + GDN_WGK_COL(i >> 2, i), GDN_WGK_KEY(h, i & 3));
  });

  const bool has_g = p.g != NULL, has_kf = p.kf != NULL, has_gk = p.gk != NULL;
  const int r0 = 16 * wp + g8; /* this thread's token rows r0, r0 + 8 */
  const uint64_t sb_desc = gdn_wgmma_desc_sw64_mn(Sb, 512), vp_desc = gdn_wgmma_desc_sw64_mn(Vp, 512);
  const int bar_id = 1 + wg; /* the warpgroup's named barrier */
  int sidx = 0, sphase = 0;
  for (int c = 0; c < nchunks; ++c) {
    const int t0 = t_begin + 64 * c;
    const int L = min(64, t_end - t0);
    const bool ck_due = gdn_scan_ckpt_due(p, w, c, L);
    unsigned char *st = stage0 + (size_t)sidx * SM::stage;
    const unsigned char *Ks = st + SM::off_k, *Ws = st + SM::off_w;
    elem *Us = (elem *)(st + SM::off_u);
    const float *Gs = (const float *)(st + SM::off_g), *Kf = (const float *)(st + SM::off_kf);

    /* ---- Sb = S (16-bit) */
    uint32_t pk[4][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        pk[j][0] = gdn_pack2<IS_F16>(s[h][4 * j], s[h][4 * j + 1]);
        pk[j][1] = gdn_pack2<IS_F16>(s[h][4 * j + 2], s[h][4 * j + 3]);
      }
      gdn_wgk_stage_rows(pk, Sb, 64 * h + 16 * wp);
    }
    gdn_fence_proxy_async(); /* the tensor cores read Sb */
    gdn_named_sync(bar_id, 128);
    gdn_mbar_wait(full + sidx, sphase);

    /* ---- X = w Sb [64 t x 32 v] */
    float x[16];
    gdn_wgmma_fence();
    {
      const uint64_t wdesc = gdn_wgmma_desc_k(Ws);
#pragma unroll
      for (int kk = 0; kk < K / 16; ++kk)
        gdn_wgmma_ss_n32<IS_F16, 0, 1>(x, wdesc + ((kk >> 2) * (64 * 128) + (kk & 3) * 32) / 16, sb_desc + kk * (1024 / 16),
                                       kk > 0);
    }
    gdn_wgmma_commit();

    /* h_c = S from Sb while the products run (global stores issued before a proxy fence would
     * be waited for by it: the fence is a CTA memory barrier too) */
    if (p.h != NULL) {
      const int64_t hoff = (w.chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + vcol0;
      if (p.h_f32) {
        float *hp = (float *)p.h + hoff;
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int i = 0; i < 16; ++i) hp[(int64_t)GDN_WGK_KEY(h, i & 3) * p.h_sk + GDN_WGK_COL(i >> 2, i)] = s[h][i];
      } else if (p.h_vec16) { /* 32 rows a warp from Sb: 64-byte row segments */
        elem *hp = (elem *)p.h + hoff;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int rl = (lane >> 2) + 8 * i, row = 64 * (rl >> 4) + 16 * wp + (rl & 15), ch = lane & 3;
          *(uint4 *)(hp + (int64_t)row * p.h_sk + 8 * ch) = *(const uint4 *)(Sb + gdn_sw64_offset(row, ch));
        }
      } else {
        uint16_t *hp = (uint16_t *)p.h + hoff;
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
              const uint32_t v = gdn_pack2<IS_F16>(s[h][4 * j + 2 * hf], s[h][4 * j + 2 * hf + 1]);
              uint16_t *q = hp + (int64_t)GDN_WGK_KEY(h, 2 * hf) * p.h_sk + GDN_WGK_COL(j, 0);
              q[0] = (uint16_t)(v & 0xffffu);
              q[1] = (uint16_t)(v >> 16);
            }
      }
    }

    /* per-token factors of this thread's rows: ff = kf e^{g_last - g} */
    const float g_last = has_g ? Gs[L - 1] : 0.f;
    float ff[2];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int r = r0 + 8 * hf;
      ff[hf] = (has_kf ? Kf[r] : 1.f) * (has_g ? gdn_exp_fast(g_last - Gs[r]) : 1.f);
    }
    gdn_wgmma_wait<0>();
    gdn_wgmma_fence_regs<16>(x);

    /* ---- v_new = u - X in place of the u it was formed from (each thread rewrites the
     * elements it read; the warp then stores its 16 rows from there), v' = ff v_new into Vp */
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int r = r0 + 8 * hf, col = GDN_WGK_COL(j, 0);
        uint32_t *up = (uint32_t *)(Us + r * SM::BVP + ucol + col);
        const float2 uu = gdn_unpack2<IS_F16>(*up);
        const float v0 = uu.x - x[4 * j + 2 * hf], v1 = uu.y - x[4 * j + 2 * hf + 1];
        *up = gdn_pack2<IS_F16>(v0, v1);
        pk[j][hf] = gdn_pack2<IS_F16>(v0 * ff[hf], v1 * ff[hf]);
      }
    gdn_wgk_stage_rows(pk, Vp, 16 * wp);

    /* ---- S = decay S [e^{gk_last}] + k^T v' */
    const float decay = has_g ? gdn_exp_fast(g_last) : 1.f;
    const float *Gkl = (const float *)(st + SM::off_gkl);
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const float d = has_gk ? decay * __expf(Gkl[GDN_WGK_KEY(h, 2 * hf)]) : decay;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[h][4 * j + 2 * hf] *= d;
          s[h][4 * j + 2 * hf + 1] *= d;
        }
      }
    gdn_fence_proxy_async();
    gdn_named_sync(bar_id, 128); /* Vp whole */
    gdn_wgmma_fence_regs<16>(s[0]); /* the decayed state before the products read it */
    gdn_wgmma_fence_regs<16>(s[1]);
    gdn_wgmma_fence();
#pragma unroll
    for (int kb = 0; kb < 4; ++kb)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        gdn_wgmma_ss_n32<IS_F16, 1, 1>(s[h], gdn_wgmma_desc_mn(Ks + h * (64 * 128), 64 * 128) + kb * (2048 / 16),
                                       vp_desc + kb * (1024 / 16), 1);
    gdn_wgmma_commit();
    if (p.v_new != NULL) { /* v_new out while the products run: the warp's rows 16wp.., whole
                            * 64-byte row segments of 16 bytes a lane (4-byte stores from the
                            * fragments wrote half sectors) */
      __syncwarp();
      elem *vn_out = (elem *)p.v_new + (int64_t)t0 * p.vn_st + (int64_t)head * p.vn_sh + vcol0;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = 16 * wp + 8 * i + (lane >> 2), ch = lane & 3;
        if (r < L) *(uint4 *)(vn_out + (int64_t)r * p.vn_st + 8 * ch) = *(const uint4 *)(Us + r * SM::BVP + ucol + 8 * ch);
      }
    }
    gdn_wgmma_wait<0>();
    gdn_wgmma_fence_regs<16>(s[0]);
    gdn_wgmma_fence_regs<16>(s[1]);
    gdn_mbar_arrive(empty + sidx); /* this thread is done with the stage */
    if (++sidx == stages) {
      sidx = 0;
      sphase ^= 1;
    }

    if (ck_due) {
      gdn_scan_work cw = w;
      cw.dst = gdn_scan_ckpt_row(p, w, c); cw.dst_v = p.ck_v; cw.dst_k = p.ck_k; cw.dst_dt = p.ck_dt; cw.dst_rows = p.V;
      gdn_wgk_state_store(s, cw, vcol0, wp, g8, t4);
    }
  }

  /* ---- final state to its row (in place for a pool) */
  gdn_scan_work_at<K, BV>(p, w);
  if (w.dst != NULL) gdn_wgk_state_store(s, w, vcol0, wp, g8, t4);
}

#undef GDN_WGK_KEY
#undef GDN_WGK_COL

#endif
