/* The chunk state scan of the gated delta rule: one CTA walks the chunks of one
 * (sequence, value head, V-block) in order, carrying the state S [K x BV] in fp32
 * registers, with the chunk inputs prefetched `stages` deep by cp.async.
 *
 * Per chunk (G = chunk-local cumsum of the log gate, 64 rows, rows past the
 * sequence end are zero-filled so they contribute nothing):
 *   h_c   = S                                   (optional output)
 *   v_new = u - w S                             (optional output, unscaled)
 *   o     = scale (q S * e^G + causal(q k^T e^{G_i - G_j}) v_new)      (O_MODE)
 *   S     = e^{G_last} S + k^T (v_new * e^{G_last - G})
 * With a per-key gate (gk), k must arrive pre-gated and S rows are scaled by
 * e^{gk_last}; in O_MODE the causal q.k matrix then comes precomputed (aqk).
 *
 * Warp layout: W warps = 4 row groups x W/4 column groups. Row group wr owns token
 * rows [16wr, 16wr+16) of the chunk products and S rows [wr K/4, (wr+1) K/4);
 * column group wc owns columns [wc BV/(W/4), ...) of the V-block. Tensor-core mma
 * with 16-bit operands (S is rounded to the input dtype for the products, as FLA
 * does), fp32 accumulation and fp32 state. */
#ifndef GDN_SCAN_KERNEL_CUH
#define GDN_SCAN_KERNEL_CUH

#include "core/mma.cuh"
#include "ops/chunk_scan/scan_params.h"

__device__ __forceinline__ void gdn_cp_async4(void *smem, const void *gmem, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(gdn_smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}

template <int K, int BV, int O_MODE>
struct gdn_scan_smem {
  static constexpr int KP = K + 8, BVP = BV + 8;
  static constexpr size_t tile_k = (size_t)64 * KP * 2;
  static constexpr size_t tile_u = (size_t)64 * BVP * 2;
  /* within a stage */
  static constexpr size_t off_k = 0;
  static constexpr size_t off_w = tile_k;
  static constexpr size_t off_q = 2 * tile_k;
  static constexpr size_t off_u = (O_MODE ? 3 : 2) * tile_k;
  static constexpr size_t off_g = off_u + tile_u;
  static constexpr size_t off_gkl = off_g + 64 * 4;
  static constexpr size_t stage = off_gkl + (size_t)K * 4;
};

/* Issues the cp.async copies of chunk `c` of the sequence into one stage buffer. */
template <int K, int BV, int NT, int O_MODE, typename elem>
__device__ __forceinline__ void gdn_scan_load_stage(const gdn_scan_params &p, unsigned char *st, int head, int vb,
                                                    int t0, int L) {
  typedef gdn_scan_smem<K, BV, O_MODE> SM;
  const int tid = threadIdx.x;
  constexpr int VK = K / 8, VB = BV / 8; /* 16-byte vectors per row */
  const elem *kb = (const elem *)p.k + (int64_t)(head / p.group_k) * p.k_sh;
  const elem *wb = (const elem *)p.w + (int64_t)head * p.w_sh;
  elem *ks = (elem *)(st + SM::off_k), *ws = (elem *)(st + SM::off_w);
  for (int idx = tid; idx < 64 * VK; idx += NT) {
    int r = idx / VK, c = (idx % VK) * 8;
    bool ok = r < L;
    int64_t tr = ok ? (int64_t)(t0 + r) : 0;
    gdn_cp_async16(ks + r * SM::KP + c, kb + tr * p.k_st + c, ok ? 16 : 0);
    gdn_cp_async16(ws + r * SM::KP + c, wb + tr * p.w_st + c, ok ? 16 : 0);
  }
  if (O_MODE) {
    const elem *qb = (const elem *)p.q + (int64_t)(head / p.group_q) * p.q_sh;
    elem *qs = (elem *)(st + SM::off_q);
    for (int idx = tid; idx < 64 * VK; idx += NT) {
      int r = idx / VK, c = (idx % VK) * 8;
      bool ok = r < L;
      int64_t tr = ok ? (int64_t)(t0 + r) : 0;
      gdn_cp_async16(qs + r * SM::KP + c, qb + tr * p.q_st + c, ok ? 16 : 0);
    }
  }
  const elem *ub = (const elem *)p.u + (int64_t)head * p.u_sh + (int64_t)vb * BV;
  elem *us = (elem *)(st + SM::off_u);
  for (int idx = tid; idx < 64 * VB; idx += NT) {
    int r = idx / VB, c = (idx % VB) * 8;
    bool ok = r < L;
    int64_t tr = ok ? (int64_t)(t0 + r) : 0;
    gdn_cp_async16(us + r * SM::BVP + c, ub + tr * p.u_st + c, ok ? 16 : 0);
  }
  if (p.g != NULL && tid < 64) {
    bool ok = tid < L;
    const float *src = p.g + (ok ? (int64_t)(t0 + tid) * p.g_st : 0) + (int64_t)head * p.g_sh;
    gdn_cp_async4((float *)(st + SM::off_g) + tid, src, ok ? 4 : 0);
  }
  if (p.gk != NULL) {
    const float *src = p.gk + (int64_t)(t0 + L - 1) * p.gk_st + (int64_t)head * p.gk_sh;
    for (int idx = tid; idx < K / 4; idx += NT) gdn_cp_async16((float *)(st + SM::off_gkl) + idx * 4, src + idx * 4, 16);
  }
}

/* 1 / sqrt(sum x^2 + eps) of the 16 rows [row0, row0 + 16) of a tile; lane l returns
 * the value of row row0 + l / 2 (both lanes of a pair hold it). */
template <int K, int IS_F16>
__device__ __forceinline__ float gdn_row_rnorm16(const typename gdn_elem<IS_F16>::T *tile, int row0) {
  const int lane = threadIdx.x & 31;
  const uint4 *row = (const uint4 *)(tile + (row0 + (lane >> 1)) * (K + 8));
  float acc = 0.f;
#pragma unroll
  for (int v = (lane & 1); v < K / 8; v += 2) {
    uint4 x = row[v];
    uint32_t wd[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float2 f = gdn_unpack2<IS_F16>(wd[j]);
      acc += f.x * f.x + f.y * f.y;
    }
  }
  acc += __shfl_xor_sync(0xffffffffu, acc, 1);
  return rsqrtf(acc + 1e-6f);
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
  const gdn_batch_header *hdr = p.header;
  if (hdr->status != 0) return;
  const int nvb = p.V / BV;
  const int64_t bid = blockIdx.x;
  const int vb = (int)(bid % nvb);
  const int head = (int)((bid / nvb) % p.Hv);
  const int seq = (int)(bid / ((int64_t)nvb * p.Hv));
  if (seq >= hdr->num_seqs) return;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wr = warp & 3, wc = warp >> 2;
  const int g8 = lane >> 2, t4 = lane & 3;
  const int srow0 = wr * (K / 4);
  const int col0 = wc * NCOLS;
  const int vcol0 = vb * BV + col0;
  const int stages = p.stages;

  unsigned char *stage_base = gdn_smem;
  elem *Sb = (elem *)(gdn_smem + (size_t)stages * SM::stage);
  elem *Vo = Sb + K * BVP;
  elem *Vs = Vo + 64 * BVP;
  float *rk_s = (float *)(Vs + 64 * BVP);

  /* ---- initial state (pool stores S transposed: [V][K]) */
  const int slot = (p.slots != NULL && p.state != NULL) ? p.slots[seq] : -1;
  float *pool = slot >= 0 ? p.state + (int64_t)slot * p.s_slot + (int64_t)head * p.s_h : NULL;
  float acc_s[MT][NTW][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int kk = srow0 + 16 * mt + g8 + ((e >> 1) << 3);
        int v = vcol0 + 8 * nt + 2 * t4 + (e & 1);
        acc_s[mt][nt][e] = pool ? pool[(int64_t)v * p.s_v + (int64_t)kk * p.s_k] : 0.f;
      }

  const int t_begin = p.cu_seqlens[seq], t_end = p.cu_seqlens[seq + 1];
  const int nchunks = (t_end - t_begin + 63) / 64;
  const int64_t chunk_base = p.chunk_offsets[seq];

  if (stages > 1) {
    for (int s = 0; s < stages - 1; ++s) {
      if (s < nchunks) {
        int t0 = t_begin + 64 * s;
        gdn_scan_load_stage<K, BV, NT, O_MODE, elem>(p, stage_base + (size_t)s * SM::stage, head, vb, t0,
                                                     min(64, t_end - t0));
      }
      gdn_cp_async_commit();
    }
  }

  for (int c = 0; c < nchunks; ++c) {
    const int t0 = t_begin + 64 * c;
    const int L = min(64, t_end - t0);
    unsigned char *st = stage_base + (size_t)(c % stages) * SM::stage;
    const elem *Ks = (const elem *)(st + SM::off_k);
    const elem *Ws = (const elem *)(st + SM::off_w);
    const elem *Qs = (const elem *)(st + SM::off_q);
    const elem *Us = (const elem *)(st + SM::off_u);
    const float *Gs = (const float *)(st + SM::off_g);
    const float *Gkl = (const float *)(st + SM::off_gkl);

    /* ---- h_c = S: to shared memory (16-bit, [K][BV]) for the products, and out */
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          int kk = srow0 + 16 * mt + g8 + 8 * hf;
          int col = col0 + 8 * nt + 2 * t4;
          *(uint32_t *)(Sb + kk * BVP + col) = gdn_pack2<IS_F16>(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
        }
    if (p.h != NULL) {
      const int64_t hoff = (chunk_base + c) * p.h_sc + (int64_t)head * p.h_sh;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            int kk = srow0 + 16 * mt + g8 + 8 * hf;
            int64_t off = hoff + (int64_t)kk * p.h_sk + vcol0 + 8 * nt + 2 * t4;
            if (p.h_f32)
              *(float2 *)((float *)p.h + off) = make_float2(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
            else
              *(uint32_t *)((elem *)p.h + off) = gdn_pack2<IS_F16>(acc_s[mt][nt][2 * hf], acc_s[mt][nt][2 * hf + 1]);
          }
    }

    if (stages == 1) {
      __syncthreads(); /* everyone is done with the previous chunk's buffer */
      gdn_scan_load_stage<K, BV, NT, O_MODE, elem>(p, st, head, vb, t0, L);
      gdn_cp_async_commit();
      gdn_cp_async_wait<0>();
    } else if (stages == 2) {
      gdn_cp_async_wait<0>();
    } else if (stages == 3) {
      gdn_cp_async_wait<1>();
    } else {
      gdn_cp_async_wait<2>();
    }
    __syncthreads(); /* (A) chunk c landed; Sb written; previous chunk fully consumed */

    if (stages > 1) {
      int cn = c + stages - 1;
      if (cn < nchunks) {
        int tn = t_begin + 64 * cn;
        gdn_scan_load_stage<K, BV, NT, O_MODE, elem>(p, stage_base + (size_t)(cn % stages) * SM::stage, head, vb, tn,
                                                     min(64, t_end - tn));
      }
      gdn_cp_async_commit();
    }

    /* ---- row factors of this warp's token rows (i0 = row g8, i1 = row g8 + 8) */
    const int i0 = 16 * wr + g8, i1 = i0 + 8;
    float rq0 = 1.f, rq1 = 1.f, rk0 = 1.f, rk1 = 1.f;
    if (p.l2norm) {
      float rk_mine = gdn_row_rnorm16<K, IS_F16>(Ks, 16 * wr);
      if (wc == 0 && (lane & 1) == 0) rk_s[16 * wr + (lane >> 1)] = rk_mine;
      rk0 = __shfl_sync(0xffffffffu, rk_mine, 2 * g8);
      rk1 = __shfl_sync(0xffffffffu, rk_mine, 2 * (g8 + 8));
      if (O_MODE) {
        float rq_mine = gdn_row_rnorm16<K, IS_F16>(Qs, 16 * wr);
        rq0 = __shfl_sync(0xffffffffu, rq_mine, 2 * g8);
        rq1 = __shfl_sync(0xffffffffu, rq_mine, 2 * (g8 + 8));
      }
    }
    const bool has_g = p.g != NULL;
    const float g_last = has_g ? Gs[L - 1] : 0.f;
    const float g0 = has_g ? Gs[i0] : 0.f, g1 = has_g ? Gs[i1] : 0.f;

    /* ---- w S (and q S, q k^T) for token rows [16wr, 16wr+16) */
    float acc_v[NTW][4], acc_o[NTW][4], acc_m[8][4];
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_v[nt][e] = acc_o[nt][e] = 0.f;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_m[nt][e] = 0.f;

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
      if (O_MODE && p.aqk == NULL) {
#pragma unroll
        for (int jp = 0; jp < 4; ++jp) {
          if (jp <= wr) { /* causal: columns past this row group are never needed */
            uint32_t b[4];
            gdn_load_b_nk(b, Ks, KP, 16 * kb, 16 * jp);
            gdn_mma<IS_F16>(acc_m[2 * jp], aq, b[0], b[1]);
            gdn_mma<IS_F16>(acc_m[2 * jp + 1], aq, b[2], b[3]);
          }
        }
      }
    }

    /* ---- v_new = u - w S; keep it (16-bit) for o, and scaled for the state update */
    const float f0 = rk0 * (has_g ? __expf(g_last - g0) : 1.f);
    const float f1 = rk1 * (has_g ? __expf(g_last - g1) : 1.f);
#pragma unroll
    for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        int i = hf ? i1 : i0;
        int col = col0 + 8 * nt + 2 * t4;
        float2 uu = gdn_unpack2<IS_F16>(*(const uint32_t *)(Us + i * BVP + col));
        float v0 = uu.x - acc_v[nt][2 * hf], v1 = uu.y - acc_v[nt][2 * hf + 1];
        uint32_t packed = gdn_pack2<IS_F16>(v0, v1);
        if (p.v_new != NULL && i < L)
          *(uint32_t *)((elem *)p.v_new + (int64_t)(t0 + i) * p.vn_st + (int64_t)head * p.vn_sh + vb * BV + col) = packed;
        if (O_MODE) *(uint32_t *)(Vo + i * BVP + col) = packed;
        float f = hf ? f1 : f0;
        *(uint32_t *)(Vs + i * BVP + col) = gdn_pack2<IS_F16>(v0 * f, v1 * f);
      }
    __syncthreads(); /* (B) Vo, Vs and rk_s complete */

    if (O_MODE) {
      /* causal intra-chunk matrix M[i][j], j <= i */
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int i = (e >> 1) ? i1 : i0;
          int j = 8 * nt + 2 * t4 + (e & 1);
          float m = 0.f;
          if (j <= i && i < L) {
            if (p.aqk != NULL) {
              m = p.aqk[(int64_t)(t0 + i) * p.aqk_st + (int64_t)head * p.aqk_sh + j];
            } else {
              float rq = (e >> 1) ? rq1 : rq0;
              float rkj = p.l2norm ? rk_s[j] : 1.f;
              float gi = (e >> 1) ? g1 : g0;
              m = acc_m[nt][e] * p.scale * rq * rkj * (has_g ? __expf(gi - Gs[j]) : 1.f);
            }
          }
          acc_m[nt][e] = m;
        }
      const float o0 = p.scale * rq0 * (has_g ? __expf(g0) : 1.f);
      const float o1 = p.scale * rq1 * (has_g ? __expf(g1) : 1.f);
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt) {
        acc_o[nt][0] *= o0; acc_o[nt][1] *= o0;
        acc_o[nt][2] *= o1; acc_o[nt][3] *= o1;
      }
#pragma unroll
      for (int kb = 0; kb < 4; ++kb) {
        if (kb <= wr) {
          uint32_t a[4];
          a[0] = gdn_pack2<IS_F16>(acc_m[2 * kb][0], acc_m[2 * kb][1]);
          a[1] = gdn_pack2<IS_F16>(acc_m[2 * kb][2], acc_m[2 * kb][3]);
          a[2] = gdn_pack2<IS_F16>(acc_m[2 * kb + 1][0], acc_m[2 * kb + 1][1]);
          a[3] = gdn_pack2<IS_F16>(acc_m[2 * kb + 1][2], acc_m[2 * kb + 1][3]);
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
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          int i = hf ? i1 : i0;
          if (i < L) {
            int64_t off = (int64_t)(t0 + i) * p.o_st + (int64_t)head * p.o_sh + vcol0 + 8 * nt + 2 * t4;
            *(uint32_t *)((elem *)p.o + off) = gdn_pack2<IS_F16>(acc_o[nt][2 * hf], acc_o[nt][2 * hf + 1]);
          }
        }
    }

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
  }
  gdn_cp_async_wait<0>();

  /* ---- final state back to the pool, in place */
  if (pool != NULL) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NTW; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int kk = srow0 + 16 * mt + g8 + ((e >> 1) << 3);
          int v = vcol0 + 8 * nt + 2 * t4 + (e & 1);
          pool[(int64_t)v * p.s_v + (int64_t)kk * p.s_k] = acc_s[mt][nt][e];
        }
  }
}

#endif
