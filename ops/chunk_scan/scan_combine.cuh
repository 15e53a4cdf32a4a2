/* The combine pass of the context-parallel scan: per (sequence, value head, 8 state
 * rows), walks the sequence's segments in order and turns each segment's end state
 * computed from zero (E_s) into the exact incoming state of the next one:
 *   S_1 = E_0 (the first segment started from the true initial state),
 *   S_{s+1} = S_s M_s + E_s   (rows of S^T; M_s^T rows are the transition's columns),
 * overwriting E_s in cp_x with S_s, where the main pass reads it. fp32 on CUDA cores: a
 * step is 8 x K x K multiply-adds per CTA, so the sequential chain over segments stays
 * short (about a microsecond a step at K = 128) while V / 8 CTAs per head fill the device. */
#ifndef GDN_SCAN_COMBINE_CUH
#define GDN_SCAN_COMBINE_CUH

#include "gdn/batch.h"

typedef struct gdn_scan_combine_params {
  const gdn_batch_header *header;
  const gdn_batch_segment *segments;
  const int32_t *seq_segments;
  float *cp_x; /* [max_segments][Hv][V + K][K] */
  int Hv, V;
} gdn_scan_combine_params;

#define GDN_COMBINE_ROWS 8
#define GDN_COMBINE_THREADS 256

template <int K>
__global__ void __launch_bounds__(GDN_COMBINE_THREADS) gdn_scan_combine_kernel(const gdn_scan_combine_params p) {
  constexpr int R = GDN_COMBINE_ROWS * K / GDN_COMBINE_THREADS; /* rows per thread */
  constexpr int RG = GDN_COMBINE_THREADS / K;                    /* row groups */
  __shared__ float S[GDN_COMBINE_ROWS][K];
  const gdn_batch_header *hdr = p.header;
  if (hdr->status != 0) return;
  const int nrb = p.V / GDN_COMBINE_ROWS;
  const int rb = blockIdx.x % nrb, head = (blockIdx.x / nrb) % p.Hv, seq = blockIdx.x / (nrb * p.Hv);
  if (seq >= hdr->num_seqs) return;
  const int s0 = p.seq_segments[seq], s1 = p.seq_segments[seq + 1];
  if (s1 - s0 < 2) return;
  const int k = threadIdx.x % K, rg = threadIdx.x / K; /* this thread: key k, rows rg + RG r */
  const int64_t head_stride = (int64_t)(p.V + K) * K, seg_stride = (int64_t)p.Hv * head_stride;
  float *base = p.cp_x + (int64_t)head * head_stride + (int64_t)(rb * GDN_COMBINE_ROWS) * K;
  /* S = E_{s0} */
  {
    const float *e = base + (int64_t)s0 * seg_stride;
#pragma unroll
    for (int r = 0; r < R; ++r) S[rg + RG * r][k] = e[(int64_t)(rg + RG * r) * K + k];
  }
  __syncthreads();
  for (int s = s0 + 1; s < s1; ++s) {
    float *x = base + (int64_t)s * seg_stride;
    float e[R], acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      e[r] = x[(int64_t)(rg + RG * r) * K + k];
      x[(int64_t)(rg + RG * r) * K + k] = S[rg + RG * r][k]; /* S_s, read by the main pass */
      acc[r] = 0.f;
    }
    if (s == s1 - 1) break;
    /* M_s^T rows sit after the V state rows: Mt[c][k] = M[k][c] */
    const float *mt = p.cp_x + (int64_t)s * seg_stride + (int64_t)head * head_stride + (int64_t)p.V * K + k;
#pragma unroll 4
    for (int c = 0; c < K; ++c) {
      const float m = mt[(int64_t)c * K];
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] = fmaf(S[rg + RG * r][c], m, acc[r]);
    }
    __syncthreads(); /* every thread is done reading S */
#pragma unroll
    for (int r = 0; r < R; ++r) S[rg + RG * r][k] = acc[r] + e[r];
    __syncthreads();
  }
}

#endif
