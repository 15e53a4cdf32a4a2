/* Linear on cuBLASLt: plan (handle, descriptors, the algorithm chosen once among the
 * heuristic's candidates, workspace), eager launch and graph node (stream capture into the
 * caller's graph).
 *
 * Row-major Y[T,N] = X[T,Kin] W[N,Kin]^T is, in cuBLASLt's column-major terms,
 * D[N x T] = op(A) B with A = W seen as Kin x N (ld = W row stride), transa = T,
 * B = X seen as Kin x T (ld = X row stride), D = Y seen as N x T (ld = Y row stride):
 * the "TN" GEMM, and the epilogue bias (one value per row of D) is per output feature. */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/capture.h"
#include "core/cuda_util.h"
#include "core/elem.cuh"
#include "core/params.h"
#include "gdn/linear.h"
#include "ops/linear/linear_params.h"

struct gdn_linear_config {
  int device;
  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
  void *workspace;
  size_t workspace_bytes;
  cudaStream_t capture; /* private stream, only for capturing into graphs */
  int64_t T, N, Kin, ldx, ldw, ldy;
  gdn_dtype dtype, bias_dtype;
  int has_bias, accumulate, fused_bias, empty;
  unsigned align_x, align_w, align_y, align_b; /* pointer alignments the algorithm was chosen for */
  gdn_linear_algo_info info;                   /* how the algorithm was chosen */
};

static_assert(sizeof(cublasLtMatmulAlgo_t) == GDN_LINEAR_ALGO_BYTES, "GDN_LINEAR_ALGO_BYTES");

namespace {

gdn_status lt_fail(cublasStatus_t s, const char *what) {
  return gdn_fail(GDN_ERROR_CUBLAS, "%s failed: %s (%s)", what, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
}

#define LT_TRY(expr)                                              \
  do {                                                            \
    cublasStatus_t lt_s_ = (expr);                                \
    if (lt_s_ != CUBLAS_STATUS_SUCCESS) return lt_fail(lt_s_, #expr); \
  } while (0)

unsigned ptr_align(const void *p) {
  uintptr_t a = (uintptr_t)p;
  unsigned al = 256;
  while (al > 1 && a % al != 0) al >>= 1;
  return al;
}

int64_t ld_of(const gdn_tensor *t) {
  /* A single row may carry any stride; cuBLASLt wants ld >= the row length. */
  int64_t ld = t->strides[0];
  return ld < t->sizes[1] ? t->sizes[1] : ld;
}

cudaDataType_t cuda_type(gdn_dtype d) {
  return d == GDN_DTYPE_BF16 ? CUDA_R_16BF : d == GDN_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* Unfused bias: y[t, n] += bias[n]: the GEMM's already rounded 16-bit output plus the bias
 * in fp32, rounded once more to 16 bits. */
template <typename T> __global__ void bias_add_kernel(const gdn_linear_bias_params p) {
  const int64_t total = (int64_t)p.T * p.N;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / p.N;
    const int n = (int)(i % p.N);
    T *y = reinterpret_cast<T *>(p.y) + t * p.ldy + n;
    const float b = p.bias_f32 ? reinterpret_cast<const float *>(p.bias)[n] : gdn_to_float(reinterpret_cast<const T *>(p.bias)[n]);
    *y = gdn_from_float<T>(gdn_to_float(*y) + b);
  }
}

gdn_status check_against_plan(const gdn_linear_args *a, const gdn_linear_config *c) {
  GDN_TRY(gdn_linear_validate(a));
  if (c == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: plan is NULL");
  if (a->x.sizes[0] != c->T || a->w.sizes[0] != c->N || a->x.sizes[1] != c->Kin || a->x.dtype != c->dtype)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: shapes [T %lld, N %lld, Kin %lld] %s differ from the plan's [%lld, %lld, %lld] %s",
                    (long long)a->x.sizes[0], (long long)a->w.sizes[0], (long long)a->x.sizes[1], gdn_dtype_name(a->x.dtype),
                    (long long)c->T, (long long)c->N, (long long)c->Kin, gdn_dtype_name(c->dtype));
  if (c->empty) return GDN_SUCCESS;
  if (ld_of(&a->x) != c->ldx || ld_of(&a->w) != c->ldw || ld_of(&a->y) != c->ldy)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: row strides x %lld, w %lld, y %lld differ from the plan's %lld, %lld, %lld",
                    (long long)ld_of(&a->x), (long long)ld_of(&a->w), (long long)ld_of(&a->y), (long long)c->ldx,
                    (long long)c->ldw, (long long)c->ldy);
  int has_bias = gdn_tensor_present(&a->bias);
  if (has_bias != c->has_bias || (has_bias && a->bias.dtype != c->bias_dtype) || a->accumulate != c->accumulate)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: bias (%s) / accumulate (%d) differ from the plan's (%s / %d)",
                    has_bias ? gdn_dtype_name(a->bias.dtype) : "none", a->accumulate,
                    c->has_bias ? gdn_dtype_name(c->bias_dtype) : "none", c->accumulate);
  if (ptr_align(a->x.data) < c->align_x || ptr_align(a->w.data) < c->align_w || ptr_align(a->y.data) < c->align_y ||
      (has_bias && ptr_align(a->bias.data) < c->align_b))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "linear: pointer alignments x %u, w %u, y %u, bias %u are below the %u, %u, %u, %u bytes the plan assumed; re-plan",
                    ptr_align(a->x.data), ptr_align(a->w.data), ptr_align(a->y.data), has_bias ? ptr_align(a->bias.data) : 1u,
                    c->align_x, c->align_w, c->align_y, c->align_b);
  int dev = -1;
  GDN_CUDA_TRY(cudaGetDevice(&dev));
  if (dev != c->device)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear: the current device is %d, the plan was made on device %d", dev, c->device);
  return GDN_SUCCESS;
}

/* Enqueues the matmul (and the unfused bias) on `stream`. */
gdn_status enqueue(const gdn_linear_args *a, const gdn_linear_config *c, cudaStream_t stream) {
  if (c->has_bias && c->fused_bias) {
    const void *bp = a->bias.data;
    LT_TRY(cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
  }
  const float alpha = 1.0f, beta = a->accumulate ? 1.0f : 0.0f;
  LT_TRY(cublasLtMatmul(c->lt, c->desc, &alpha, a->w.data, c->la, a->x.data, c->lb, &beta, a->y.data, c->lc, a->y.data, c->lc,
                        &c->algo, c->workspace, c->workspace_bytes, stream));
  if (c->has_bias && !c->fused_bias) {
    gdn_linear_bias_params p;
    p.y = (char *)a->y.data;
    p.ldy = c->ldy;
    p.bias = (const char *)a->bias.data;
    p.bias_f32 = a->bias.dtype == GDN_DTYPE_F32;
    p.T = (int)c->T;
    p.N = (int)c->N;
    gdn_kernel_call call;
    call.func = c->dtype == GDN_DTYPE_BF16 ? (const void *)bias_add_kernel<__nv_bfloat16> : (const void *)bias_add_kernel<__half>;
    int64_t blocks = (c->T * c->N + 255) / 256;
    call.grid = dim3((unsigned)(blocks < 4096 ? blocks : 4096), 1, 1);
    call.block = dim3(256, 1, 1);
    call.smem = 0;
    call.params = &p;
    GDN_TRY(gdn_kernel_launch(&call, stream));
  }
  return GDN_SUCCESS;
}

/* (Re)creates c->desc from scratch: TN GEMM, fp32 compute and scale, and either the default
 * epilogue or BIAS with bias_type. Starting fresh means nothing of an abandoned fused-bias
 * attempt (epilogue, bias type, bias pointer) lingers on the unfused descriptor. */
cublasStatus_t make_desc(gdn_linear_config *c, int fused_bias, cudaDataType_t bias_type, const void *bias) {
  if (c->desc != NULL) {
    cublasLtMatmulDescDestroy(c->desc);
    c->desc = NULL;
  }
  cublasStatus_t s = cublasLtMatmulDescCreate(&c->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (s == CUBLAS_STATUS_SUCCESS && fused_bias) {
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    int32_t bt = (int32_t)bias_type;
    s = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  }
  return s;
}

/* One heuristic query for the current descriptor: the usable results (result state
 * SUCCESS), best-ranked first, up to GDN_LINEAR_MAX_CANDIDATES in res[0, *count). Returns
 * cuBLASLt's status; *count is 0 unless it is SUCCESS. */
cublasStatus_t query_algos(gdn_linear_config *c, cublasLtMatmulPreference_t pref, cublasLtMatmulHeuristicResult_t *res, int *count) {
  int n = 0;
  memset(res, 0, sizeof *res * GDN_LINEAR_MAX_CANDIDATES);
  cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(c->lt, c->desc, c->la, c->lb, c->lc, c->lc, pref, GDN_LINEAR_MAX_CANDIDATES, res, &n);
  *count = 0;
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  for (int i = 0; i < n && i < GDN_LINEAR_MAX_CANDIDATES; ++i)
    if (res[i].state == CUBLAS_STATUS_SUCCESS) res[(*count)++] = res[i];
  return s;
}

/* Preference: workspace cap (GDN_LINEAR_WORKSPACE_MB overrides), the pointer alignments
 * the algorithm may rely on, and split-K only with fp32 partial sums (NONE or
 * COMPUTE_TYPE): INPLACE and OUTPUT_TYPE reduce partial sums in the 16-bit output type,
 * i.e. extra roundings that break the "fp32 accumulation" this op promises. */
gdn_status make_pref(const gdn_linear_config *c, cublasLtMatmulPreference_t *pref, uint64_t *cap) {
  uint64_t max_ws = GDN_LINEAR_MAX_WORKSPACE;
  int mb = 0, r = gdn_param_int(GDN_PARAM_LINEAR_WORKSPACE_MB, &mb);
  if (r < 0) return GDN_ERROR_INVALID_ARGUMENT; /* gdn_param_int recorded the detail */
  if (r > 0 && (mb < 0 || mb > 4096)) return gdn_fail(GDN_ERROR_UNSUPPORTED, "GDN_LINEAR_WORKSPACE_MB=%d is outside 0..4096", mb);
  if (r > 0) max_ws = (uint64_t)mb << 20;
  *cap = max_ws;
  LT_TRY(cublasLtMatmulPreferenceCreate(pref));
  uint32_t al[4] = {c->align_w, c->align_x, c->align_y, c->align_y};
  uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], sizeof al[3]);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &red, sizeof red);
  if (s != CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceDestroy(*pref);
    *pref = NULL;
    return lt_fail(s, "cublasLtMatmulPreferenceSetAttribute");
  }
  return GDN_SUCCESS;
}

/* Chooses the epilogue and the algorithm. cuBLASLt (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE)
 * requires the bias type to equal the output type D except for int8 IMMA and fp8 kernels, so
 * for bf16/fp16 Y only a bias of Y's dtype can be fused; an fp32 bias there makes the
 * descriptor invalid (the heuristic answers CUBLAS_STATUS_INVALID_VALUE), so it is never
 * tried and goes to the bias kernel. A same-dtype bias is tried fused first; if cuBLASLt
 * offers nothing for it (any status, 0 results), the plain GEMM + bias kernel is used. */
gdn_status choose_algo(const gdn_linear_args *a, gdn_linear_config *c, cublasLtMatmulPreference_t pref,
                       cublasLtMatmulHeuristicResult_t *res, int *count) {
  *count = 0;
  char fused_note[128] = "";
  if (c->has_bias && c->bias_dtype == c->dtype) {
    cublasStatus_t fs = make_desc(c, 1, cuda_type(c->bias_dtype), a->bias.data);
    if (fs == CUBLAS_STATUS_SUCCESS) fs = query_algos(c, pref, res, count);
    if (*count == 0) snprintf(fused_note, sizeof fused_note, "; nor for the fused-bias epilogue (%s)", cublasLtGetStatusName(fs));
  }
  c->fused_bias = *count > 0;
  if (*count > 0) return GDN_SUCCESS;
  LT_TRY(make_desc(c, 0, CUDA_R_32F, NULL));
  cublasStatus_t s = query_algos(c, pref, res, count);
  if (*count > 0) return GDN_SUCCESS;
  if (s != CUBLAS_STATUS_SUCCESS && s != CUBLAS_STATUS_NOT_SUPPORTED) {
    /* The plain TN GEMM descriptor itself was refused: a bug or an unexpected library limit. */
    return gdn_fail(GDN_ERROR_CUBLAS,
                    "linear: cublasLtMatmulAlgoGetHeuristic failed: %s (%s) for T %lld, N %lld, Kin %lld %s (ld x %lld, w %lld, y %lld)",
                    cublasLtGetStatusName(s), cublasLtGetStatusString(s), (long long)c->T, (long long)c->N,
                    (long long)c->Kin, gdn_dtype_name(c->dtype), (long long)c->ldx, (long long)c->ldw, (long long)c->ldy);
  }
  return gdn_fail(GDN_ERROR_UNSUPPORTED,
                  "linear: cuBLASLt offers no algorithm for T %lld, N %lld, Kin %lld %s (ld x %lld, w %lld, y %lld; "
                  "align x %u, w %u, y %u bytes; GDN_LINEAR_WORKSPACE_MB can raise the workspace cap)%s",
                  (long long)c->T, (long long)c->N, (long long)c->Kin, gdn_dtype_name(c->dtype), (long long)c->ldx,
                  (long long)c->ldw, (long long)c->ldy, c->align_x, c->align_w, c->align_y, fused_note);
}

/* ---- plan-time selection among the heuristic's candidates */

/* Everything the heuristic list and the timing depend on; zero-filled, compared bytewise. */
typedef struct algo_key {
  int device, dtype, bias_dtype, has_bias, fused_bias, accumulate;
  int64_t T, N, Kin, ldx, ldw, ldy;
  unsigned align_x, align_w, align_y, align_b;
  uint64_t ws_cap;
} algo_key;

typedef struct algo_choice {
  algo_key key;
  int count, chosen, timed;
  float us[GDN_LINEAR_MAX_CANDIDATES];
} algo_choice;

/* The process's choices: one per GEMM and device, so every plan of a GEMM agrees. */
#define ALGO_CACHE 256
pthread_mutex_t g_choice_lock = PTHREAD_MUTEX_INITIALIZER;
algo_choice g_choices[ALGO_CACHE];
int g_num_choices;

/* The remembered choice for `key` over `count` candidates into *out; 0 when there is none. */
int find_choice(const algo_key *key, int count, algo_choice *out) {
  int found = 0;
  pthread_mutex_lock(&g_choice_lock);
  for (int i = 0; i < g_num_choices && !found; ++i)
    if (memcmp(&g_choices[i].key, key, sizeof *key) == 0 && g_choices[i].count == count) {
      *out = g_choices[i];
      found = 1;
    }
  pthread_mutex_unlock(&g_choice_lock);
  return found;
}

/* Remembers *ch, or when another thread got there first replaces *ch with its choice.
 * Returns 0 when the table is full (nothing remembered). */
int keep_choice(algo_choice *ch) {
  int kept = 1, found = 0;
  pthread_mutex_lock(&g_choice_lock);
  for (int i = 0; i < g_num_choices && !found; ++i)
    if (memcmp(&g_choices[i].key, &ch->key, sizeof ch->key) == 0 && g_choices[i].count == ch->count) {
      *ch = g_choices[i];
      found = 1;
    }
  if (!found) {
    if (g_num_choices < ALGO_CACHE) g_choices[g_num_choices++] = *ch;
    else kept = 0;
  }
  pthread_mutex_unlock(&g_choice_lock);
  return kept;
}

/* Every candidate once untimed (its kernels load lazily; the clocks ramp), then GDN_LINEAR_
 * TIMING_REPS times each (interleaved) between events, on the plan's stream, in place on a
 * scratch output exactly as the real call runs in place on y (C = D): us[i] is the fastest
 * of its runs, < 0 where the matmul failed. Accumulating, y is copied into the scratch
 * before every run. Reads x, w, bias and (accumulate) y; writes only the scratch and the
 * workspace. Returns 0 when nothing could be timed (no scratch memory, a failed event). */
#define GDN_LINEAR_TIMING_REPS 3
int time_candidates(const gdn_linear_args *a, const gdn_linear_config *c, const cublasLtMatmulHeuristicResult_t *res,
                    int count, float *us) {
  size_t ws = 0;
  for (int i = 0; i < count; ++i) ws = res[i].workspaceSize > ws ? res[i].workspaceSize : ws;
  const size_t esz = gdn_dtype_size(c->dtype), out_bytes = (size_t)c->T * (size_t)c->ldy * esz;
  void *out = NULL, *work = NULL;
  cudaEvent_t ev[2 * GDN_LINEAR_MAX_CANDIDATES];
  int nev = 0, ok = 1;
  if (cudaMalloc(&out, out_bytes) != cudaSuccess) out = NULL, ok = 0;
  if (ok && ws > 0 && cudaMalloc(&work, ws) != cudaSuccess) work = NULL, ok = 0;
  for (int i = 0; ok && i < 2 * count; ++i) {
    ok = cudaEventCreate(&ev[i]) == cudaSuccess;
    nev += ok;
  }
  const float alpha = 1.0f, beta = a->accumulate ? 1.0f : 0.0f;
  cublasStatus_t st[GDN_LINEAR_MAX_CANDIDATES];
  for (int i = 0; i < count; ++i) us[i] = -1.0f;
  for (int pass = 0; ok && pass <= GDN_LINEAR_TIMING_REPS; ++pass) {
    for (int i = 0; ok && i < count; ++i) {
      if (a->accumulate) /* the y rows (T x N of pitch ldy), outside the timed span */
        ok = cudaMemcpy2DAsync(out, (size_t)c->ldy * esz, a->y.data, (size_t)c->ldy * esz, (size_t)c->N * esz,
                               (size_t)c->T, cudaMemcpyDeviceToDevice, c->capture) == cudaSuccess;
      if (pass > 0) ok = ok && cudaEventRecord(ev[2 * i], c->capture) == cudaSuccess;
      cublasStatus_t s = cublasLtMatmul(c->lt, c->desc, &alpha, a->w.data, c->la, a->x.data, c->lb, &beta, out, c->lc,
                                        out, c->lc, &res[i].algo, work, res[i].workspaceSize, c->capture);
      if (pass == 0) st[i] = s;
      if (pass > 0) ok = ok && cudaEventRecord(ev[2 * i + 1], c->capture) == cudaSuccess;
    }
    if (pass == 0) continue;
    ok = ok && cudaStreamSynchronize(c->capture) == cudaSuccess;
    for (int i = 0; ok && i < count; ++i) {
      float ms = 0.0f;
      if (st[i] != CUBLAS_STATUS_SUCCESS || cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]) != cudaSuccess) continue;
      if (us[i] < 0.0f || ms * 1000.0f < us[i]) us[i] = ms * 1000.0f;
    }
  }
  cudaStreamSynchronize(c->capture); /* before the scratch is freed */
  for (int i = 0; i < nev; ++i) cudaEventDestroy(ev[i]);
  if (work != NULL) cudaFree(work);
  if (out != NULL) cudaFree(out);
  cudaGetLastError(); /* a failed allocation or event here is not the caller's error */
  return ok;
}

/* Fixes c->algo among res[0, count) (GDN_LINEAR_ALGO, the remembered choice, or timing). */
gdn_status select_algo(const gdn_linear_args *a, gdn_linear_config *c, const cublasLtMatmulHeuristicResult_t *res, int count,
                       uint64_t ws_cap) {
  int k = -1, r = gdn_param_int(GDN_PARAM_LINEAR_ALGO, &k);
  if (r < 0) return GDN_ERROR_INVALID_ARGUMENT; /* gdn_param_int recorded the detail */
  if (k < -1 || k >= GDN_LINEAR_MAX_CANDIDATES)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "GDN_LINEAR_ALGO=%d is outside -1..%d", k, GDN_LINEAR_MAX_CANDIDATES - 1);
  algo_choice ch;
  memset(&ch, 0, sizeof ch);
  ch.key.device = c->device;
  ch.key.dtype = (int)c->dtype;
  ch.key.bias_dtype = c->has_bias ? (int)c->bias_dtype : -1;
  ch.key.has_bias = c->has_bias;
  ch.key.fused_bias = c->fused_bias;
  ch.key.accumulate = c->accumulate;
  ch.key.T = c->T;
  ch.key.N = c->N;
  ch.key.Kin = c->Kin;
  ch.key.ldx = c->ldx;
  ch.key.ldw = c->ldw;
  ch.key.ldy = c->ldy;
  ch.key.align_x = c->align_x;
  ch.key.align_w = c->align_w;
  ch.key.align_y = c->align_y;
  ch.key.align_b = c->align_b;
  ch.key.ws_cap = ws_cap;
  ch.count = count;
  if (k >= 0) {
    ch.chosen = k < count ? k : count - 1;
  } else if (count > 1 && !find_choice(&ch.key, count, &ch)) {
    pthread_mutex_lock(&g_choice_lock);
    const int room = g_num_choices < ALGO_CACHE;
    pthread_mutex_unlock(&g_choice_lock);
    if (room && time_candidates(a, c, res, count, ch.us)) {
      ch.timed = 1;
      for (int i = 1; i < count; ++i)
        if (ch.us[i] >= 0 && (ch.us[ch.chosen] < 0 || ch.us[i] < ch.us[ch.chosen])) ch.chosen = i;
      if (ch.us[ch.chosen] < 0) ch.timed = 0; /* none ran: the heuristic's first, not remembered */
    }
    /* Only a timed choice is remembered (a plan that found no scratch memory takes the
     * heuristic's first and a later plan times again); with the table full, the
     * heuristic's first, as for every later plan of this GEMM. */
    if (!ch.timed || !keep_choice(&ch)) {
      ch.chosen = 0;
      ch.timed = 0;
    }
  }
  c->algo = res[ch.chosen].algo;
  c->workspace_bytes = res[ch.chosen].workspaceSize;
  gdn_linear_algo_info *in = &c->info;
  in->num_candidates = count;
  in->chosen = ch.chosen;
  in->timed = ch.timed;
  for (int i = 0; i < count; ++i) {
    in->us[i] = ch.timed ? ch.us[i] : 0.0f;
    in->workspace[i] = res[i].workspaceSize;
  }
  memcpy(in->algo, &c->algo, sizeof c->algo);
  return GDN_SUCCESS;
}

gdn_status plan_into(const gdn_linear_args *a, gdn_linear_config *c) {
  c->T = a->x.sizes[0];
  c->N = a->w.sizes[0];
  c->Kin = a->x.sizes[1];
  c->dtype = a->x.dtype;
  c->has_bias = gdn_tensor_present(&a->bias);
  c->bias_dtype = c->has_bias ? a->bias.dtype : a->x.dtype;
  c->accumulate = a->accumulate;
  GDN_CUDA_TRY(cudaGetDevice(&c->device));
  c->info.chosen = -1;
  if (c->T == 0 || c->N == 0) {
    c->empty = 1; /* nothing to compute; add_node adds an empty node */
    return GDN_SUCCESS;
  }
  c->ldx = ld_of(&a->x);
  c->ldw = ld_of(&a->w);
  c->ldy = ld_of(&a->y);
  c->align_x = ptr_align(a->x.data);
  c->align_w = ptr_align(a->w.data);
  c->align_y = ptr_align(a->y.data);
  c->align_b = c->has_bias ? ptr_align(a->bias.data) : 1;

  cudaDataType_t t = cuda_type(c->dtype);
  LT_TRY(cublasLtCreate(&c->lt));
  LT_TRY(cublasLtMatrixLayoutCreate(&c->la, t, (uint64_t)c->Kin, (uint64_t)c->N, c->ldw));
  LT_TRY(cublasLtMatrixLayoutCreate(&c->lb, t, (uint64_t)c->Kin, (uint64_t)c->T, c->ldx));
  LT_TRY(cublasLtMatrixLayoutCreate(&c->lc, t, (uint64_t)c->N, (uint64_t)c->T, c->ldy));

  cublasLtMatmulPreference_t pref = NULL;
  uint64_t ws_cap = 0;
  GDN_TRY(make_pref(c, &pref, &ws_cap));
  cublasLtMatmulHeuristicResult_t res[GDN_LINEAR_MAX_CANDIDATES];
  int count = 0;
  gdn_status st = choose_algo(a, c, pref, res, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  GDN_TRY(st);
  GDN_CUDA_TRY(cudaStreamCreateWithFlags(&c->capture, cudaStreamNonBlocking));
  GDN_TRY(select_algo(a, c, res, count, ws_cap));
  if (c->workspace_bytes > 0) GDN_CUDA_TRY(cudaMalloc(&c->workspace, c->workspace_bytes));
  return GDN_SUCCESS;
}

} /* namespace */

extern "C" void gdn_linear_destroy(gdn_linear_config *c) {
  if (c == NULL) return;
  if (c->capture != NULL) cudaStreamDestroy(c->capture);
  if (c->workspace != NULL) cudaFree(c->workspace);
  if (c->la != NULL) cublasLtMatrixLayoutDestroy(c->la);
  if (c->lb != NULL) cublasLtMatrixLayoutDestroy(c->lb);
  if (c->lc != NULL) cublasLtMatrixLayoutDestroy(c->lc);
  if (c->desc != NULL) cublasLtMatmulDescDestroy(c->desc);
  if (c->lt != NULL) cublasLtDestroy(c->lt);
  free(c);
}

extern "C" gdn_status gdn_linear_plan(const gdn_linear_args *args, const gdn_device_info *dev, gdn_linear_config **cfg) {
  gdn_clear_last_error();
  if (cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear_plan: cfg is NULL");
  *cfg = NULL;
  GDN_TRY(gdn_linear_validate(args));
  if (dev == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear_plan: dev is NULL");
  gdn_linear_config *c = (gdn_linear_config *)calloc(1, sizeof *c);
  if (c == NULL) return gdn_fail(GDN_ERROR_OUT_OF_MEMORY, "linear_plan: host allocation failed");
  gdn_status s = plan_into(args, c);
  if (s != GDN_SUCCESS) {
    gdn_linear_destroy(c);
    return s;
  }
  *cfg = c;
  return GDN_SUCCESS;
}

extern "C" size_t gdn_linear_workspace_bytes(const gdn_linear_config *c) { return c != NULL ? c->workspace_bytes : 0; }

extern "C" int gdn_linear_bias_fused(const gdn_linear_config *c) { return c != NULL && c->has_bias && c->fused_bias; }

extern "C" gdn_status gdn_linear_algo_info_of(const gdn_linear_config *c, gdn_linear_algo_info *info) {
  gdn_clear_last_error();
  if (c == NULL || info == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear_algo_info: plan and info must not be NULL");
  *info = c->info;
  return GDN_SUCCESS;
}

extern "C" gdn_status gdn_linear_launch(const gdn_linear_args *args, const gdn_linear_config *cfg, cudaStream_t stream) {
  gdn_clear_last_error();
  GDN_TRY(check_against_plan(args, cfg));
  if (cfg->empty) return GDN_SUCCESS;
  return enqueue(args, cfg, stream);
}

extern "C" gdn_status gdn_linear_add_node(const gdn_linear_args *args, const gdn_linear_config *cfg, cudaGraph_t graph,
                                          const cudaGraphNode_t *deps, size_t num_deps, cudaGraphNode_t *node) {
  gdn_clear_last_error();
  if (graph == NULL || node == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "linear_add_node: graph and node must not be NULL");
  GDN_TRY(check_against_plan(args, cfg));
  if (cfg->empty) {
    GDN_CUDA_TRY(cudaGraphAddEmptyNode(node, graph, deps, num_deps));
    return GDN_SUCCESS;
  }
  GDN_TRY(gdn_capture_begin(cfg->capture, graph, deps, num_deps));
  gdn_status s = enqueue(args, cfg, cfg->capture);
  if (s != GDN_SUCCESS) {
    gdn_capture_abort(cfg->capture);
    return s;
  }
  return gdn_capture_end(cfg->capture, graph, node);
}
