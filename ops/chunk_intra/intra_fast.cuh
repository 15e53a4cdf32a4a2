/* Intra-chunk kernel, tensor-core path (scalar gate or none). One CTA of 4 warps per
 * (chunk, value head):
 *   A    = strict_lower(beta_i rk_i rk_j e^{g_i - g_j} k_i . k_j)      (mma, fp32)
 *   T    = (I + A)^-1                                                   (fp32 blocks)
 *   w    = (T * beta e^g rk) k,   u = (T * beta) v                      (mma)
 * where rk = 1 / ||k|| when l2norm, else 1. Optionally stores T (A_inv) or, in the
 * WY-only mode, loads it instead of computing it. For the fused scan it also emits
 *   aqk  = causal_{j<=i}(scale rq_i rk_j e^{g_i - g_j} q_i . k_j)   (16-bit, mma)
 * and the row factors rq, rk, so the sequential scan never touches q.k. Rows past
 * the sequence end are zero-filled and never stored. For chunk_scan_o's folded WY form
 * it stores Tu = T diag(beta) instead of (or besides) w and u. */
#ifndef GDN_INTRA_FAST_CUH
#define GDN_INTRA_FAST_CUH

#include "core/mma.cuh"
#include "ops/chunk_intra/intra_params.h"
#include "ops/chunk_intra/intra_solve.cuh"

/* out[rows 16*warp.., cols n0..n0+63] = Tm (16-bit, pitch 72) x B (16-bit [64 tokens][ldb]),
 * stored to global rows < L. Only token blocks <= warp contribute (T is lower triangular). */
template <int IS_F16>
__device__ __forceinline__ void gdn_intra_tmul_store(const typename gdn_elem<IS_F16>::T *Tm,
                                                     const typename gdn_elem<IS_F16>::T *B, int ldb, int ncols,
                                                     typename gdn_elem<IS_F16>::T *out, int64_t out_st, int t0,
                                                     int L) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g8 = lane >> 2, t4 = lane & 3;
  for (int n0 = 0; n0 < ncols; n0 += 64) {
    float acc[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
#pragma unroll
    for (int kb = 0; kb < 4; ++kb) {
      if (kb > warp) break;
      uint32_t a[4];
      gdn_load_a(a, Tm, 72, 16 * warp, 16 * kb);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        if (n0 + 16 * np < ncols) {
          uint32_t b[4];
          gdn_load_b_kn(b, B, ldb, 16 * kb, n0 + 16 * np);
          gdn_mma<IS_F16>(acc[2 * np], a, b[0], b[1]);
          gdn_mma<IS_F16>(acc[2 * np + 1], a, b[2], b[3]);
        }
      }
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        int i = 16 * warp + g8 + 8 * hf, col = n0 + 8 * nt + 2 * t4;
        if (i < L && col < ncols)
          *(uint32_t *)(out + (int64_t)(t0 + i) * out_st + col) = gdn_pack2<IS_F16>(acc[nt][2 * hf], acc[nt][2 * hf + 1]);
      }
  }
}

/* 1 / sqrt(sum x^2 + eps) of rows 16*warp.. of a tile (two lanes per row) into out[]. */
template <int K, int IS_F16>
__device__ __forceinline__ void gdn_intra_rnorm(const typename gdn_elem<IS_F16>::T *tile, float *out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const uint4 *row = (const uint4 *)(tile + (16 * warp + (lane >> 1)) * (K + 8));
  float acc = 0.f;
#pragma unroll
  for (int vv = 0; vv < K / 16; ++vv) {
    uint4 x = row[2 * vv + (lane & 1)];
    uint32_t wd[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float2 f = gdn_unpack2<IS_F16>(wd[j]);
      acc += f.x * f.x + f.y * f.y;
    }
  }
  acc += __shfl_xor_sync(0xffffffffu, acc, 1);
  if ((lane & 1) == 0) out[16 * warp + (lane >> 1)] = rsqrtf(acc + 1e-6f);
}

/* acc[8][4] = X[rows 16*warp..] . Ks^T, causal column blocks only (jp <= warp). */
template <int K, int IS_F16>
__device__ __forceinline__ void gdn_intra_xkT(float acc[8][4], const typename gdn_elem<IS_F16>::T *X,
                                              const typename gdn_elem<IS_F16>::T *Ks) {
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t a[4];
    gdn_load_a(a, X, K + 8, 16 * warp, 16 * kk);
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      if (jp <= warp) {
        uint32_t b[4];
        gdn_load_b_nk(b, Ks, K + 8, 16 * kk, 16 * jp);
        gdn_mma<IS_F16>(acc[2 * jp], a, b[0], b[1]);
        gdn_mma<IS_F16>(acc[2 * jp + 1], a, b[2], b[3]);
      }
    }
  }
}

/* aq = Q[rows 16*warp..] . Ks^T and ak = Ks[rows..] . Ks^T in one pass over k's B
 * fragments (each loaded once for both), causal column blocks only. */
template <int K, int IS_F16>
__device__ __forceinline__ void gdn_intra_qkT_kkT(float aq[8][4], float ak[8][4], const typename gdn_elem<IS_F16>::T *Qt,
                                                  const typename gdn_elem<IS_F16>::T *Ks) {
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) aq[nt][e] = ak[nt][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t a0[4], a1[4];
    gdn_load_a(a0, Qt, K + 8, 16 * warp, 16 * kk);
    gdn_load_a(a1, Ks, K + 8, 16 * warp, 16 * kk);
#pragma unroll
    for (int jp = 0; jp < 4; ++jp) {
      if (jp <= warp) {
        uint32_t b[4];
        gdn_load_b_nk(b, Ks, K + 8, 16 * kk, 16 * jp);
        gdn_mma<IS_F16>(aq[2 * jp], a0, b[0], b[1]);
        gdn_mma<IS_F16>(aq[2 * jp + 1], a0, b[2], b[3]);
        gdn_mma<IS_F16>(ak[2 * jp], a1, b[0], b[1]);
        gdn_mma<IS_F16>(ak[2 * jp + 1], a1, b[2], b[3]);
      }
    }
  }
}

/* Stores this thread's aqk elements (rows 16*warp.. with i < L, all 64 columns):
 * causal(scale rq_i rk_j e^{g_i - g_j} aq_ij). `out` points at the head's column 0 of row 0. */
template <int IS_F16>
__device__ __forceinline__ void gdn_intra_store_aqk(const float (&aq)[8][4], const float *rq, const float *rk,
                                                    const float *g, float scale, typename gdn_elem<IS_F16>::T *out,
                                                    int64_t out_st, int t0, int L) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g8 = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int i = 16 * warp + g8 + 8 * hf;
    if (i >= L) continue;
    const float fi = scale * rq[i];
    typename gdn_elem<IS_F16>::T *dst = out + (int64_t)(t0 + i) * out_st + 2 * t4;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int j = 8 * nt + 2 * t4;
      const float m0 = j <= i ? aq[nt][2 * hf] * fi * rk[j] * __expf(g[i] - g[j]) : 0.f;
      const float m1 = j + 1 <= i ? aq[nt][2 * hf + 1] * fi * rk[j + 1] * __expf(g[i] - g[j + 1]) : 0.f;
      *(uint32_t *)(dst + 8 * nt) = gdn_pack2<IS_F16>(m0, m1);
    }
  }
}

/* Writes this thread's elements of A = strict_lower(beta_i rk_i rk_j e^{g_i - g_j} ak_ij)
 * (fp32, pitch GDN_AP) from the k.k^T accumulators; rows past the end are zero (skipping
 * them also avoids e^{0 - g_j} overflow). */
__device__ __forceinline__ void gdn_intra_write_a(const float (&ak)[8][4], const float *beta, const float *rk,
                                                  const float *g, float *A, int L) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g8 = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = 16 * warp + g8 + ((e >> 1) << 3), j = 8 * nt + 2 * t4 + (e & 1);
      float v = 0.f;
      if (j < i && i < L) v = ak[nt][e] * beta[i] * rk[i] * rk[j] * __expf(g[i] - g[j]);
      A[i * GDN_AP + j] = v;
    }
}

/* Stores Tu = T diag(beta) rows < L (16-bit, full 64 columns, zeros above the diagonal);
 * `out` points at the head's column 0 of row 0. */
template <int IS_F16>
__device__ __forceinline__ void gdn_intra_store_tu(const float *T, const float *beta, typename gdn_elem<IS_F16>::T *out,
                                                   int64_t out_st, int t0, int L) {
  for (int idx = threadIdx.x; idx < L * 32; idx += blockDim.x) {
    const int i = idx >> 5, j = (idx & 31) * 2;
    const float ta = j <= i ? T[i * GDN_AP + j] * beta[j] : 0.f;
    const float tb = j + 1 <= i ? T[i * GDN_AP + j + 1] * beta[j + 1] : 0.f;
    *(uint32_t *)(out + (int64_t)(t0 + i) * out_st + j) = gdn_pack2<IS_F16>(ta, tb);
  }
}

template <int K, int IS_F16>
__global__ void __launch_bounds__(128) gdn_intra_fast_kernel(const gdn_intra_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int KP = K + 8;
  extern __shared__ __align__(16) unsigned char gdn_smem[];
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x, head = blockIdx.y;
  if (hdr->status != 0 || c >= hdr->num_chunks) return;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int L = min(GDN_CHUNK, p.cu_seqlens[seq + 1] - t0);
  const int V = p.V, VP = gdn_intra_v_pitch(V);
  const int tid = threadIdx.x;

  /* region R holds, in turn: the q tile (aqk), A (solve input), then Tw / Tu */
  elem *Ks = (elem *)gdn_smem;
  elem *Vt = Ks + 64 * KP;
  unsigned char *R = (unsigned char *)(Vt + 64 * VP);
  elem *Qs = (elem *)R;
  float *A = (float *)R;
  elem *Tw = (elem *)R;
  elem *Tu = Tw + 64 * 72;
  float *T = (float *)(R + gdn_intra_fast_region(K, V));
  float *P = T + 64 * GDN_AP;
  float *beta_s = P + 3 * 16 * 17;
  float *g_s = beta_s + 64;
  float *rk_s = g_s + 64;
  float *rq_s = rk_s + 64;

  /* ---- loads (zero-filled past the sequence end) */
  const bool need_wu = p.w != NULL;
  const elem *kb = (const elem *)p.k + (int64_t)(head / p.group_k) * p.k_sh;
  for (int idx = tid; idx < 64 * (K / 8); idx += 128) {
    int r = idx / (K / 8), cc = (idx % (K / 8)) * 8;
    bool ok = r < L;
    gdn_cp_async16(Ks + r * KP + cc, kb + (ok ? (int64_t)(t0 + r) * p.k_st : 0) + cc, ok ? 16 : 0);
  }
  if (p.aqk) {
    const elem *qb = (const elem *)p.q + (int64_t)(head / p.group_q) * p.q_sh;
    for (int idx = tid; idx < 64 * (K / 8); idx += 128) {
      int r = idx / (K / 8), cc = (idx % (K / 8)) * 8;
      bool ok = r < L;
      gdn_cp_async16(Qs + r * KP + cc, qb + (ok ? (int64_t)(t0 + r) * p.q_st : 0) + cc, ok ? 16 : 0);
    }
  }
  if (need_wu) {
    const elem *vb = (const elem *)p.v + (int64_t)head * p.v_sh;
    for (int idx = tid; idx < 64 * (V / 8); idx += 128) {
      int r = idx / (V / 8), cc = (idx % (V / 8)) * 8;
      bool ok = r < L;
      gdn_cp_async16(Vt + r * VP + cc, vb + (ok ? (int64_t)(t0 + r) * p.v_st : 0) + cc, ok ? 16 : 0);
    }
  }
  if (tid < 64) {
    bool ok = tid < L;
    int64_t tr = ok ? (int64_t)(t0 + tid) : 0;
    gdn_cp_async4(beta_s + tid, p.beta + tr * p.beta_st + (int64_t)head * p.beta_sh, ok ? 4 : 0);
    if (p.g) gdn_cp_async4(g_s + tid, p.g + tr * p.g_st + (int64_t)head * p.g_sh, ok ? 4 : 0);
    else g_s[tid] = 0.f;
  }
  gdn_cp_async_commit();
  gdn_cp_async_wait<0>();
  __syncthreads();

  if (p.l2norm) {
    gdn_intra_rnorm<K, IS_F16>(Ks, rk_s);
    if (p.aqk) gdn_intra_rnorm<K, IS_F16>(Qs, rq_s);
  } else if (tid < 64) {
    rk_s[tid] = 1.f;
    rq_s[tid] = 1.f;
  }

  if (p.load_a) {
    /* WY-only mode: T comes from a previous kkt_solve */
    for (int idx = tid; idx < 64 * 64; idx += 128) {
      int i = idx >> 6, j = idx & 63;
      float t = 0.f;
      if (i < L && j <= i) {
        int64_t off = (int64_t)(t0 + i) * p.a_st + (int64_t)head * p.a_sh + j;
        t = p.a_f32 ? ((const float *)p.a_inv)[off] : gdn_to_float<IS_F16>(((const elem *)p.a_inv)[off]);
      } else if (i == j) {
        t = 1.f;
      }
      T[i * GDN_AP + j] = t;
    }
    __syncthreads();
  } else {
    float acc[8][4];
    __syncthreads(); /* rq_s / rk_s from every warp */
    if (p.aqk) {
      /* aqk = causal(scale rq_i rk_j e^{g_i - g_j} q_i . k_j); full 64-column rows. k k^T
       * comes out of the same pass (into acc) */
      float aq[8][4];
      gdn_intra_qkT_kkT<K, IS_F16>(aq, acc, Qs, Ks);
      gdn_intra_store_aqk<IS_F16>(aq, rq_s, rk_s, g_s, p.scale, (elem *)p.aqk + (int64_t)head * p.aqk_sh, p.aqk_st, t0,
                                  L);
      __syncthreads(); /* the q tile is dead: A takes its place */
    } else {
      /* ---- A = k k^T on tensor cores, rows 16*warp.., causal column blocks only */
      gdn_intra_xkT<K, IS_F16>(acc, Ks, Ks);
    }
    gdn_intra_write_a(acc, beta_s, rk_s, g_s, A, L);
    if (p.qf && tid < L) p.qf[(int64_t)(t0 + tid) * p.qf_st + (int64_t)head * p.qf_sh] = rq_s[tid];
    if (p.kf && tid < L) p.kf[(int64_t)(t0 + tid) * p.kf_st + (int64_t)head * p.kf_sh] = rk_s[tid];
    __syncthreads();
    gdn_solve_unit_lower64(A, T, P);
  }

  if (p.store_a) {
    for (int idx = tid; idx < L * 64; idx += 128) {
      int i = idx >> 6, j = idx & 63;
      float t = j <= i ? T[i * GDN_AP + j] : 0.f;
      int64_t off = (int64_t)(t0 + i) * p.a_st + (int64_t)head * p.a_sh + j;
      if (p.a_f32) ((float *)p.a_inv)[off] = t;
      else ((elem *)p.a_inv)[off] = gdn_from_float<IS_F16>(t);
    }
  }
  if (p.tu) gdn_intra_store_tu<IS_F16>(T, beta_s, (elem *)p.tu + (int64_t)head * p.tu_sh, p.tu_st, t0, L);
  if (!need_wu) return;

  /* ---- fold the column scalings into T, round to 16-bit for the products */
  float *cw = P, *cu = P + 64; /* the solve's scratch is free again */
  if (tid < 64) {
    cu[tid] = beta_s[tid];
    cw[tid] = beta_s[tid] * rk_s[tid] * __expf(g_s[tid]);
  }
  __syncthreads();
  for (int idx = tid; idx < 64 * 32; idx += 128) {
    const int i = idx >> 5, j = (idx & 31) * 2;
    const float ta = j <= i ? T[i * GDN_AP + j] : 0.f, tb = j + 1 <= i ? T[i * GDN_AP + j + 1] : 0.f;
    *(uint32_t *)(Tw + i * 72 + j) = gdn_pack2<IS_F16>(ta * cw[j], tb * cw[j + 1]);
    *(uint32_t *)(Tu + i * 72 + j) = gdn_pack2<IS_F16>(ta * cu[j], tb * cu[j + 1]);
  }
  __syncthreads();
  gdn_intra_tmul_store<IS_F16>(Tw, Ks, KP, K, (elem *)p.w + (int64_t)head * p.w_sh, p.w_st, t0, L);
  gdn_intra_tmul_store<IS_F16>(Tu, Vt, VP, V, (elem *)p.u + (int64_t)head * p.u_sh, p.u_st, t0, L);
}

#endif
