/* Warp-level tensor-core helpers (sm_80+ mma.sync m16n8k16, ldmatrix, cp.async).
 *
 * Fragment layouts (g = lane / 4, t = lane % 4):
 *   A 16x16 row-major: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
 *   B 16x8  (k x n):   b0 = B[2t..2t+1][g],  b1 = B[2t+8..2t+9][g]
 *   C 16x8  fp32:      c0,c1 = C[g][2t..2t+1], c2,c3 = C[g+8][2t..2t+1]
 * Shared-memory tiles are bf16/fp16 rows padded by 8 elements (16 bytes) so the 8 row
 * addresses of one ldmatrix fall in distinct bank groups. */
#ifndef GDN_CORE_MMA_CUH
#define GDN_CORE_MMA_CUH

#include <stdint.h>
#include "core/elem.cuh" /* gdn_elem, gdn_pack2 / gdn_unpack2, gdn_to_float / gdn_from_float */

/* C += A * B, fp32 accumulators. */
template <int IS_F16> __device__ __forceinline__ void gdn_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void gdn_mma<0>(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void gdn_mma<1>(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t gdn_smem_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void gdn_ldmatrix_x4(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(gdn_smem_addr(p)));
}
__device__ __forceinline__ void gdn_ldmatrix_x4_trans(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(gdn_smem_addr(p)));
}

/* Stores four 8x8 16-bit matrices transposed: register i of every lane holds its
 * fragment pair of matrix i (row lane/4, columns 2(lane%4)..+1), lanes 8i..8i+7 give the
 * addresses of matrix i's 8 stored rows, and stored row r receives fragment column r.
 * sm_90 has stmatrix; older targets write the same bytes one element at a time. */
__device__ __forceinline__ void gdn_stmatrix_x4_trans(void *row_addr, const uint32_t r[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(gdn_smem_addr(row_addr)),
               "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
#else
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    /* row c of matrix i starts at the address lane 8i + c gave */
    const int c = 2 * (lane & 3);
    uint16_t *r0 = (uint16_t *)__shfl_sync(0xffffffffu, (unsigned long long)row_addr, 8 * i + c);
    uint16_t *r1 = (uint16_t *)__shfl_sync(0xffffffffu, (unsigned long long)row_addr, 8 * i + c + 1);
    r0[lane >> 2] = (uint16_t)(r[i] & 0xffffu);
    r1[lane >> 2] = (uint16_t)(r[i] >> 16);
  }
  __syncwarp();
#endif
}

/* A fragment of the 16x16 block at (row0, col0) of a row-major tile with row pitch `ld`
 * (elements): A[m][k] = tile[row0 + m][col0 + k]. */
template <typename T>
__device__ __forceinline__ void gdn_load_a(uint32_t a[4], const T *tile, int ld, int row0, int col0) {
  int lane = threadIdx.x & 31;
  int r = row0 + (lane & 15), c = col0 + ((lane >> 4) << 3);
  gdn_ldmatrix_x4(a, tile + r * ld + c);
}
/* A fragment where the tile stores A transposed: A[m][k] = tile[row0 + k][col0 + m]. */
template <typename T>
__device__ __forceinline__ void gdn_load_a_trans(uint32_t a[4], const T *tile, int ld, int row0, int col0) {
  int lane = threadIdx.x & 31;
  int r = row0 + (lane & 7) + ((lane >> 4) << 3), c = col0 + (((lane >> 3) & 1) << 3);
  gdn_ldmatrix_x4_trans(a, tile + r * ld + c);
}
/* B fragments of two adjacent n-tiles (16 k x 16 n) where the tile stores B as [n][k]:
 * B[k][n] = tile[n0 + n][k0 + k]. b[0],b[1] -> n-tile 0; b[2],b[3] -> n-tile 1. */
template <typename T>
__device__ __forceinline__ void gdn_load_b_nk(uint32_t b[4], const T *tile, int ld, int k0, int n0) {
  int lane = threadIdx.x & 31;
  int r = n0 + (lane & 7) + ((lane >> 4) << 3), c = k0 + (((lane >> 3) & 1) << 3);
  gdn_ldmatrix_x4(b, tile + r * ld + c);
}
/* Same where the tile stores B as [k][n]: B[k][n] = tile[k0 + k][n0 + n]. */
template <typename T>
__device__ __forceinline__ void gdn_load_b_kn(uint32_t b[4], const T *tile, int ld, int k0, int n0) {
  int lane = threadIdx.x & 31;
  int r = k0 + (lane & 7) + (((lane >> 3) & 1) << 3), c = n0 + ((lane >> 4) << 3);
  gdn_ldmatrix_x4_trans(b, tile + r * ld + c);
}

/* ---- fp32 products on tensor cores with 3xTF32 (hi*hi + hi*lo + lo*hi): about fp32
 * accuracy (2^-22 relative per product) at three tf32 mma each.
 * m16n8k8 fragments: a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4];
 * b0 = B[t][g], b1 = B[t+4][g]; C as in m16n8k16. */
__device__ __forceinline__ uint32_t gdn_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ void gdn_mma_tf32(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/* C[16 x 16] += A[16 x 16] * B[16 x 16], fp32 tiles in shared memory (pitch lda / ldb). */
__device__ __forceinline__ void gdn_mma_f32x3_16x16(float c[2][4], const float *A, int lda, const float *B, int ldb) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int k0 = 0; k0 < 16; k0 += 8) {
    float af[4] = {A[g * lda + k0 + t], A[(g + 8) * lda + k0 + t], A[g * lda + k0 + t + 4], A[(g + 8) * lda + k0 + t + 4]};
    uint32_t ah[4], al[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      ah[i] = gdn_tf32(af[i]);
      al[i] = gdn_tf32(af[i] - __uint_as_float(ah[i]));
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      float b0 = B[(k0 + t) * ldb + 8 * nt + g], b1 = B[(k0 + t + 4) * ldb + 8 * nt + g];
      uint32_t bh0 = gdn_tf32(b0), bh1 = gdn_tf32(b1);
      uint32_t bl0 = gdn_tf32(b0 - __uint_as_float(bh0)), bl1 = gdn_tf32(b1 - __uint_as_float(bh1));
      gdn_mma_tf32(c[nt], al, bh0, bh1);
      gdn_mma_tf32(c[nt], ah, bl0, bl1);
      gdn_mma_tf32(c[nt], ah, bh0, bh1);
    }
  }
}

/* 16-byte async global->shared copy; src_bytes < 16 zero-fills the rest (0: all zeros). */
__device__ __forceinline__ void gdn_cp_async16(void *smem, const void *gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(gdn_smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}
/* 4-byte async global->shared copy (one float of a strided row); src_bytes 0 zero-fills. */
__device__ __forceinline__ void gdn_cp_async4(void *smem, const void *gmem, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(gdn_smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}
/* Makes this thread's generic-proxy shared-memory writes (st.shared, cp.async) visible to
 * the async proxy (wgmma, TMA); a barrier follows, then the async reads (sm_90+). */
__device__ __forceinline__ void gdn_fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void gdn_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void gdn_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

#endif
