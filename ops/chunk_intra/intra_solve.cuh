/* T = (I + A)^-1 for a 64x64 strictly-lower A in shared memory (fp32, pitch 65), by
 * 16x16 blocks: diagonal blocks by forward substitution, then off-diagonal blocks by
 * increasing distance, T_ij = -T_ii sum_{m=j}^{i-1} A_im T_mj. Entries above the
 * diagonal of T are left unspecified except inside diagonal blocks (zero there).
 * Needs blockDim.x >= 128 (4 warps); P is scratch of 3 x 16 x 17 floats. Ends synchronized. */
#ifndef GDN_INTRA_SOLVE_CUH
#define GDN_INTRA_SOLVE_CUH

#include "core/mma.cuh"

#define GDN_AP 65

__device__ __forceinline__ void gdn_solve_unit_lower64(const float *A, float *T, float *P) {
  const int tid = threadIdx.x;
  if (tid < 64) {
    const int b = tid >> 4, cidx = tid & 15, o = 16 * b;
    float x[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) x[r] = (r == cidx) ? 1.f : 0.f;
#pragma unroll
    for (int r = 1; r < 16; ++r) {
      float s = 0.f;
#pragma unroll
      for (int m = 0; m < r; ++m) s += A[(o + r) * GDN_AP + o + m] * x[m];
      if (r > cidx) x[r] = -s;
    }
#pragma unroll
    for (int r = 0; r < 16; ++r) T[(o + r) * GDN_AP + o + cidx] = x[r];
  }
  __syncthreads();
  /* Off-diagonal blocks by distance d, one warp per block (bi, bj) = (bj + d, bj):
   * P = sum_m A[bi][m] T[m][bj] and T[bi][bj] = -T[bi][bi] P on tensor cores (3xTF32,
   * about fp32 accuracy); P goes through the warp's own 16x17 scratch. */
  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  for (int d = 1; d < 4; ++d) {
    const int bj = warp, bi = warp + d;
    if (warp < 4 - d) {
      float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
      for (int m = bj; m < bi; ++m)
        gdn_mma_f32x3_16x16(c, A + (16 * bi) * GDN_AP + 16 * m, GDN_AP, T + (16 * m) * GDN_AP + 16 * bj, GDN_AP);
      float *Pw = P + warp * 16 * 17;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        Pw[g * 17 + 8 * nt + 2 * t] = c[nt][0];
        Pw[g * 17 + 8 * nt + 2 * t + 1] = c[nt][1];
        Pw[(g + 8) * 17 + 8 * nt + 2 * t] = c[nt][2];
        Pw[(g + 8) * 17 + 8 * nt + 2 * t + 1] = c[nt][3];
        c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.f;
      }
      __syncwarp();
      gdn_mma_f32x3_16x16(c, T + (16 * bi) * GDN_AP + 16 * bi, GDN_AP, Pw, 17);
      float *Tb = T + (16 * bi) * GDN_AP + 16 * bj;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        Tb[g * GDN_AP + 8 * nt + 2 * t] = -c[nt][0];
        Tb[g * GDN_AP + 8 * nt + 2 * t + 1] = -c[nt][1];
        Tb[(g + 8) * GDN_AP + 8 * nt + 2 * t] = -c[nt][2];
        Tb[(g + 8) * GDN_AP + 8 * nt + 2 * t + 1] = -c[nt][3];
      }
    }
    __syncthreads();
  }
}

#endif
