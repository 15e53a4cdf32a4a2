/* Warpgroup tensor-core helpers for sm_90a (wgmma.mma_async): the m64nNk16 products with
 * A from registers and B from shared memory, their fences, and the shared-memory matrix
 * descriptors of 128-byte-swizzled 16-bit tiles. Only files built for sm_90a include it.
 *
 * Register layouts (warpgroup of 4 warps; warp w of the group owns rows 16w..16w+15;
 * g = lane / 4, t = lane % 4):
 *   D [64 x N] fp32: d[4j + e] = D[16w + g + 8(e >> 1)][8j + 2t + (e & 1)]
 *   A [64 x 16] 16-bit: a0 = A[16w+g][2t..], a1 = A[16w+g+8][2t..], a2 = A[16w+g][2t+8..],
 *     a3 = A[16w+g+8][2t+8..]: columns 16kk.. of a D tile, packed in pairs, are an A
 *     fragment (the accumulator of one product feeds the next without shared memory).
 * That is the mma.sync m16n8k16 layout of core/mma.cuh, one warp per 16 rows.
 *
 * Shared tiles: a 16-bit tile of R rows x 64 columns (128 bytes a row) stored as R / 8
 * atoms of 8 rows x 128 bytes, 1024-byte aligned, with the 16-byte chunk c of row r at
 * chunk c ^ (r % 8) (the 128-byte swizzle, applied by the hardware to the address bits).
 * Wider tiles are slabs of 64 columns, R x 128 bytes each. The same tile is read
 *   K-major (B[k][n] = tile[n][k], k along the row): rows are n, 8-row groups 1024 bytes
 *     apart (SBO); a k-step of 16 moves the start address by 32 bytes inside the atom;
 *   MN-major (B[k][n] = tile[k][n], transposed): 8 k-rows of 128 bytes, 8-row groups
 *     1024 bytes apart (SBO), the next 64 n-columns one slab further (LBO). */
#ifndef GDN_CORE_WGMMA_CUH
#define GDN_CORE_WGMMA_CUH

#include <stdint.h>
#include "core/mma.cuh" /* gdn_smem_addr */

/* Byte offset of the 16-byte chunk `chunk` (0..7) of row r in a swizzled 64-column slab. */
__device__ __forceinline__ uint32_t gdn_sw128_offset(int r, int chunk) {
  return (uint32_t)(r * 128 + ((chunk ^ (r & 7)) << 4));
}

/* Descriptor of a swizzled operand starting at `p` (shared memory); swizzle: 1 128-byte, 2
 * 64-byte (the descriptor's layout field). */
__device__ __forceinline__ uint64_t gdn_wgmma_desc_swizzle(const void *p, uint32_t lbo_bytes, uint32_t sbo_bytes,
                                                           uint32_t swizzle) {
  const uint64_t addr = gdn_smem_addr(p);
  return ((addr & 0x3ffffu) >> 4) | ((uint64_t)((lbo_bytes >> 4) & 0x3fffu) << 16) |
         ((uint64_t)((sbo_bytes >> 4) & 0x3fffu) << 32) | ((uint64_t)swizzle << 62);
}
/* Descriptor of a 128-byte-swizzled operand starting at `p` (shared memory). */
__device__ __forceinline__ uint64_t gdn_wgmma_desc(const void *p, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return gdn_wgmma_desc_swizzle(p, lbo_bytes, sbo_bytes, 1);
}
/* A 64-byte-swizzled operand (16-bit tiles of 32 columns, 64-byte rows in 512-byte atoms of 8
 * rows, chunk c of row r at c ^ ((r / 2) % 4)), read MN-major: 8-row groups `sbo_bytes` apart;
 * the leading offset (the next 32 columns) is unused by the 32-wide tiles that take it. */
__device__ __forceinline__ uint64_t gdn_wgmma_desc_sw64_mn(const void *p, uint32_t sbo_bytes) {
  return gdn_wgmma_desc_swizzle(p, 16, sbo_bytes, 2);
}
/* Byte offset of the 16-byte chunk `chunk` (0..3) of row r in a 64-byte-swizzled tile. */
__device__ __forceinline__ uint32_t gdn_sw64_offset(int r, int chunk) {
  return (uint32_t)(r * 64 + ((chunk ^ ((r >> 1) & 3)) << 4));
}
/* K-major: the leading offset is unused with the swizzle (1 by convention). */
__device__ __forceinline__ uint64_t gdn_wgmma_desc_k(const void *p) { return gdn_wgmma_desc(p, 16, 1024); }
/* MN-major over slabs of `slab_bytes`. */
__device__ __forceinline__ uint64_t gdn_wgmma_desc_mn(const void *p, uint32_t slab_bytes) {
  return gdn_wgmma_desc(p, slab_bytes, 1024);
}

/* Orders this thread's register writes (accumulators, A fragments) before the next wgmma. */
__device__ __forceinline__ void gdn_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void gdn_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void gdn_wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Keeps the compiler from moving reads or writes of accumulators across the wgmma
 * fences and waits (the asm statements have no register operands of their own). */
template <int N> __device__ __forceinline__ void gdn_wgmma_fence_regs(float *d) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/* ---- mbarriers and named barriers: warpgroups that hand shared buffers to each other
 * without a CTA-wide barrier. */
__device__ __forceinline__ void gdn_mbar_init(uint64_t *bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(gdn_smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void gdn_mbar_arrive(uint64_t *bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(gdn_smem_addr(bar)) : "memory");
}
/* Waits until the phase with this parity (0, 1, 0, ...: the k-th completion has parity k & 1) completed. */
__device__ __forceinline__ void gdn_mbar_wait(uint64_t *bar, int parity) {
  asm volatile(
      "{\n.reg .pred p;\nGDN_MBAR_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra GDN_MBAR_WAIT;\n}\n" ::"r"(gdn_smem_addr(bar)),
      "r"(parity)
      : "memory");
}
/* Named barrier `id` (1..15; 0 is __syncthreads) over `count` threads: sync waits, arrive does not. */
__device__ __forceinline__ void gdn_named_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void gdn_named_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

/* D[64 x N] (+)= A[64 x 16] (registers) * B[16 x N] (descriptor); acc = 0 overwrites D.
 * TB = 1 reads B MN-major (transposed). d points at N / 2 consecutive accumulators. */
template <int N, int IS_F16> struct gdn_wgmma_rs;
template <> struct gdn_wgmma_rs<16, 0> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1, %14;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<16, 1> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1, %14;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<32, 0> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, %22;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<32, 1> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, %22;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<48, 0> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %29, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23}, {%24, %25, %26, %27}, %28, p, 1, 1, %30;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<48, 1> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %29, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23}, {%24, %25, %26, %27}, %28, p, 1, 1, %30;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<64, 0> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<64, 1> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<128, 0> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};
template <> struct gdn_wgmma_rs<128, 1> {
  template <int TB>
  static __device__ __forceinline__ void run(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc), "n"(TB));
  }
};

template <int N, int IS_F16, int TB = 0>
__device__ __forceinline__ void gdn_wgmma(float *d, const uint32_t (&a)[4], uint64_t desc, int acc) {
  gdn_wgmma_rs<N, IS_F16>::template run<TB>(d, a, desc, acc);
}

/* D[64 x 32] (+)= A[64 x 16] B[16 x 32] with both operands in shared memory (descriptors);
 * TA / TB = 1 read A / B MN-major (transposed). */
template <int IS_F16, int TA, int TB>
__device__ __forceinline__ void gdn_wgmma_ss_n32(float (&d)[16], uint64_t adesc, uint64_t bdesc, int acc) {
  if constexpr (IS_F16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, %19, %20;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(adesc), "l"(bdesc), "r"(acc), "n"(TA), "n"(TB));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, %19, %20;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(adesc), "l"(bdesc), "r"(acc), "n"(TA), "n"(TB));
  }
}

/* Stores four 8x8 16-bit matrices: register i of every lane holds its pair of matrix i (row
 * lane / 4, columns 2 (lane % 4)..+1); lanes 8i..8i+7 give the addresses of matrix i's rows. */
__device__ __forceinline__ void gdn_stmatrix_x4(void *row_addr, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(gdn_smem_addr(row_addr)),
               "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
}

#endif
