/* The chunk state scan on Hopper's warpgroup tensor cores (sm_90a, K = 128): the
 * column-split scan (scan_col_kernel.cuh) with every product issued by a warpgroup.
 *
 * A warpgroup (4 warps) owns 64 value columns; warp w of it the 16 of the column kernel,
 * and the registers are the same: S^T [64 v x K] is the fp32 accumulator of an m64 wgmma
 * (s[j][e] = S^T[16w + g + 8(e>>1)][8j + 2t + (e&1)]), and its 16-bit packing is the A
 * operand of the next product. So every product takes A from registers and only the
 * per-chunk tiles, read once per warpgroup instead of once per warp, come from shared
 * memory (128-byte-swizzled slabs, core/wgmma.cuh):
 *   X^T    [64 v x 64 t]  = S^T w^T, or S^T k^T (FOLD)        B = w / k, K-major
 *   v_new^T[64 v x 64 t]  = u^T - X^T, or (v^T - X^T diag(c)) Tu^T   B = Tu, K-major
 *   S^T   += v'^T k                                           B = k, MN-major
 *   o^T    [64 v x 64 t]  = S^T q^T diag(fo) + v_new^T aqk^T  B = q, aqk, K-major
 * (notation of scan_kernel.cuh / scan_col_kernel.cuh). Tu and aqk are lower triangular
 * (zero above the diagonal, as chunk_intra stores them and the API defines them).
 * The o tile is computed transposed and stored through the warp's columns of the u block
 * (free once v_new is formed), like v_new.
 * Per chunk and warpgroup: 24 wgmma (28 in the folded form, with Tu), 64 KB of B operands read.
 *
 * A producer warpgroup feeds the stages: for a full chunk one thread has the copy engine
 * bring the k, w / Tu, q and aqk tiles (swizzled as they land) and the warpgroup's threads
 * cp.async the padded u block and the per-token rows; the last, partial chunk of a
 * sequence is all cp.async, zero-filled past its end (the copy engine would bring the next
 * sequence's rows, and 0 x NaN poisons the tensor-core sums). So the compute warpgroups
 * issue no loads and do equal work (bench/NOTES.md: the loads were a quarter of the first
 * one's instructions). The producer gives its registers to them (setmaxnreg): the CTA
 * holds what it held without it. */
#ifndef GDN_SCAN_WG_KERNEL_CUH
#define GDN_SCAN_WG_KERNEL_CUH

#include "core/tma.cuh"
#include "core/wgmma.cuh"
#include "ops/chunk_scan/scan_col_kernel.cuh"
#include "ops/chunk_scan/scan_norm.cuh"

/* A fragment of columns 16kk..16kk+15 of an accumulator tile held as packed pairs x[j][hf]. */
__device__ __forceinline__ void gdn_wg_a(uint32_t (&a)[4], const uint32_t (*x)[2], int kk) {
  a[0] = x[2 * kk][0];
  a[1] = x[2 * kk][1];
  a[2] = x[2 * kk + 1][0];
  a[3] = x[2 * kk + 1][1];
}

/* D[64 v x 64 t] (+)= Y[64 v x 64 t'] B^T, B = [t][t'] a 64x64 swizzled tile (Tu, aqk:
 * zero above the diagonal by their definition, so the full product is exact). Skipping
 * the zero blocks would need accumulator ranges at odd register offsets (wgmma with
 * N = 48 at columns 16..), which ptxas answers by serializing every wgmma of the kernel. */
template <int IS_F16>
__device__ __forceinline__ void gdn_wg_tile_product(float *d, const uint32_t (&y)[8][2], const unsigned char *B,
                                                    int accumulate) {
  const uint64_t desc = gdn_wgmma_desc_k(B); /* a k-step of 16 is 32 bytes: 2 in the address field */
  uint32_t a[4];
#pragma unroll
  for (int kb = 0; kb < 4; ++kb) {
    gdn_wg_a(a, y, kb);
    gdn_wgmma<64, IS_F16>(d, a, desc + 2 * kb, kb > 0 || accumulate);
  }
}

/* D[64 v x 64 t] = S^T B^T over K keys, B = [t][K] swizzled (K / 64 slabs of 64 rows). */
template <int K, int IS_F16>
__device__ __forceinline__ void gdn_wg_state_product(float *d, const uint32_t (&sb)[K / 8][2], const unsigned char *B) {
  const uint64_t desc = gdn_wgmma_desc_k(B);
  uint32_t a[4];
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    gdn_wg_a(a, sb, kk);
    gdn_wgmma<64, IS_F16>(d, a, desc + ((kk >> 2) * (64 * 128) + (kk & 3) * 32) / 16, kk > 0);
  }
}

/* Registers per thread: the launch bound gives (WG + 1) x 128 threads `launch` each (one
 * compute warpgroup: two CTAs an SM by registers, which the transition pass's stages fit;
 * two: one CTA); the producer drops to 24 and the compute warpgroups rise to what that
 * leaves of the CTA's pool. ptxas spills nothing in the compute loop of the forward's
 * instantiations; chunk_delta_h's reloads one value a chunk, and the code before the split
 * (at `launch`) and the producer's cp.async-only tail (at 24) spill ~100 bytes, once per CTA. */
template <int WG> struct gdn_scan_wg_regs {
  static constexpr int launch = WG == 1 ? 128 : 168, producer = 24, consumer = WG == 1 ? 232 : 240;
  static_assert(GDN_SCAN_WG_PRODUCER_THREADS * producer + WG * 128 * consumer <=
                    (WG * 128 + GDN_SCAN_WG_PRODUCER_THREADS) * launch,
                "register split");
};

/* Before the warpgroups split: thread 0 initializes the stages' mbarriers (full[s]: the
 * producer's threads and thread 0's copy-engine arrival; empty[s]: the nt compute threads),
 * the producer's first thread fetches the copy-engine maps (q and aqk with an output), then
 * a CTA barrier. */
template <int O_MODE>
__device__ __forceinline__ void gdn_scan_wg_setup(const gdn_scan_params &p, uint64_t *full, uint64_t *empty, int stages,
                                                  int nt) {
  if (threadIdx.x == 0) {
    for (int i = 0; i < stages; ++i) {
      gdn_mbar_init(full + i, GDN_SCAN_WG_PRODUCER_THREADS + 1);
      gdn_mbar_init(empty + i, nt);
    }
    gdn_mbar_init_fence(); /* the copy engine completes on them: its proxy sees the init */
  }
  if (threadIdx.x == nt && p.tma) { /* the maps into the copy engine's cache while the CTA sets up */
    gdn_tma_prefetch_map(&p.tma_k);
    gdn_tma_prefetch_map(&p.tma_w);
    if (O_MODE) {
      gdn_tma_prefetch_map(&p.tma_q);
      gdn_tma_prefetch_map(&p.tma_a);
    }
  }
  __syncthreads();
}

/* The producer warpgroup: chunk c into stage c % stages once the compute warpgroups have
 * released that stage's previous chunk. full[s] takes GDN_SCAN_WG_PRODUCER_THREADS + 1
 * arrivals a use: one per producer thread when its cp.async have landed, and thread 0's
 * (with the copy engine's bytes for a full chunk). */
template <int K, int BV, int O_MODE, typename elem, int FOLD>
__device__ __forceinline__ void gdn_scan_wg_produce(const gdn_scan_params &p, const gdn_scan_work &w, unsigned char *smem,
                                                    uint64_t *full, uint64_t *empty) {
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD, 1> SM;
  const int tid = threadIdx.x % GDN_SCAN_WG_PRODUCER_THREADS;
  const int stages = p.stages;
  const bool tma = p.tma != 0;
  /* full chunks by the copy engine (all but a partial last one), then the rest by cp.async:
   * two loops, so the copy-engine loop keeps within the producer's 24 registers */
  const int last_full = w.t_begin + 64 * w.nchunks <= w.t_end;
  const int n_tma = tma ? w.nchunks - (last_full ? 0 : 1) : 0;
  int s = 0, phase = 0;
  auto next = [&]() {
    if (++s == stages) {
      s = 0;
      phase ^= 1;
    }
  };
  for (int c = 0; c < n_tma; ++c, next()) {
    if (c >= stages) gdn_mbar_wait(empty + s, phase ^ 1); /* chunk c - stages released it */
    unsigned char *st = smem + (size_t)s * SM::stage;
    uint64_t *bar = full + s;
    const int t0 = w.t_begin + 64 * c;
    if (tid == 0) {
      gdn_mbar_arrive_expect_tx(bar, (uint32_t)SM::off_u); /* the tiles are the stage up to u */
#pragma unroll
      for (int x = 0; x < K; x += 64) gdn_tma_load_3d(st + SM::off_k + x * 128, &p.tma_k, bar, x, t0, w.k_head);
#pragma unroll
      for (int x = 0; x < (FOLD ? 64 : K); x += 64) gdn_tma_load_3d(st + SM::off_w + x * 128, &p.tma_w, bar, x, t0, w.head);
      if (O_MODE) {
#pragma unroll
        for (int x = 0; x < K; x += 64) gdn_tma_load_3d(st + SM::off_q + x * 128, &p.tma_q, bar, x, t0, w.q_head);
        gdn_tma_load_3d(st + SM::off_a, &p.tma_a, bar, 0, t0, w.head);
      }
    }
    gdn_scan_load_stage<K, BV, 128, O_MODE, elem, FOLD, 1, 0>(p, st, w.head, w.k_head, w.q_head, w.vb, t0, 64,
                                                             w.load_u ? 64 : 0, tid);
    gdn_cp_async_mbar_arrive(bar);
  }
  for (int c = n_tma; c < w.nchunks; ++c, next()) {
    if (c >= stages) gdn_mbar_wait(empty + s, phase ^ 1);
    unsigned char *st = smem + (size_t)s * SM::stage;
    uint64_t *bar = full + s;
    const int t0 = w.t_begin + 64 * c, L = min(64, w.t_end - t0);
    gdn_scan_load_stage<K, BV, 128, O_MODE, elem, FOLD, 1, 1>(p, st, w.head, w.k_head, w.q_head, w.vb, t0, L,
                                                             w.load_u ? L : 0, tid);
    gdn_cp_async_commit();
    gdn_cp_async_wait<0>();
    gdn_fence_proxy_async(); /* the tensor cores read what cp.async wrote */
    gdn_mbar_arrive(bar);
    if (tid == 0) gdn_mbar_arrive(bar); /* no copy-engine bytes this time */
  }
  gdn_cp_async_commit();
  gdn_cp_async_wait<0>();
}

template <int K, int WG, int IS_F16, int O_MODE, int FOLD, int NORM = 0>
__global__ void __launch_bounds__(WG * 128 + GDN_SCAN_WG_PRODUCER_THREADS, WG == 1 ? 2 : 1)
    gdn_scan_wg_kernel(const __grid_constant__ gdn_scan_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int W = 4 * WG, BV = 64 * WG, NT = 32 * W; /* the compute warps */
  typedef gdn_scan_smem<K, BV, O_MODE, FOLD, 1> SM;
  constexpr int BVP = SM::BVP;
  constexpr int KT = K / 8;
  static_assert(K == 128, "the warpgroup scan is built for K = 128");
  static_assert(!NORM || (O_MODE && FOLD && WG == 2), "the output norm: the folded forward over whole rows (BV = V = 128)");

  extern __shared__ __align__(16) unsigned char gdn_smem_raw[];
  /* the swizzle is a function of the address: tiles start on 1024-byte boundaries */
  unsigned char *smem = gdn_smem_raw + ((1024u - (gdn_smem_addr(gdn_smem_raw) & 1023u)) & 1023u);
  gdn_scan_work w;
  if (!gdn_scan_work_at<K, BV>(p, w)) return;
  const int head = w.head, t_begin = w.t_begin, t_end = w.t_end, nchunks = w.nchunks;
  const int64_t chunk_base = w.chunk_base;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t4 = lane & 3;
  const int ucol = 16 * warp;          /* this warp's columns in the u tile */
  const int vcol0 = w.row0 + ucol;     /* ... and among the state rows */
  const int stages = p.stages; /* >= 2 (planned) */
  const int wg = threadIdx.x >> 7;
  float *fac = (float *)(smem + (size_t)stages * SM::stage); /* per-warp factor rows, 3 x 64 */
  /* stage s: full[s] completes when chunk s, s + stages, ... has landed, empty[s] when
   * every compute thread is done with it */
  uint64_t *full = (uint64_t *)(fac + W * 192), *empty = full + 4;
  /* chunk_delta_h: per-warp staging tile for the h stores, [K rows][24] */
  uint16_t *ostage = (uint16_t *)(empty + 4) + warp * (K * 24);
  /* the output norm: this chunk's z tile [64][BV] and the weight [BV] as fp32 */
  elem *zs = (elem *)(empty + 4);
  float *nws = (float *)(zs + 64 * BV);
  gdn_scan_wg_setup<O_MODE>(p, full, empty, stages, NT);

  if (wg == WG) { /* the producer warpgroup */
    gdn_setmaxnreg_dec<gdn_scan_wg_regs<WG>::producer>();
    gdn_scan_wg_produce<K, BV, O_MODE, elem, FOLD>(p, w, smem, full, empty);
    return;
  }
  gdn_setmaxnreg_inc<gdn_scan_wg_regs<WG>::consumer>();

  float s[KT][4];
  gdn_col_state_load<KT>(s, w, p.V, vcol0);
  if constexpr (NORM) {
    gdn_scan_norm_weights<BV, NT>(p, nws, threadIdx.x);
    gdn_named_sync(3, NT); /* the weights, before the first chunk's epilogue reads them */
  }

  const bool has_g = p.g != NULL;

  /* With two compute warpgroups their first products alternate (named barriers 1, 2;
   * warpgroup 0 first): while one warpgroup's tensor cores run, the other does its
   * elementwise work. */
  if (WG == 2 && wg == 1 && nchunks > 0) gdn_named_arrive(1, 256);

  /* chunk c's stage and the parity of its use, (c % stages, (c / stages) & 1), carried as
   * counters (a runtime division each is ~20 instructions) */
  int sidx = 0, sphase = 0;
  for (int c = 0; c < nchunks; ++c) {
    const int t0 = t_begin + 64 * c;
    const int L = min(64, t_end - t0);
    const bool ck_due = !O_MODE && gdn_scan_ckpt_due(p, w, c, L); /* chunk_delta_h: decided early */
    unsigned char *st = smem + (size_t)sidx * SM::stage;
    if constexpr (NORM) gdn_scan_norm_load_z<BV, NT>(p, zs, head, t0, L, threadIdx.x);
    gdn_mbar_wait(full + sidx, sphase);
    const unsigned char *Ks = st + SM::off_k;
    const unsigned char *Ws = st + SM::off_w;
    elem *Us = (elem *)(st + SM::off_u);
    const float *Gs = (const float *)(st + SM::off_g);

    const float g_last = has_g ? Gs[L - 1] : 0.f;
    float *fc = fac + warp * 192, *ff = fc + 64, *fo = ff + 64;
    gdn_col_factors<O_MODE, FOLD>(p, Gs, (const float *)(st + SM::off_kf), (const float *)(st + SM::off_qf), g_last, fc);

    uint32_t sb[KT][2]; /* the A operand of the state products */
    gdn_col_pack_state<KT, IS_F16>(s, sb);
    if (O_MODE && p.h != NULL) /* h_c = S */
      gdn_col_store_h<K, O_MODE, elem>(p, s, sb, ostage, (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + vcol0);

    /* ---- X^T = S^T w^T (S^T k^T folded) and the state half of o^T, S^T q^T: both read
     * only the entering state, so sb is dead after this group (register budget) */
    float xt[8][4], oa[8][4];
    if (WG == 2) gdn_named_sync(1 + wg, 256); /* this warpgroup's turn */
    gdn_wgmma_fence();
    gdn_wg_state_product<K, IS_F16>(&xt[0][0], sb, FOLD ? Ks : Ws);
    if (O_MODE) gdn_wg_state_product<K, IS_F16>(&oa[0][0], sb, st + SM::off_q);
    gdn_wgmma_commit();
    if (WG == 2 && !(wg == 1 && c == nchunks - 1)) gdn_named_arrive(2 - wg, 256); /* the other's turn */
    if (!O_MODE && p.h != NULL) { /* chunk_delta_h: h_c = S while X runs, packed again (sb is X's
                                   * operand); stored before the products, its stores held them up */
      uint32_t hb[KT][2];
      gdn_col_pack_state<KT, IS_F16>(s, hb);
      gdn_col_store_h<K, O_MODE, elem>(p, s, hb, ostage, (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh + vcol0);
    }
    gdn_wgmma_wait<0>();
    gdn_wgmma_fence_regs<32>(&xt[0][0]);
    if (O_MODE) gdn_wgmma_fence_regs<32>(&oa[0][0]);

    /* ---- v_new^T = u^T - X^T; folded: Y = v^T - X^T diag(c) (16-bit A operand), then Y Tu^T */
    float vt[8][4];
    uint32_t ya[8][2];
    gdn_col_form_y<FOLD, IS_F16>(xt, Us, BVP, ucol, fc, vt, ya);
    if (FOLD) {
      gdn_wgmma_fence();
      gdn_wg_tile_product<IS_F16>(&vt[0][0], ya, Ws, 0);
      gdn_wgmma_commit();
      gdn_wgmma_wait<0>();
      gdn_wgmma_fence_regs<32>(&vt[0][0]);
    }

    /* 16-bit v_new (for o and the output) and v' = kf e^{g_last - g} v_new (for S) */
    uint32_t vn[8][2], vp[8][2];
    gdn_col_pack_vnew<IS_F16>(vt, ff, vn, vp);

    /* ---- S^T = decay S^T + v'^T k and o^T = (S^T q^T) diag(fo) + v_new^T aqk^T, together */
    gdn_col_decay<KT, !FOLD>(p, s, g_last, (const float *)(st + SM::off_gkl));
    if (O_MODE) {
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        const float2 f = *(const float2 *)(fo + 8 * n + 2 * t4);
        oa[n][0] *= f.x; oa[n][1] *= f.y;
        oa[n][2] *= f.x; oa[n][3] *= f.y;
      }
    }
    gdn_wgmma_fence();
    const uint64_t kdesc = gdn_wgmma_desc_mn(Ks, 64 * 128); /* 16 key rows further: 2048 bytes */
#pragma unroll
    for (int kb = 0; kb < 4; ++kb) {
      uint32_t a[4];
      gdn_wg_a(a, vp, kb);
      gdn_wgmma<K, IS_F16, 1>(&s[0][0], a, kdesc + kb * (16 * 128 / 16), 1);
    }
    if (O_MODE) gdn_wg_tile_product<IS_F16>(&oa[0][0], vn, st + SM::off_a, 1);
    gdn_wgmma_commit();

    /* v_new out while the tensor cores work: the warp's u columns are free now */
    if (p.v_new != NULL) {
      elem *vb_out = (elem *)p.v_new + (int64_t)t0 * p.vn_st + (int64_t)head * p.vn_sh + vcol0;
      gdn_col_store_tile<8, BVP>(vn, (uint16_t *)(Us + ucol), vb_out, p.vn_st, L);
    }
    gdn_wgmma_wait<0>();
    gdn_wgmma_fence_regs<4 * KT>(&s[0][0]);
    if (void *ck = O_MODE ? gdn_scan_ckpt_at(p, w, c, L) : ck_due ? gdn_scan_ckpt_row(p, w, c) : NULL) {
      gdn_scan_work cw = w;
      cw.dst = ck; cw.dst_v = p.ck_v; cw.dst_k = p.ck_k; cw.dst_dt = p.ck_dt; cw.dst_rows = p.V;
      gdn_col_state_store<KT>(s, cw, vcol0);
    }
    if (O_MODE) { /* o [64 t x 16 v] per warp, through the warp's u columns */
      gdn_wgmma_fence_regs<32>(&oa[0][0]);
      uint32_t ob[8][2];
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        ob[n][0] = gdn_pack2<IS_F16>(oa[n][0], oa[n][1]);
        ob[n][1] = gdn_pack2<IS_F16>(oa[n][2], oa[n][3]);
      }
      if constexpr (NORM) { /* the whole o tile staged in the u block, then normalized rows out */
        gdn_col_stage_tile<8, BVP>(ob, (uint16_t *)(Us + ucol));
        gdn_named_sync(3, NT);
        gdn_scan_norm_store<BV, NT>(p, Us, BVP, zs, nws, head, t0, L, threadIdx.x);
      } else {
        elem *obase = (elem *)p.o + (int64_t)t0 * p.o_st + (int64_t)head * p.o_sh + vcol0;
        gdn_col_store_tile<8, BVP>(ob, (uint16_t *)(Us + ucol), obase, p.o_st, L);
      }
    }
    gdn_mbar_arrive(empty + sidx); /* this thread is done with the stage */
    if (++sidx == stages) {
      sidx = 0;
      sphase ^= 1;
    }
  }

  /* ---- final state to its row (in place for a pool); the destination is derived again
   * rather than kept in registers across the loop (the same answer: nothing it reads
   * changes during the launch) */
  gdn_scan_work_at<K, BV>(p, w);
  if (w.dst != NULL) gdn_col_state_store<KT>(s, w, vcol0);
}

#endif
