/* Tu = (I + A)^-1 diag(beta) for the 64x64 strictly lower A of one chunk, on mma.sync with
 * every product's factors split in two bf16 parts (x = hi + lo, |lo| <= 2^-9 |x|; hi*hi +
 * hi*lo + lo*hi: ~2^-16 relative, far below the 16-bit rounding of Tu), so the solve reads
 * 16-bit tiles with ldmatrix and chains its products in registers instead of moving fp32
 * fragments through shared memory one element at a time.
 *
 * With D_b = I + A_bb (16x16 diagonal blocks) and T = (I + A)^-1 by blocks:
 *   T_bb = D_b^-1                                   forward substitution, fp32, a thread a column
 *   T_ij = -D_i^-1 sum_{m=j}^{i-1} A_im T_mj        (i > j)
 * Warp j forms column block j transposed, U_ji = T_ij^T:
 *   U_jj = D_j^-T,   U_ji = -(sum_{m=j}^{i-1} U_jm A_im^T) D_i^-T
 * so the running factor U is always the A operand (the C layout of two n-tiles is an A
 * fragment) and A_im, D_i^-1 are B operands read as stored. U_ji goes to the staging tile
 * transposed by stmatrix.
 *
 * Shared inputs (written by the caller):
 *   Ahi, Alo  bf16 [64][72]: A = Ahi + Alo, read only in the blocks below the diagonal;
 *   Ad        fp32 diagonal blocks, block b at b * GDN_AD_BLOCK, rows GDN_AD_PITCH apart,
 *             read only below the diagonal;
 * scratch Dth, Dtl bf16 [64][24] (D_b^-1 transposed: row 16b + c = column c of D_b^-1);
 * output Tus [64][72] (16-bit Tu, zeros above the diagonal; rows >= L hold finite values). */
#ifndef GDN_INTRA_SOLVE_SPLIT_CUH
#define GDN_INTRA_SOLVE_SPLIT_CUH

#include "core/mma.cuh"

#define GDN_AD_PITCH 24                     /* floats: the two blocks a warp reads fall in distinct banks */
#define GDN_AD_BLOCK (16 * GDN_AD_PITCH + 8) /* floats */
#define GDN_AD_BYTES (4 * GDN_AD_BLOCK * 4)
#define GDN_TP 72 /* pitch (elements) of the 64-column 16-bit tiles */
#define GDN_DP 24 /* pitch of the transposed diagonal inverses */

/* x = hi + lo in bf16 pairs (lo carries the rounding error of hi). */
__device__ __forceinline__ void gdn_split_bf16x2(float x0, float x1, uint32_t &hi, uint32_t &lo) {
  hi = gdn_pack2<0>(x0, x1);
  const float2 h = gdn_unpack2<0>(hi);
  lo = gdn_pack2<0>(x0 - h.x, x1 - h.y);
}

/* hi / lo A fragments of a 16x16 accumulator pair c[2][4] times s. */
__device__ __forceinline__ void gdn_split_frag(const float (&c)[2][4], float s, uint32_t (&hi)[4], uint32_t (&lo)[4]) {
  gdn_split_bf16x2(s * c[0][0], s * c[0][1], hi[0], lo[0]);
  gdn_split_bf16x2(s * c[0][2], s * c[0][3], hi[1], lo[1]);
  gdn_split_bf16x2(s * c[1][0], s * c[1][1], hi[2], lo[2]);
  gdn_split_bf16x2(s * c[1][2], s * c[1][3], hi[3], lo[3]);
}

/* c[16 x 16] += (ah + al) (B_hi + B_lo), the lo * lo term dropped; b as gdn_load_b_*. */
__device__ __forceinline__ void gdn_mma_split(float (&c)[2][4], const uint32_t (&ah)[4], const uint32_t (&al)[4],
                                              const uint32_t (&bh)[4], const uint32_t (&bl)[4]) {
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
    gdn_mma<0>(c[nt], al, bh[2 * nt], bh[2 * nt + 1]);
    gdn_mma<0>(c[nt], ah, bl[2 * nt], bl[2 * nt + 1]);
    gdn_mma<0>(c[nt], ah, bh[2 * nt], bh[2 * nt + 1]);
  }
}

/* Step 1 (threads 0..63, thread = (block b, column c)): D_b^-1 column c by forward
 * substitution, x_c = 1, x_r = -sum_{m<r} A_bb[r][m] x_m (x_m = 0 for m < c); into Dt
 * (hi / lo) and, times beta of its column, into the diagonal block of Tu. */
template <typename elem>
__device__ __forceinline__ void gdn_solve_split_diag(const float *Ad, const float *beta, uint16_t *Dth, uint16_t *Dtl,
                                                     elem *Tus) {
  const int b = threadIdx.x >> 4, c = threadIdx.x & 15;
  const float *Ab = Ad + b * GDN_AD_BLOCK;
  float x[16];
#pragma unroll
  for (int r = 0; r < 16; ++r) x[r] = r == c ? 1.f : 0.f;
#pragma unroll
  for (int r = 1; r < 16; ++r) {
    const float4 *row = (const float4 *)(Ab + r * GDN_AD_PITCH);
    float s[4] = {0.f, 0.f, 0.f, 0.f}; /* four short chains instead of one of r FMAs */
#pragma unroll
    for (int q = 0; 4 * q < r; ++q) {
      const float4 a = row[q];
      const float av[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (4 * q + e < r) s[e] = fmaf(av[e], x[4 * q + e], s[e]);
    }
    if (r > c) x[r] = -((s[0] + s[1]) + (s[2] + s[3]));
  }
  uint32_t hi[8], lo[8];
#pragma unroll
  for (int r = 0; r < 8; ++r) gdn_split_bf16x2(x[2 * r], x[2 * r + 1], hi[r], lo[r]);
  uint4 *dh = (uint4 *)(Dth + (16 * b + c) * GDN_DP), *dl = (uint4 *)(Dtl + (16 * b + c) * GDN_DP);
  dh[0] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
  dh[1] = make_uint4(hi[4], hi[5], hi[6], hi[7]);
  dl[0] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
  dl[1] = make_uint4(lo[4], lo[5], lo[6], lo[7]);
  const float bc = beta[16 * b + c];
#pragma unroll
  for (int r = 0; r < 16; ++r) Tus[(16 * b + r) * GDN_TP + 16 * b + c] = gdn_from_float<elem>(x[r] * bc);
}

/* Step 2 (warps 0..2; warp 3 has no block below the diagonal in its column): the blocks
 * (i, j > ...) of column block j = warp, times beta of their columns, into Tus. */
template <int IS_F16>
__device__ __forceinline__ void gdn_solve_split_offdiag(const uint16_t *Ahi, const uint16_t *Alo, const uint16_t *Dth,
                                                        const uint16_t *Dtl, const float *beta,
                                                        typename gdn_elem<IS_F16>::T *Tus) {
  const int lane = threadIdx.x & 31, j = threadIdx.x >> 5, g = lane >> 2;
  if (j >= 3) return;
  uint32_t uh[3][4], ul[3][4]; /* U_jm, m = j..2 (the A operands of later blocks) */
#pragma unroll
  for (int m = 0; m < 3; ++m)
    if (m == j) {
      gdn_load_a(uh[m], Dth, GDN_DP, 16 * m, 0); /* U_jj[r][c] = D_j^-1[c][r] = Dt[16j + r][c] */
      gdn_load_a(ul[m], Dtl, GDN_DP, 16 * m, 0);
    }
  const float b0 = beta[16 * j + g], b1 = beta[16 * j + g + 8]; /* U rows = Tu columns */
  /* stmatrix: lane 8q + r gives row r of matrix q = (n-tile q >> 1, row half q & 1) */
  const int q = lane >> 3;
  typename gdn_elem<IS_F16>::T *dst = Tus + (8 * (q >> 1) + (lane & 7)) * GDN_TP + 16 * j + 8 * (q & 1);
#pragma unroll
  for (int i = 1; i < 4; ++i) {
    if (i <= j) continue;
    float pc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int m = 0; m < i; ++m) {
      if (m < j) continue;
      uint32_t bh[4], bl[4]; /* B[k][n] = A_im^T[k][n] = A[16i + n][16m + k] */
      gdn_load_b_nk(bh, Ahi, GDN_TP, 16 * m, 16 * i);
      gdn_load_b_nk(bl, Alo, GDN_TP, 16 * m, 16 * i);
      gdn_mma_split(pc, uh[m], ul[m], bh, bl);
    }
    uint32_t ph[4], pl[4], dh[4], dl[4]; /* B[k][n] = D_i^-T[k][n] = Dt[16i + k][n] */
    gdn_split_frag(pc, 1.f, ph, pl);
    gdn_load_b_kn(dh, Dth, GDN_DP, 16 * i, 0);
    gdn_load_b_kn(dl, Dtl, GDN_DP, 16 * i, 0);
    float uc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    gdn_mma_split(uc, ph, pl, dh, dl); /* U_ji = -uc */
    if (i < 3) gdn_split_frag(uc, -1.f, uh[i], ul[i]);
    uint32_t r[4];
    r[0] = gdn_pack2<IS_F16>(-uc[0][0] * b0, -uc[0][1] * b0);
    r[1] = gdn_pack2<IS_F16>(-uc[0][2] * b1, -uc[0][3] * b1);
    r[2] = gdn_pack2<IS_F16>(-uc[1][0] * b0, -uc[1][1] * b0);
    r[3] = gdn_pack2<IS_F16>(-uc[1][2] * b1, -uc[1][3] * b1);
    gdn_stmatrix_x4_trans(dst + 16 * i * GDN_TP, r);
  }
}

#endif
