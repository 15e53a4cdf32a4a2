/* Internal: what the qkv_split kernels receive, built on the host (qkv_split.c) from the
 * args and a config, so that all stride and unit arithmetic stays in plain C. */
#ifndef GDN_OPS_QKV_SPLIT_INTERNAL_H
#define GDN_OPS_QKV_SPLIT_INTERNAL_H

#include <stdint.h>
#include "gdn/qkv_split.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time shape of the kernels; plan writes them into the config and describe
 * refuses a config that disagrees (the kernels are built for exactly these). */
#define GDN_QKV_SPLIT_THREADS 256       /* threads per block, every path */
#define GDN_QKV_SPLIT_ROWS_PER_THREAD 4 /* row paths */
#define GDN_QKV_SPLIT_TILE_C 128        /* transpose: channels per tile */
#define GDN_QKV_SPLIT_TILE_BYTES 256    /* transpose: bytes of tokens per tile row (128 bf16, 64 fp32) */
/* transpose: shared tile, 16-byte units of [tile tokens][tile channels] = 32 KB, any dtype */
#define GDN_QKV_SPLIT_TILE_SMEM (GDN_QKV_SPLIT_TILE_C * GDN_QKV_SPLIT_TILE_BYTES)

/* One output as the kernel addresses it. Units: vec_bytes on the row paths, elements on
 * the transpose. An output whose heads are adjacent (Hk == 1 or stride[1] == K) is seen
 * as one head of Hk*K (s1 = 0), which lets vectors span head boundaries. */
typedef struct gdn_qkv_split_out_desc {
  void *data;
  int64_t s0; /* token stride */
  int64_t s1; /* head stride */
  int64_t hd; /* head size */
} gdn_qkv_split_out_desc;

typedef struct gdn_qkv_split_desc {
  const void *src;
  int64_t src_s0, src_s1;  /* token and channel strides (row paths: units; transpose: elements) */
  int64_t src_span_bytes;  /* bytes from src to one past its last element (transpose edge loads) */
  int src_rows_aligned;    /* transpose: src and its channel stride are 16-byte aligned, so every
                              channel row's tile starts on a 16-byte boundary (picks the kernel) */
  int64_t T;
  int64_t cols;    /* D in units */
  int64_t qk_cols; /* Hk*K in units: q is [0, qk_cols), k is [qk_cols, 2 qk_cols), v the rest */
  gdn_qkv_split_out_desc out[3]; /* q, k, v */
} gdn_qkv_split_desc;

/* The layout kind plan picks for this input view. */
gdn_qkv_split_layout gdn_qkv_split_classify(const gdn_tensor *mixed_qkv);

/* Validates args, checks that cfg was planned for this problem (D, heads, dtype, layout
 * kind) and that pointers and strides still suit cfg's vectors, then fills desc.
 * `who` names the entry point in messages. */
gdn_status gdn_qkv_split_describe(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                  const char *who, gdn_qkv_split_desc *desc);

#ifdef __cplusplus
}
#endif
#endif
