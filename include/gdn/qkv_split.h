/* Fused post-conv QKV split: one kernel turns mixed_qkv [T, D] (the causal conv1d output)
 * into q [T, Hk, K], k [T, Hk, K] and v [T, Hv, V]:
 *   channels [0, Hk*K)          -> q
 *   channels [Hk*K, 2*Hk*K)     -> k
 *   channels [2*Hk*K, D)        -> v        with D = 2*Hk*K + Hv*V.
 * It replaces the framework's split + view + contiguous (one copy launch per output).
 * The copy is bitwise (bf16, fp16 or fp32; all four tensors share one dtype).
 *
 * mixed_qkv may have any element strides. plan picks a kernel from them:
 *   token-major   (stride[1] == 1, rows possibly padded): a row copy with the widest of
 *                 16/8/4/2-byte vectors that every pointer, stride and head size allows;
 *   channel-major (stride[0] == 1: the conv's [D, T] memory viewed as [T, D]): a tiled
 *                 transpose (registers + shared memory, 128 channels x 256 bytes of tokens
 *                 per block), 16-byte aligned reads along T whatever T's alignment (rows
 *                 that do not start on 16 bytes are realigned in registers: a second
 *                 kernel, picked at each launch / update from the input pointer and
 *                 stride), writes of the widest vector the outputs allow;
 *   generic       (neither stride is 1): an element-wise row copy.
 * A D that is not a multiple of 8 (e.g. Hk=1, K=3, Hv=1, V=5) is handled: the vectors just
 * get narrower (down to one element). Outputs need stride 1 in their last dimension; their
 * other strides are free (heads may be padded or head-major) but must not make two
 * elements of one output share memory. T == 0 is a valid no-op. */
#ifndef GDN_QKV_SPLIT_H
#define GDN_QKV_SPLIT_H

#include <cuda_runtime_api.h>
#include "gdn/device.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_qkv_split_args {
  gdn_tensor mixed_qkv; /* [T, D], any element strides (read only) */
  gdn_tensor q;         /* [T, Hk, K], stride[2] == 1 */
  gdn_tensor k;         /* [T, Hk, K], stride[2] == 1 */
  gdn_tensor v;         /* [T, Hv, V], stride[2] == 1 */
} gdn_qkv_split_args;

typedef enum gdn_qkv_split_layout {
  GDN_QKV_SPLIT_TOKEN_MAJOR = 1,   /* mixed_qkv stride[1] == 1 */
  GDN_QKV_SPLIT_CHANNEL_MAJOR = 2, /* mixed_qkv stride[0] == 1 (and stride[1] != 1) */
  GDN_QKV_SPLIT_GENERIC = 3        /* neither */
} gdn_qkv_split_layout;

/* Fixed launch configuration chosen by plan. The grid is derived from T at launch:
 *   token-major / generic: x = ceil(T / tile_tokens), y = ceil(D * elem_bytes / vec_bytes / block_x)
 *   channel-major:         x = ceil(T / tile_tokens), y = ceil(D / tile_channels). */
typedef struct gdn_qkv_split_config {
  gdn_qkv_split_layout layout;
  int elem_bytes;      /* 2 (bf16, fp16) or 4 (fp32) */
  int vec_bytes;       /* bytes per global store (and per load on the row paths; the
                          transpose always reads 16-byte aligned chunks) */
  int block_x, block_y;/* threads per block: block_x * block_y */
  int rows_per_thread; /* row paths: rows each thread moves (loads issued together) */
  int tile_tokens;     /* tokens per block */
  int tile_channels;   /* channels per block (row paths: per block column, block_x vectors) */
  int smem_bytes;      /* static shared memory per block (transpose tile) */
  /* the problem this config was planned for; launch / update_node refuse others */
  gdn_dtype dtype;
  int64_t D, Hk, K, Hv, V;
} gdn_qkv_split_config;

/* Shape, dtype, stride, alignment and overlap checks. Host only, no CUDA calls. */
gdn_status gdn_qkv_split_validate(const gdn_qkv_split_args *args);
/* Validates and chooses the kernel (layout kind, vector widths, tile, block) from the
 * strides, pointer alignment and dev. */
gdn_status gdn_qkv_split_plan(const gdn_qkv_split_args *args, const gdn_device_info *dev,
                              gdn_qkv_split_config *cfg);
/* One kernel launch on stream. Nothing is launched when T == 0. */
gdn_status gdn_qkv_split_launch(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                cudaStream_t stream);
/* Adds ONE kernel node (depending on deps) to graph and returns it in *node. */
gdn_status gdn_qkv_split_add_node(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                  cudaGraph_t graph, const cudaGraphNode_t *deps, size_t num_deps,
                                  cudaGraphNode_t *node);
/* Retargets node of an instantiated graph to args (new pointers, new T, new strides; a
 * channel-major input's stride[1] follows T). D, heads and dtype must be those cfg was
 * planned for, the input must keep the planned layout kind (token-major: stride[1] == 1;
 * channel-major: stride[0] == 1, or T <= 1; generic: any strides) and pointers and strides
 * must keep the alignment of cfg's vectors. Otherwise GDN_ERROR_INVALID_ARGUMENT: the plan
 * must be redone and the graph rebuilt. launch and add_node apply the same checks. A
 * channel-major node may switch between the transpose's two kernels (aligned or not
 * channel rows, e.g. a new T); grid, block and shared memory are those of cfg either way. */
gdn_status gdn_qkv_split_update_node(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg,
                                     cudaGraphExec_t exec, cudaGraphNode_t node);

/* "token-major", "channel-major", "generic" (or "unknown"). */
const char *gdn_qkv_split_layout_name(gdn_qkv_split_layout layout);

#ifdef __cplusplus
}
#endif
#endif
