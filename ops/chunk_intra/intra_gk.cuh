/* Intra-chunk kernel, per-key-gate path (gk; scalar g folded in), fp32 on CUDA cores.
 * The per-key decay e^{G_i[k] - G_j[k]} does not factor into a matrix product without
 * overflow risk, so the pair sums are computed directly (always exponents <= 0).
 * Outputs: A_inv (optional), w, u, and for the fused scan: kg = k e^{G_last - G},
 * qg = q e^G and aqk = scale * causal(sum_k q_i k_j e^{G_i - G_j}). Rows past the
 * sequence end take the last valid G so every exponent stays <= 0. */
#ifndef GDN_INTRA_GK_CUH
#define GDN_INTRA_GK_CUH

#include "core/mma.cuh"
#include "ops/chunk_intra/intra_params.h"
#include "ops/chunk_intra/intra_solve.cuh"

template <int IS_F16>
__global__ void __launch_bounds__(256) gdn_intra_gk_kernel(const gdn_intra_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  extern __shared__ __align__(16) unsigned char gdn_smem[];
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x, head = blockIdx.y;
  if (hdr->status != 0 || c >= hdr->num_chunks) return;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int L = min(GDN_CHUNK, p.cu_seqlens[seq + 1] - t0);
  const int K = p.K, V = p.V, tid = threadIdx.x, NT = blockDim.x;

  float *G = (float *)gdn_smem;           /* [64][K] total per-key log decay, cumulative */
  elem *Ks = (elem *)(G + 64 * K);         /* [64][K] */
  elem *Qs = Ks + 64 * K;                  /* [64][K] */
  float *A = (float *)(Qs + 64 * K);
  float *T = A + 64 * GDN_AP;
  float *P = T + 64 * GDN_AP;
  float *beta_s = P + 3 * 16 * 17;
  float *rk_s = beta_s + 64, *rq_s = rk_s + 64;

  const elem *kb = (const elem *)p.k + (int64_t)(head / p.group_k) * p.k_sh;
  const elem *qb = p.q ? (const elem *)p.q + (int64_t)(head / p.group_q) * p.q_sh : NULL;
  for (int idx = tid; idx < 64 * K; idx += NT) {
    int r = idx / K, kk = idx % K;
    int rs = min(r, L - 1); /* rows past the end repeat the last G */
    int64_t t = t0 + rs;
    float gv = (p.gk ? p.gk[t * p.gk_st + (int64_t)head * p.gk_sh + kk] : 0.f) +
               (p.g ? p.g[t * p.g_st + (int64_t)head * p.g_sh] : 0.f);
    G[idx] = gv;
    Ks[idx] = r < L ? kb[t * p.k_st + kk] : gdn_from_float<IS_F16>(0.f);
    Qs[idx] = (qb && r < L) ? qb[t * p.q_st + kk] : gdn_from_float<IS_F16>(0.f);
  }
  if (tid < 64) beta_s[tid] = tid < L ? p.beta[(int64_t)(t0 + tid) * p.beta_st + (int64_t)head * p.beta_sh] : 0.f;
  __syncthreads();
  if (tid < 64) {
    float sk = 0.f, sq = 0.f;
    for (int kk = 0; kk < K; ++kk) {
      float x = gdn_to_float<IS_F16>(Ks[tid * K + kk]), y = gdn_to_float<IS_F16>(Qs[tid * K + kk]);
      sk += x * x;
      sq += y * y;
    }
    rk_s[tid] = p.l2norm ? rsqrtf(sk + 1e-6f) : 1.f;
    rq_s[tid] = p.l2norm ? rsqrtf(sq + 1e-6f) : 1.f;
  }
  __syncthreads();

  /* ---- A (strict lower) and aqk (causal, incl. diagonal) by direct pair sums */
  for (int idx = tid; idx < 64 * 64; idx += NT) {
    int i = idx >> 6, j = idx & 63;
    float a = 0.f, m = 0.f;
    if (j <= i && i < L && !p.load_a) {
      const float *gi = G + i * K, *gj = G + j * K;
      const elem *ki = Ks + i * K, *kj = Ks + j * K, *qi = Qs + i * K;
      for (int kk = 0; kk < K; ++kk) {
        float d = __expf(gi[kk] - gj[kk]) * gdn_to_float<IS_F16>(kj[kk]);
        a += gdn_to_float<IS_F16>(ki[kk]) * d;
        m += gdn_to_float<IS_F16>(qi[kk]) * d;
      }
      a = j < i ? a * beta_s[i] * rk_s[i] * rk_s[j] : 0.f;
      m *= p.scale * rq_s[i] * rk_s[j];
    }
    A[i * GDN_AP + j] = a;
    if (p.aqk && i < L)
      ((elem *)p.aqk)[(int64_t)(t0 + i) * p.aqk_st + (int64_t)head * p.aqk_sh + j] = gdn_from_float<IS_F16>(m);
  }
  __syncthreads();
  if (p.load_a) {
    for (int idx = tid; idx < 64 * 64; idx += NT) {
      int i = idx >> 6, j = idx & 63;
      float t = (i == j) ? 1.f : 0.f;
      if (i < L && j <= i) {
        int64_t off = (int64_t)(t0 + i) * p.a_st + (int64_t)head * p.a_sh + j;
        t = p.a_f32 ? ((const float *)p.a_inv)[off] : gdn_to_float<IS_F16>(((const elem *)p.a_inv)[off]);
      }
      T[i * GDN_AP + j] = t;
    }
    __syncthreads();
  } else {
    gdn_solve_unit_lower64(A, T, P);
  }
  if (p.store_a) {
    for (int idx = tid; idx < L * 64; idx += NT) {
      int i = idx >> 6, j = idx & 63;
      float t = j <= i ? T[i * GDN_AP + j] : 0.f;
      int64_t off = (int64_t)(t0 + i) * p.a_st + (int64_t)head * p.a_sh + j;
      if (p.a_f32) ((float *)p.a_inv)[off] = t;
      else ((elem *)p.a_inv)[off] = gdn_from_float<IS_F16>(t);
    }
  }

  /* ---- gated key / query for the fused scan */
  if (p.kg || p.qg) {
    for (int idx = tid; idx < L * K; idx += NT) {
      int r = idx / K, kk = idx % K;
      int64_t t = t0 + r;
      if (p.kg)
        ((elem *)p.kg)[t * p.kg_st + (int64_t)head * p.kg_sh + kk] = gdn_from_float<IS_F16>(
            gdn_to_float<IS_F16>(Ks[idx]) * rk_s[r] * __expf(G[(L - 1) * K + kk] - G[idx]));
      if (p.qg)
        ((elem *)p.qg)[t * p.qg_st + (int64_t)head * p.qg_sh + kk] =
            gdn_from_float<IS_F16>(gdn_to_float<IS_F16>(Qs[idx]) * rq_s[r] * __expf(G[idx]));
    }
  }
  if (p.w == NULL) return;
  __syncthreads();
  /* ---- E = beta rk k e^G (in place of G), then w = T E and u = T (beta v) */
  for (int idx = tid; idx < 64 * K; idx += NT) {
    int r = idx / K;
    G[idx] = beta_s[r] * rk_s[r] * gdn_to_float<IS_F16>(Ks[idx]) * __expf(G[idx]);
  }
  __syncthreads();
  for (int idx = tid; idx < L * K; idx += NT) {
    int i = idx / K, kk = idx % K;
    float s = 0.f;
    for (int j = 0; j <= i; ++j) s += T[i * GDN_AP + j] * G[j * K + kk];
    ((elem *)p.w)[(int64_t)(t0 + i) * p.w_st + (int64_t)head * p.w_sh + kk] = gdn_from_float<IS_F16>(s);
  }
  const elem *vb = (const elem *)p.v + (int64_t)head * p.v_sh;
  for (int idx = tid; idx < L * V; idx += NT) {
    int i = idx / V, vv = idx % V;
    float s = 0.f;
    for (int j = 0; j <= i; ++j)
      s += T[i * GDN_AP + j] * beta_s[j] * gdn_to_float<IS_F16>(vb[(int64_t)(t0 + j) * p.v_st + vv]);
    ((elem *)p.u)[(int64_t)(t0 + i) * p.u_st + (int64_t)head * p.u_sh + vv] = gdn_from_float<IS_F16>(s);
  }
}

#endif
