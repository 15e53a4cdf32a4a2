/* Intra-chunk kernel of the folded WY form (aqk, tu, qf, kf; no w / u). One CTA of 4
 * warps per (chunk, k head) serves the G value heads that share that q / k head (GVA; G = 1
 * too): q.k^T and k.k^T depend on q and k only, so one pass of mma over the tiles serves
 * every head and stays in registers. Per head, in fp32:
 *   e'_ij  = e^{g_i - g_j} rk_j = 2^{g_i log2e - h_j},  h_j = g_j log2e - log2 rk_j
 *   aqk_ij = causal_{j<=i}(scale rq_i e'_ij q_i.k_j)
 *   A_ij   = strict_lower(beta_i rk_i e'_ij k_i.k_j)
 *   Tu     = (I + A)^-1 diag(beta)                       (intra_solve_split.cuh)
 * one exponential per element for both products; rk_i = 1 / ||k_i|| from the diagonal of
 * k.k^T. Rows past the sequence end get g_i = -inf (all their terms 0, no e^{0 - g_j}
 * overflow) and are never stored. aqk and Tu leave through staging tiles in 16-byte rows.
 *
 * Shared memory: region 0 holds the k and q tiles for the products, then A (hi / lo), the
 * aqk staging tile and A's diagonal blocks in fp32; the Tu staging tile and the transposed
 * diagonal inverses stay beside it (gdn_intra_group_smem). */
#ifndef GDN_INTRA_GROUP_CUH
#define GDN_INTRA_GROUP_CUH

#include "ops/chunk_intra/intra_fast.cuh"
#include "ops/chunk_intra/intra_solve_split.cuh"

/* aqk (staged), A below the diagonal blocks (hi / lo) and A's diagonal blocks (fp32) of one
 * head from the shared products, for warp W (rows 16W..16W+15; compile-time, so the three
 * kinds of column block need no branch); gi, rq, rkb: this thread's rows' g_i log2e (-inf
 * past the end), scale rq_i and beta_i rk_i. Column blocks above the diagonal block hold
 * zeros in aqk and are not written in A. */
template <int W, int IS_F16>
__device__ __forceinline__ void gdn_intra_gate_w(const float (&aq)[8][4], const float (&ak)[8][4], const float *hc,
                                                 const float (&gi)[2], const float (&rq)[2], const float (&rkb)[2],
                                                 typename gdn_elem<IS_F16>::T *Qa, uint16_t *Ahi, uint16_t *Alo,
                                                 float *Ad) {
  const int lane = threadIdx.x & 31, g8 = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const int jb = nt >> 1, j = 8 * nt + 2 * t4;
    if (jb > W) {
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) *(uint32_t *)(Qa + (16 * W + g8 + 8 * hf) * GDN_TP + j) = 0u;
    } else {
      const float2 h = *(const float2 *)(hc + j);
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int il = g8 + 8 * hf, i = 16 * W + il;
        const float e0 = gdn_ex2_fast(gi[hf] - h.x), e1 = gdn_ex2_fast(gi[hf] - h.y);
        float q0 = aq[nt][2 * hf] * e0 * rq[hf], q1 = aq[nt][2 * hf + 1] * e1 * rq[hf];
        const float a0 = ak[nt][2 * hf] * e0 * rkb[hf], a1 = ak[nt][2 * hf + 1] * e1 * rkb[hf];
        if (jb == W) { /* the diagonal block: causal aqk (a select: e' may be inf above the diagonal
                        * under strong decay); A's strict lower part is all the solve reads, its
                        * upper part may hold inf / NaN */
          q0 = j <= i ? q0 : 0.f;
          q1 = j + 1 <= i ? q1 : 0.f;
          *(float2 *)(Ad + W * GDN_AD_BLOCK + il * GDN_AD_PITCH + (j - 16 * W)) = make_float2(a0, a1);
        } else {
          uint32_t hi, lo;
          gdn_split_bf16x2(a0, a1, hi, lo);
          *(uint32_t *)(Ahi + i * GDN_TP + j) = hi;
          *(uint32_t *)(Alo + i * GDN_TP + j) = lo;
        }
        *(uint32_t *)(Qa + i * GDN_TP + j) = gdn_pack2<IS_F16>(q0, q1);
      }
    }
  }
}
template <int IS_F16>
__device__ __forceinline__ void gdn_intra_gate(const float (&aq)[8][4], const float (&ak)[8][4], const float *hc,
                                               const float (&gi)[2], const float (&rq)[2], const float (&rkb)[2],
                                               typename gdn_elem<IS_F16>::T *Qa, uint16_t *Ahi, uint16_t *Alo,
                                               float *Ad) {
  switch (threadIdx.x >> 5) {
    case 0: gdn_intra_gate_w<0, IS_F16>(aq, ak, hc, gi, rq, rkb, Qa, Ahi, Alo, Ad); break;
    case 1: gdn_intra_gate_w<1, IS_F16>(aq, ak, hc, gi, rq, rkb, Qa, Ahi, Alo, Ad); break;
    case 2: gdn_intra_gate_w<2, IS_F16>(aq, ak, hc, gi, rq, rkb, Qa, Ahi, Alo, Ad); break;
    default: gdn_intra_gate_w<3, IS_F16>(aq, ak, hc, gi, rq, rkb, Qa, Ahi, Alo, Ad); break;
  }
}

/* rows < L of a 64-column 16-bit staging tile to global memory, 16 bytes a thread; threads
 * tid0.. of nthreads take part. */
template <typename elem>
__device__ __forceinline__ void gdn_intra_copy_out(const elem *tile, elem *out, int64_t out_st, int t0, int L, int tid0,
                                                   int nthreads) {
  for (int idx = (int)threadIdx.x - tid0; idx < L * 8; idx += nthreads) {
    const int r = idx >> 3, c = (idx & 7) * 8;
    *(uint4 *)(out + (int64_t)(t0 + r) * out_st + c) = *(const uint4 *)(tile + r * GDN_TP + c);
  }
}

template <int K, int IS_F16>
__global__ void __launch_bounds__(128, 4) gdn_intra_group_kernel(const gdn_intra_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int KP = K + 8;
  extern __shared__ __align__(16) unsigned char gdn_smem[];
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x, G = p.heads_per_cta, head0 = blockIdx.y * G;
  if (hdr->status != 0 || c >= hdr->num_chunks) return;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int L = min(GDN_CHUNK, p.cu_seqlens[seq + 1] - t0);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, t4 = lane & 3;

  unsigned char *R0 = gdn_smem;
  elem *Ks = (elem *)R0, *Qs = Ks + 64 * KP;                      /* products */
  uint16_t *Ahi = (uint16_t *)R0, *Alo = Ahi + 64 * GDN_TP;         /* then the solve's inputs */
  elem *Qa = (elem *)(Alo + 64 * GDN_TP);
  float *Ad = (float *)(Qa + 64 * GDN_TP);
  elem *Tus = (elem *)(R0 + gdn_intra_group_region0(K));
  uint16_t *Dth = (uint16_t *)(Tus + 64 * GDN_TP), *Dtl = Dth + 64 * GDN_DP;
  float *rq_s = (float *)(Dtl + 64 * GDN_DP), *rk_s = rq_s + 64;
  float *beta_s = rk_s + 64, *g_s = beta_s + 64 * G, *hc_s = g_s + 64 * G; /* [G][64] each */

  /* ---- loads (zero-filled past the sequence end) */
  const elem *kb = (const elem *)p.k + (int64_t)(head0 / p.group_k) * p.k_sh;
  const elem *qb = (const elem *)p.q + (int64_t)(head0 / p.group_q) * p.q_sh;
  for (int idx = tid; idx < 64 * (K / 8); idx += 128) {
    const int r = idx / (K / 8), cc = (idx % (K / 8)) * 8;
    const bool ok = r < L;
    const int64_t off = ok ? (int64_t)(t0 + r) : 0;
    gdn_cp_async16(Ks + r * KP + cc, kb + off * p.k_st + cc, ok ? 16 : 0);
    gdn_cp_async16(Qs + r * KP + cc, qb + off * p.q_st + cc, ok ? 16 : 0);
  }
  for (int idx = tid; idx < 64 * G; idx += 128) {
    const int hh = idx >> 6, r = idx & 63;
    const bool ok = r < L;
    const int64_t tr = ok ? (int64_t)(t0 + r) : 0, h = head0 + hh;
    gdn_cp_async4(beta_s + idx, p.beta + tr * p.beta_st + h * p.beta_sh, ok ? 4 : 0);
    if (p.g) gdn_cp_async4(g_s + idx, p.g + tr * p.g_st + h * p.g_sh, ok ? 4 : 0);
    else g_s[idx] = 0.f;
  }
  gdn_cp_async_commit();
  gdn_cp_async_wait<0>();
  __syncthreads();

  if (p.l2norm) gdn_intra_rnorm<K, IS_F16>(Qs, rq_s);
  else if (tid < 64) rq_s[tid] = 1.f;

  /* ---- the group's shared products, kept in registers for all its heads */
  float aq[8][4], ak[8][4];
  gdn_intra_qkT_kkT<K, IS_F16>(aq, ak, Qs, Ks);
  /* ||k_i||^2 is k.k^T's diagonal: lane (g, t = g / 2) holds rows 16w + g and 16w + g + 8 */
  if (t4 == (g8 >> 1)) {
    const int o = g8 & 1;
    float d0, d1; /* constant indices per case: an index by warp would put ak in local memory */
    switch (warp) {
      case 0: d0 = o ? ak[0][1] : ak[0][0]; d1 = o ? ak[1][3] : ak[1][2]; break;
      case 1: d0 = o ? ak[2][1] : ak[2][0]; d1 = o ? ak[3][3] : ak[3][2]; break;
      case 2: d0 = o ? ak[4][1] : ak[4][0]; d1 = o ? ak[5][3] : ak[5][2]; break;
      default: d0 = o ? ak[6][1] : ak[6][0]; d1 = o ? ak[7][3] : ak[7][2]; break;
    }
    rk_s[16 * warp + g8] = p.l2norm ? rsqrtf(d0 + 1e-6f) : 1.f;
    rk_s[16 * warp + g8 + 8] = p.l2norm ? rsqrtf(d1 + 1e-6f) : 1.f;
  }
  __syncthreads(); /* rq_s / rk_s complete; the q and k tiles are dead */

  for (int idx = tid; idx < 64 * G; idx += 128) hc_s[idx] = g_s[idx] * GDN_LOG2E - __log2f(rk_s[idx & 63]);
  if (tid < L) {
    for (int hh = 0; hh < G; ++hh) {
      const int64_t h = head0 + hh, t = t0 + tid;
      if (p.qf) p.qf[t * p.qf_st + h * p.qf_sh] = rq_s[tid];
      if (p.kf) p.kf[t * p.kf_st + h * p.kf_sh] = rk_s[tid];
    }
  }
  __syncthreads(); /* hc_s */

  for (int hh = 0; hh < G; ++hh) {
    const int64_t head = head0 + hh;
    const float *bs = beta_s + 64 * hh, *gs = g_s + 64 * hh;
    float gi[2], rq[2], rkb[2];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int i = 16 * warp + g8 + 8 * hf;
      gi[hf] = i < L ? gs[i] * GDN_LOG2E : -INFINITY;
      rq[hf] = p.scale * rq_s[i];
      rkb[hf] = bs[i] * rk_s[i];
    }
    /* the previous head's solve has read A and its aqk tile is out (barrier below / last one) */
    gdn_intra_gate<IS_F16>(aq, ak, hc_s + 64 * hh, gi, rq, rkb, Qa, Ahi, Alo, Ad);
    __syncthreads();
    if (warp < 2) {
      gdn_solve_split_diag<elem>(Ad, bs, Dth, Dtl, Tus);
    } else {
      /* zeros above the diagonal blocks of Tu, and aqk out */
      for (int idx = tid - 64; idx < 64 * 8; idx += 64) {
        const int r = idx >> 3, cc = idx & 7;
        if (cc >= 2 * ((r >> 4) + 1)) *(uint4 *)(Tus + r * GDN_TP + 8 * cc) = make_uint4(0u, 0u, 0u, 0u);
      }
      gdn_intra_copy_out<elem>(Qa, (elem *)p.aqk + head * p.aqk_sh, p.aqk_st, t0, L, 64, 64);
    }
    __syncthreads();
    gdn_solve_split_offdiag<IS_F16>(Ahi, Alo, Dth, Dtl, bs, Tus);
    __syncthreads();
    gdn_intra_copy_out<elem>(Tus, (elem *)p.tu + head * p.tu_sh, p.tu_st, t0, L, 0, 128);
  }
}

#endif
