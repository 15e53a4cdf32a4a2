/* T = (I + A)^-1 for a 64x64 strictly-lower A in shared memory (fp32, pitch 65), by
 * 16x16 blocks: diagonal blocks by forward substitution, then off-diagonal blocks by
 * increasing distance, T_ij = -T_ii sum_{m=j}^{i-1} A_im T_mj. Entries above the
 * diagonal of T are left unspecified except inside diagonal blocks (zero there).
 * Needs blockDim.x >= 64; P is scratch of 3 x 16 x 17 floats. Ends synchronized. */
#ifndef GDN_INTRA_SOLVE_CUH
#define GDN_INTRA_SOLVE_CUH

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
  for (int d = 1; d < 4; ++d) {
    const int n = (4 - d) * 256;
    for (int e = tid; e < n; e += blockDim.x) {
      int blk = e >> 8, r = (e >> 4) & 15, cc = e & 15;
      int bi = blk + d, bj = blk;
      const float *arow = A + (16 * bi + r) * GDN_AP;
      float s = 0.f;
      for (int m = 16 * bj; m < 16 * bi; ++m) s += arow[m] * T[m * GDN_AP + 16 * bj + cc];
      P[(blk * 16 + r) * 17 + cc] = s;
    }
    __syncthreads();
    for (int e = tid; e < n; e += blockDim.x) {
      int blk = e >> 8, r = (e >> 4) & 15, cc = e & 15;
      int bi = blk + d, bj = blk;
      const float *trow = T + (16 * bi + r) * GDN_AP + 16 * bi;
      float s = 0.f;
#pragma unroll
      for (int m = 0; m < 16; ++m) s += trow[m] * P[(blk * 16 + m) * 17 + cc];
      T[(16 * bi + r) * GDN_AP + 16 * bj + cc] = -s;
    }
    __syncthreads();
  }
}

#endif
