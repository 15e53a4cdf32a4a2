/* Linear layer on cuBLASLt: Y[T, N] (+)= X[T, Kin] @ W^T (+ bias), the PyTorch nn.Linear
 * convention (W is [N, Kin] row-major). bf16 or fp16 in and out, fp32 accumulation.
 *
 * Rows: the matmul always runs on all T = X.sizes[0] rows, the capacity T_max of a graph
 * (the row count is fixed in the matmul node); pad rows are computed like the others, so
 * give them defined inputs (gated_rmsnorm writes zeros there) if their output matters.
 *
 * Plan: gdn_linear_plan creates a cuBLASLt handle, the matmul descriptor and layouts, a
 * private non-blocking stream (used to capture the matmul into graphs) and fixes ONE
 * algorithm for these shapes, strides and pointer alignments. Plan-time selection:
 * cublasLtMatmulAlgoGetHeuristic lists up to GDN_LINEAR_MAX_CANDIDATES algorithms, and the
 * plan runs each of them once (after one untimed run) into a scratch output it allocates
 * for the purpose (T x ldy elements, freed before it returns) and keeps the fastest. The
 * timing reads x, w, bias and (accumulate) y, and writes only the scratch and workspace:
 * nothing of the caller's changes. The winner is remembered per (device, GEMM: shapes,
 * strides, dtypes, bias, accumulate, alignments, workspace cap) for the life of the
 * process, so every plan of that GEMM on that device takes the same algorithm; nothing is
 * timed at launch. The heuristic's first is taken without timing when the list has one
 * entry, when the scratch cannot be allocated (remembered too), and past 256 distinct
 * GEMMs. GDN_LINEAR_ALGO=k (environment, k >= 0) takes the heuristic's k-th candidate
 * (the last if the list is shorter) without timing; -1 (default) selects as above.
 * gdn_linear_algo_info_of tells what was chosen and the measured times.
 * Workspace: the plan cudaMallocs exactly what the chosen algorithm
 * reports (0 to at most GDN_LINEAR_MAX_WORKSPACE = 32 MiB; GDN_LINEAR_WORKSPACE_MB in the
 * environment lowers/raises the cap); gdn_linear_workspace_bytes reports it. The plan
 * belongs to the device current at plan time; free it with gdn_linear_destroy (after the
 * graphs holding its nodes are done, since they use its workspace). Planning synchronizes
 * with the plan's own stream only (and cudaMalloc / cudaFree).
 *
 * A plan is reusable for any tensors with the planned shapes, strides, dtypes and at least
 * the planned pointer alignments (launch/add_node check this). One plan must not be used
 * from two threads at once (the bias pointer is set on its descriptor per call).
 *
 * Bias: a bias of Y's dtype is fused in the cuBLASLt epilogue when cuBLASLt offers an
 * algorithm for it. cuBLASLt requires the epilogue bias type to equal the output type for
 * 16-bit outputs, so an fp32 bias with bf16/fp16 Y (and a same-dtype bias cuBLASLt does not
 * offer) is added by a small kernel after the matmul: fp32 add, one more rounding of Y.
 * gdn_linear_bias_fused tells which. Y = X W^T + bias (+ Y_old when accumulate).
 *
 * Precision: the dot products accumulate in fp32 (split-K only with fp32 partial sums).
 * 16-bit roundings: the matmul output once (Y_old is added in fp32 before it), plus once
 * more in the bias kernel when unfused. The fused epilogue with accumulate was observed on
 * H100 to round more than once (errors above one rounding), so count up to one rounding
 * per term there (matmul, Y_old, bias). */
#ifndef GDN_LINEAR_H
#define GDN_LINEAR_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include "gdn/device.h"
#include "gdn/status.h"
#include "gdn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_LINEAR_MAX_WORKSPACE (32u << 20)
#define GDN_LINEAR_MAX_CANDIDATES 8 /* heuristic results the plan considers */
#define GDN_LINEAR_ALGO_BYTES 64    /* sizeof(cublasLtMatmulAlgo_t) */

typedef struct gdn_linear_args {
  gdn_tensor x;     /* [T, Kin] bf16/fp16, last dim contiguous, row stride >= Kin */
  gdn_tensor w;     /* [N, Kin] dtype of x, last dim contiguous, row stride >= Kin */
  gdn_tensor bias;  /* [N] fp32 or dtype of x, contiguous; optional */
  gdn_tensor y;     /* [T, N] dtype of x, last dim contiguous, row stride >= N; disjoint from x, w, bias */
  int accumulate;   /* 0: Y = X W^T (+ bias);  1: Y += X W^T (+ bias) */
} gdn_linear_args;

/* The plan (opaque): cuBLASLt handle, descriptors, chosen algorithm, workspace, capture stream. */
typedef struct gdn_linear_config gdn_linear_config;

/* Host-only checks (shapes, dtypes, strides, overlap). Kin must be >= 1. */
gdn_status gdn_linear_validate(const gdn_linear_args *args);
/* Creates the plan on the current device. `dev` must describe that device. */
gdn_status gdn_linear_plan(const gdn_linear_args *args, const gdn_device_info *dev, gdn_linear_config **cfg);
void gdn_linear_destroy(gdn_linear_config *cfg);
size_t gdn_linear_workspace_bytes(const gdn_linear_config *cfg);
int gdn_linear_bias_fused(const gdn_linear_config *cfg);

/* How the plan's algorithm was chosen (for benchmarks and logs). */
typedef struct gdn_linear_algo_info {
  int num_candidates; /* usable heuristic results (0 for an empty GEMM) */
  int chosen;         /* index of the plan's algorithm in that list, best-ranked first (-1: empty GEMM) */
  int timed;          /* 1: the fastest measured at plan time; 0: GDN_LINEAR_ALGO, a single candidate or no scratch */
  float us[GDN_LINEAR_MAX_CANDIDATES];      /* plan-time GPU time of each candidate when timed (< 0: it failed to run) */
  size_t workspace[GDN_LINEAR_MAX_CANDIDATES]; /* bytes each candidate asks for */
  unsigned char algo[GDN_LINEAR_ALGO_BYTES];   /* the chosen cublasLtMatmulAlgo_t, opaque (compare with memcmp) */
} gdn_linear_algo_info;
gdn_status gdn_linear_algo_info_of(const gdn_linear_config *cfg, gdn_linear_algo_info *info);

gdn_status gdn_linear_launch(const gdn_linear_args *args, const gdn_linear_config *cfg, cudaStream_t stream);
/* Captures the matmul (and the bias kernel, if unfused) into `graph` after deps via the
 * plan's stream; *node completes after all of it. T == 0 or N == 0 adds one empty node. */
gdn_status gdn_linear_add_node(const gdn_linear_args *args, const gdn_linear_config *cfg, cudaGraph_t graph,
                               const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node);

#ifdef __cplusplus
}
#endif
#endif
