/* The combine pass of the context-parallel scan: per (sequence, value head, 8 state rows),
 * walks the sequence's segments in order and turns each segment's end state computed from
 * zero (E_s) into the exact incoming state of the next one:
 *   S_1 = E_0 (the first segment started from the true initial state),
 *   S_{s+1} = S_s M_s + E_s   (rows of S^T; M_s^T rows are the transition's columns),
 * overwriting E_s in cp_x with S_s, where the main pass reads it. fp32 on CUDA cores.
 *
 * The chain is sequential and short of work (8 x K x K multiply-adds a step per CTA), so
 * latency and L2 traffic count: the M_s^T rows stream through an 8-deep ring of 16-row
 * shared-memory tiles by cp.async, prefetched across segment boundaries (M_s does not depend
 * on S), and V / 8 CTAs per head share the steps (each reads all of M_s: fewer rows per CTA
 * would multiply that traffic; measured at 4 rows and a 4-deep ring: 3.9 us a step at
 * K = 128 on H200). One thread per key column k. */
#ifndef GDN_SCAN_COMBINE_CUH
#define GDN_SCAN_COMBINE_CUH

#include "core/mma.cuh"
#include "gdn/batch.h"

typedef struct gdn_scan_combine_params {
  const gdn_batch_header *header;
  const gdn_batch_segment *segments;
  const int32_t *seq_segments;
  float *cp_x; /* [max_segments][Hv][V + K][K] */
  int Hv, V;
} gdn_scan_combine_params;

#define GDN_COMBINE_ROWS 8
#define GDN_COMBINE_TILE 16 /* M^T rows per staged tile */
#define GDN_COMBINE_RING 8

static inline size_t gdn_scan_combine_smem(int K) {
  return (size_t)GDN_COMBINE_RING * GDN_COMBINE_TILE * (size_t)K * 4u + (size_t)GDN_COMBINE_ROWS * (size_t)K * 4u;
}

template <int K>
__global__ void __launch_bounds__(K) gdn_scan_combine_kernel(const gdn_scan_combine_params p) {
  constexpr int R = GDN_COMBINE_ROWS, TILE = GDN_COMBINE_TILE, TPS = K / TILE; /* tiles per step */
  extern __shared__ __align__(16) unsigned char gdn_smem[];
  float *ring = (float *)gdn_smem;              /* [RING][TILE][K] */
  float *S = ring + GDN_COMBINE_RING * TILE * K; /* [R][K] */
  const gdn_batch_header *hdr = p.header;
  if (hdr->status != 0 || hdr->num_segments <= hdr->num_seqs) return; /* nothing was cut */
  const int nrb = p.V / R;
  const int rb = blockIdx.x % nrb, head = (blockIdx.x / nrb) % p.Hv, seq = blockIdx.x / (nrb * p.Hv);
  if (seq >= hdr->num_seqs) return;
  const int s0 = p.seq_segments[seq], s1 = p.seq_segments[seq + 1];
  if (s1 - s0 < 2) return;
  const int k = threadIdx.x;
  const int64_t head_stride = (int64_t)(p.V + K) * K, seg_stride = (int64_t)p.Hv * head_stride;
  float *base = p.cp_x + (int64_t)head * head_stride + (int64_t)(rb * R) * K;
  const float *mt0 = p.cp_x + (int64_t)head * head_stride + (int64_t)p.V * K; /* M^T rows of segment 0 */

  /* tile t of the chain: step s = s0 + 1 + t / TPS, rows 16 (t % TPS) .. of M_s^T */
  const int steps = s1 - s0 - 2, ntiles = steps * TPS;
  auto load_tile = [&](int t) {
    if (t < ntiles) {
      const float *src = mt0 + (int64_t)(s0 + 1 + t / TPS) * seg_stride + (int64_t)(TILE * (t % TPS)) * K;
      float *dst = ring + (t % GDN_COMBINE_RING) * TILE * K;
      for (int i = threadIdx.x; i < TILE * K / 4; i += K) gdn_cp_async16(dst + 4 * i, src + 4 * i, 16);
    }
    gdn_cp_async_commit();
  };
#pragma unroll
  for (int t = 0; t < GDN_COMBINE_RING - 1; ++t) load_tile(t);

  /* S = E_{s0} */
#pragma unroll
  for (int r = 0; r < R; ++r) S[r * K + k] = base[(int64_t)s0 * seg_stride + (int64_t)r * K + k];
  __syncthreads();
  int t = 0;
  for (int s = s0 + 1; s < s1; ++s) {
    float *x = base + (int64_t)s * seg_stride;
    const bool last = s == s1 - 1; /* its E was never computed: the transition pass skips last segments */
    float e[R], acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      e[r] = last ? 0.f : x[(int64_t)r * K + k];
      x[(int64_t)r * K + k] = S[r * K + k]; /* S_s, read by the main pass */
      acc[r] = 0.f;
    }
    if (last) break;
    for (int ct = 0; ct < TPS; ++ct, ++t) {
      gdn_cp_async_wait<GDN_COMBINE_RING - 2>();
      __syncthreads(); /* tile t landed for every thread; tile t - 1's slot is free */
      load_tile(t + GDN_COMBINE_RING - 1);
      const float *m = ring + (t % GDN_COMBINE_RING) * TILE * K + k;
#pragma unroll
      for (int c = 0; c < TILE; ++c) {
        const float mv = m[c * K];
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r] = fmaf(S[r * K + TILE * ct + c], mv, acc[r]);
      }
    }
    __syncthreads(); /* every thread is done reading S */
#pragma unroll
    for (int r = 0; r < R; ++r) S[r * K + k] = acc[r] + e[r];
    __syncthreads();
  }
  gdn_cp_async_wait<0>();
}

#endif
