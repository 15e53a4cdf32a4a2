/* Intra-chunk kernel for the folded WY form (aqk, tu, qf, kf; no w / u) with grouped
 * value heads: the G value heads that share one q / k head (GVA) share q.k^T and k.k^T,
 * which depend on q and k only. One CTA of 4 warps per (chunk, k head) loads q and k once,
 * runs both products once, and then per value head only applies that head's gate and
 * beta, solves, and stores aqk and Tu. Same math as intra_fast.cuh. */
#ifndef GDN_INTRA_GROUP_CUH
#define GDN_INTRA_GROUP_CUH

#include "ops/chunk_intra/intra_fast.cuh"

template <int K, int IS_F16>
__global__ void __launch_bounds__(128) gdn_intra_group_kernel(const gdn_intra_params p) {
  typedef typename gdn_elem<IS_F16>::T elem;
  constexpr int KP = K + 8;
  extern __shared__ __align__(16) unsigned char gdn_smem[];
  const gdn_batch_header *hdr = p.header;
  const int c = blockIdx.x, G = p.heads_per_cta, head0 = blockIdx.y * G;
  if (hdr->status != 0 || c >= hdr->num_chunks) return;
  const int seq = p.chunk_seq[c];
  const int t0 = p.cu_seqlens[seq] + GDN_CHUNK * (c - p.chunk_offsets[seq]);
  const int L = min(GDN_CHUNK, p.cu_seqlens[seq + 1] - t0);
  const int tid = threadIdx.x;

  /* region R holds the q tile, then A */
  elem *Ks = (elem *)gdn_smem;
  unsigned char *R = (unsigned char *)(Ks + 64 * KP);
  elem *Qs = (elem *)R;
  float *A = (float *)R;
  float *T = (float *)(R + gdn_intra_fast_region(K, 0));
  float *P = T + 64 * GDN_AP;
  float *rk_s = P + 3 * 16 * 17;
  float *rq_s = rk_s + 64;
  float *beta_s = rq_s + 64; /* [G][64] */
  float *g_s = beta_s + 64 * G; /* [G][64] */

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
  if (tid < 64) {
    const bool ok = tid < L;
    const int64_t tr = ok ? (int64_t)(t0 + tid) : 0;
    for (int hh = 0; hh < G; ++hh) {
      const int64_t h = head0 + hh;
      gdn_cp_async4(beta_s + 64 * hh + tid, p.beta + tr * p.beta_st + h * p.beta_sh, ok ? 4 : 0);
      if (p.g) gdn_cp_async4(g_s + 64 * hh + tid, p.g + tr * p.g_st + h * p.g_sh, ok ? 4 : 0);
      else g_s[64 * hh + tid] = 0.f;
    }
  }
  gdn_cp_async_commit();
  gdn_cp_async_wait<0>();
  __syncthreads();

  if (p.l2norm) {
    gdn_intra_rnorm<K, IS_F16>(Ks, rk_s);
    gdn_intra_rnorm<K, IS_F16>(Qs, rq_s);
  } else if (tid < 64) {
    rk_s[tid] = 1.f;
    rq_s[tid] = 1.f;
  }
  __syncthreads(); /* rq_s / rk_s from every warp */

  /* ---- the group's shared products, kept in registers for all its heads */
  float aq[8][4], ak[8][4];
  gdn_intra_qkT_kkT<K, IS_F16>(aq, ak, Qs, Ks);
  if (tid < L) {
    for (int hh = 0; hh < G; ++hh) {
      const int64_t h = head0 + hh, t = t0 + tid;
      if (p.qf) p.qf[t * p.qf_st + h * p.qf_sh] = rq_s[tid];
      if (p.kf) p.kf[t * p.kf_st + h * p.kf_sh] = rk_s[tid];
    }
  }
  __syncthreads(); /* the q tile is dead: A takes its place */

  for (int hh = 0; hh < G; ++hh) {
    const int64_t head = head0 + hh;
    const float *bs = beta_s + 64 * hh, *gs = g_s + 64 * hh;
    gdn_intra_store_aqk<IS_F16>(aq, rq_s, rk_s, gs, p.scale, (elem *)p.aqk + head * p.aqk_sh, p.aqk_st, t0, L);
    gdn_intra_write_a(ak, bs, rk_s, gs, A, L);
    __syncthreads(); /* A complete; the previous head's Tu store has read T */
    gdn_solve_unit_lower64(A, T, P);
    gdn_intra_store_tu<IS_F16>(T, bs, (elem *)p.tu + head * p.tu_sh, p.tu_st, t0, L);
  }
}

#endif
