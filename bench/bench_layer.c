/* Whole GDN layer prefill (in_proj -> conv1d -> GDN core -> gated RMSNorm -> out_proj
 * [-> all-reduce]) at Qwen3-Next shapes: hidden 2048, Hk 16, Hv 32, K = V = 128, W 4, bf16.
 *
 * TP1 on GPU 0: batches of 1 x 512, 1 x 8192 and 8 x 8192 tokens, each through the
 * instantiated graph of its bucket (gdn_layer_run: descriptor upload + one graph launch) and
 * through the eager path (gdn_layer_run_eager: the same operators launched one by one).
 * With >= 2 visible GPUs also TP2 (per rank Hk 8, Hv 16; the NCCL all-reduce of y inside
 * each rank's graph), one host thread per GPU; the slowest rank's median is reported.
 * Times are medians of CUDA-event-timed replays (bench_util), queued back to back.
 * Weights and inputs are random (values do not change the work); NCCL_NVLS_ENABLE=0 is set
 * before the communicators are created.
 *
 * Per-node breakdown (TP1, every batch): each node of the bucket's graph timed by itself (a
 * clone of the graph holding only that node, on the layer's buffers, after one full run of
 * the batch; gdn_bench_graph_nodes), named by its kernel, with the bytes it must move or
 * the FLOPs it must do and the share of its ceiling: floor = max(bytes / copy bandwidth,
 * FLOPs / 790 TFLOP/s), % ceil = floor / GPU time. Copy bandwidth is measured in the same
 * run (device-to-device cudaMemcpy of 1 GiB, bytes read + written). Bytes are the op's
 * compulsory traffic (inputs once, outputs once, the conv state read and written per
 * sequence); the GDN core kernels (batch setup .. o tail zero) get one line together, with
 * bench_prefill's floor of a fused forward.
 * Projections: the same GEMMs planned by gdn_linear (the layer's choice: the plan's choice
 * is remembered per GEMM and device in the process) vs cuBLASLt's heuristic list for the
 * GEMM (up to 16 candidates, each timed once after one untimed run). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cublasLt.h>
#include "bench_util.h"
#include "gpu_util.h"
#include "gdn/layer.h"
#include "gdn/linear.h"
#include "gdn/reference.h"

enum { HIDDEN = 2048, HK = 16, HV = 32, KD = 128, VD = 128, WC = 4, NUM_SLOTS = 16 };
#define NCONF 3
#define WARMUP 3
#define REPS 15

typedef struct conf {
  int seqs, len; /* seqs x len tokens */
} conf;

static const conf kConf[NCONF] = {{1, 512}, {1, 8192}, {8, 8192}};
static const gdn_prefill_bucket kBuckets[NCONF] = {{512, 1}, {8192, 1}, {65536, 8}};
#define T_CAP 65536
#define PEAK_TFLOPS 790.0 /* dense bf16 tensor-core rate of an H200: the projections' ceiling */
#define GEMM_CANDIDATES 16

static void die(const char *what, gdn_status st) {
  fprintf(stderr, "%s: %s (%s)\n", what, gdn_status_string(st), gdn_get_last_error());
  exit(1);
}

/* Fills a device buffer of n elements of dtype with normal(0, stddev) values: a host block
 * of up to 1 M values, tiled (the numbers do not matter for timing, only finiteness). */
static void fill_device(void *dev, gdn_dtype dt, size_t n, double stddev, gdn_rng *r) {
  const size_t block = n < (1u << 20) ? n : (1u << 20), es = gdn_dtype_size(dt);
  double *h = gdn_dalloc(block);
  gdn_fill_normal(r, h, block, stddev);
  void *packed = gdn_xmalloc(block * es);
  gdn_pack(dt, h, block, packed);
  for (size_t off = 0; off < n; off += block) {
    size_t cnt = n - off < block ? n - off : block;
    CUDA_OK(cudaMemcpy((char *)dev + off * es, packed, cnt * es, cudaMemcpyHostToDevice));
  }
  free(h);
  free(packed);
}

/* One rank's plan with random weights and its buffers, on the current device. */
typedef struct layer_inst {
  int Hk, Hv;
  void *x, *y, *w_in, *w_out; /* also used by the projection comparison */
  void *bufs[10];
  int nbufs;
  gdn_layer_plan *plan;
} layer_inst;

static void *dalloc_fill(layer_inst *L, gdn_dtype dt, size_t n, double stddev, gdn_rng *r) {
  void *p = gdn_dmalloc(n * gdn_dtype_size(dt));
  if (stddev > 0) fill_device(p, dt, n, stddev, r);
  else CUDA_OK(cudaMemset(p, 0, n * gdn_dtype_size(dt)));
  L->bufs[L->nbufs++] = p;
  return p;
}

static void layer_create(layer_inst *L, int Hk, int Hv, ncclComm_t comm, int device, uint64_t seed) {
  memset(L, 0, sizeof *L);
  L->Hk = Hk;
  L->Hv = Hv;
  gdn_rng r;
  gdn_rng_seed(&r, seed);
  const gdn_layer_layout lay = gdn_layer_layout_of(Hk, Hv, KD, VD);
  const gdn_dtype dt = GDN_DTYPE_BF16;
  const int64_t HvV = (int64_t)Hv * VD;
  void *w_in = dalloc_fill(L, dt, (size_t)lay.Dtot * HIDDEN, 1.0 / 45.25, &r);
  void *conv_w = dalloc_fill(L, dt, (size_t)lay.D * WC, 0.5, &r);
  void *A_log = dalloc_fill(L, GDN_DTYPE_F32, (size_t)Hv, 0.5, &r);
  void *dt_bias = dalloc_fill(L, GDN_DTYPE_F32, (size_t)Hv, 0.5, &r);
  void *norm_w = dalloc_fill(L, GDN_DTYPE_F32, VD, 1.0, &r);
  void *w_out = dalloc_fill(L, dt, (size_t)HIDDEN * HvV, 1.0 / 64.0, &r);
  void *x = dalloc_fill(L, dt, (size_t)T_CAP * HIDDEN, 1.0, &r);
  void *y = dalloc_fill(L, dt, (size_t)T_CAP * HIDDEN, 0.0, &r);
  L->x = x;
  L->y = y;
  L->w_in = w_in;
  L->w_out = w_out;
  void *state = dalloc_fill(L, GDN_DTYPE_F32, (size_t)NUM_SLOTS * Hv * VD * KD, 0.0, &r);
  void *conv = dalloc_fill(L, dt, (size_t)NUM_SLOTS * (WC - 1) * lay.D, 0.0, &r);
  gdn_layer_shape s = {HIDDEN, Hk, Hv, KD, VD, WC, dt, 1e-6, 1, 1, 0.f};
  gdn_layer_weights w;
  w.w_in = gdn_tensor_2d(w_in, dt, lay.Dtot, HIDDEN);
  w.conv_weight = gdn_tensor_2d(conv_w, dt, lay.D, WC);
  w.conv_bias = gdn_tensor_none();
  w.A_log = gdn_tensor_1d(A_log, GDN_DTYPE_F32, Hv);
  w.dt_bias = gdn_tensor_1d(dt_bias, GDN_DTYPE_F32, Hv);
  w.norm_weight = gdn_tensor_1d(norm_w, GDN_DTYPE_F32, VD);
  w.w_out = gdn_tensor_2d(w_out, dt, HIDDEN, HvV);
  gdn_layer_io io;
  io.x = gdn_tensor_2d(x, dt, T_CAP, HIDDEN);
  io.y = gdn_tensor_2d(y, dt, T_CAP, HIDDEN);
  io.state = gdn_tensor_4d(state, GDN_DTYPE_F32, NUM_SLOTS, Hv, VD, KD);
  io.conv_state = gdn_tensor_3d(conv, dt, NUM_SLOTS, WC - 1, lay.D);
  gdn_status st = gdn_layer_plan_create(&L->plan, &s, &w, &io, kBuckets, NCONF, comm, device);
  if (st != GDN_SUCCESS) die("gdn_layer_plan_create", st);
  CUDA_OK(cudaDeviceSynchronize()); /* the fills above ran on the legacy stream */
}

static void layer_free(layer_inst *L) {
  gdn_layer_plan_destroy(L->plan);
  for (int i = 0; i < L->nbufs; ++i) CUDA_OK(cudaFree(L->bufs[i]));
}

typedef struct run_ctx {
  gdn_layer_plan *plan;
  int n;
  int32_t cu[9], slots[8];
} run_ctx;

static void set_conf(run_ctx *c, gdn_layer_plan *p, const conf *cf) {
  c->plan = p;
  c->n = cf->seqs;
  c->cu[0] = 0;
  for (int i = 0; i < cf->seqs; ++i) {
    c->cu[i + 1] = c->cu[i] + cf->len;
    c->slots[i] = i;
  }
}

static void run_graph(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_layer_run(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) die("gdn_layer_run", st);
}

static void run_eager(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_layer_run_eager(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) die("gdn_layer_run_eager", st);
}

static void check_batches(gdn_layer_plan *p) {
  gdn_status st = gdn_layer_check_error(p);
  if (st != GDN_SUCCESS) die("gdn_layer_check_error", st);
}

/* ---------------------------------------------------------------- per-node breakdown */

enum { OP_OTHER, OP_IN_PROJ, OP_SETUP, OP_CONV, OP_PROLOGUE, OP_INTRA, OP_SCAN, OP_TAIL, OP_NORM, OP_OUT_PROJ, OP_BIAS, NUM_OPS };
static const char *const kOpName[NUM_OPS] = {"other",      "in_proj",    "batch setup",   "conv1d",   "prologue",   "chunk_intra",
                                             "chunk_scan", "o tail zero", "gated rmsnorm", "out_proj", "linear bias"};
/* Our kernels by a piece of their (mangled) names; anything else is cuBLASLt's. */
static const struct { const char *piece; int op; } kOurs[] = {
    {"conv1d_kernel", OP_CONV}, {"gated_rmsnorm", OP_NORM}, {"batch_setup", OP_SETUP}, {"prologue", OP_PROLOGUE},
    {"intra", OP_INTRA},        {"scan", OP_SCAN},          {"tail_zero", OP_TAIL},    {"bias_add", OP_BIAS}};

/* The operator of a node and where its recognizable name starts; a GEMM (cuBLASLt) before
 * conv1d is in_proj, after it out_proj. */
static int classify(const gdn_bench_node *nd, int after_conv, const char **shown) {
  *shown = nd->kernel != NULL ? nd->kernel : "";
  if (nd->type != cudaGraphNodeTypeKernel || nd->kernel == NULL) return OP_OTHER;
  for (size_t i = 0; i < sizeof kOurs / sizeof kOurs[0]; ++i) {
    const char *at = strstr(nd->kernel, kOurs[i].piece);
    if (at != NULL) {
      *shown = at;
      return kOurs[i].op;
    }
  }
  return after_conv ? OP_OUT_PROJ : OP_IN_PROJ;
}

typedef struct cost { double bytes, flops; } cost;

/* Compulsory traffic / arithmetic of an operator for a batch of T tokens in N sequences
 * run in a bucket of Tb rows (the projections and the norm's zero rows cover all Tb). */
static cost op_cost(int op, int Hk, int Hv, int T, int Tb, int N) {
  const gdn_layer_layout l = gdn_layer_layout_of(Hk, Hv, KD, VD);
  const double e = 2.0, HvV = (double)Hv * VD, D = (double)l.D;
  cost c = {0.0, 0.0};
  switch (op) {
    case OP_IN_PROJ:
      c.flops = 2.0 * Tb * (double)l.Dtot * HIDDEN;
      c.bytes = e * ((double)Tb * HIDDEN + (double)l.Dtot * HIDDEN + (double)Tb * l.Dtot);
      break;
    case OP_OUT_PROJ:
      c.flops = 2.0 * Tb * HIDDEN * HvV;
      c.bytes = e * ((double)Tb * HvV + HIDDEN * HvV + (double)Tb * HIDDEN);
      break;
    case OP_CONV: c.bytes = e * (2.0 * T * D + 2.0 * N * (WC - 1) * D + D * WC); break;
    case OP_PROLOGUE: c.bytes = (double)T * Hv * (2.0 * e + 8.0); break; /* a, b in; g_cum, beta (fp32) out */
    case OP_NORM: c.bytes = e * (2.0 * T * HvV + (double)Tb * HvV) + 4.0 * VD; break; /* o, z in; normed out */
    case OP_TAIL: c.bytes = e * (double)(Tb - T) * HvV; break;
    default: break;
  }
  return c;
}

/* bench_prefill's floor of the GDN core: the bytes of a fused forward (q, k, v, gates, o,
 * the fp32 state read and written per (sequence, head)) and 2.77 x 4 K V Hv FLOP per token. */
static cost core_cost(int Hk, int Hv, int T, int N) {
  cost c;
  c.bytes = (double)T * (2.0 * 2 * Hk * KD + 2.0 * 2 * Hv * VD + 8.0 * Hv) + (double)N * Hv * VD * KD * 8.0;
  c.flops = 2.77 * 4.0 * KD * VD * Hv * (double)T;
  return c;
}

static double floor_us(cost c, double copy_gbps) {
  const double b = c.bytes / (copy_gbps * 1e3), f = c.flops / (PEAK_TFLOPS * 1e6);
  return b > f ? b : f;
}

/* Per-batch figures kept for the summary at the end. */
typedef struct breakdown {
  double conv_us, conv_pct, in_us, in_pct, out_us, out_pct, nodes_us;
} breakdown;

#define MAX_NODES 64

static breakdown print_breakdown(gdn_layer_plan *plan, const run_ctx *c, const conf *cf, double graph_us, double copy_gbps,
                                 cudaStream_t s) {
  const int T = cf->seqs * cf->len, N = cf->seqs, bucket = gdn_layer_pick_bucket(plan, T, N);
  const int Tb = gdn_layer_bucket_at(plan, bucket).max_tokens;
  run_graph((void *)c, s); /* every node's inputs as the graph leaves them for this batch */
  CUDA_OK(cudaStreamSynchronize(s));
  gdn_bench_node nodes[MAX_NODES];
  const int n = gdn_bench_graph_nodes(gdn_layer_graph(plan, bucket), s, WARMUP, REPS, nodes, MAX_NODES);
  breakdown bd;
  memset(&bd, 0, sizeof bd);
  printf("\n%dx%d (bucket %d tokens): graph %.1f us; each node alone:\n", cf->seqs, cf->len, Tb, graph_us);
  printf("  %-2s %-13s %-40s %-22s %9s %6s %9s %8s %9s %7s\n", "#", "op", "kernel", "grid x block", "GPU us", "% lay",
         "MB", "GFLOP", "floor us", "% ceil");
  int after_conv = 0;
  double core_us = 0.0;
  for (int i = 0; i < n; ++i) {
    const char *shown = NULL;
    const int op = classify(&nodes[i], after_conv, &shown);
    after_conv |= op == OP_CONV;
    const cost k = op_cost(op, HK, HV, T, Tb, N);
    const double fl = floor_us(k, copy_gbps), us = nodes[i].us;
    char dims[48] = "", mb[16] = "-", gf[16] = "-", fls[16] = "-", pct[16] = "-";
    if (nodes[i].type == cudaGraphNodeTypeKernel)
      snprintf(dims, sizeof dims, "%ux%ux%u x %u", nodes[i].grid[0], nodes[i].grid[1], nodes[i].grid[2], nodes[i].block[0]);
    else
      snprintf(dims, sizeof dims, "(node type %d)", nodes[i].type);
    if (k.bytes > 0 || k.flops > 0 || op == OP_TAIL) {
      snprintf(mb, sizeof mb, "%.1f", k.bytes / 1e6);
      if (k.flops > 0) snprintf(gf, sizeof gf, "%.1f", k.flops / 1e9);
      snprintf(fls, sizeof fls, "%.1f", fl);
      snprintf(pct, sizeof pct, "%.1f", 100.0 * fl / us);
    }
    printf("  %-2d %-13s %-40.40s %-22s %9.1f %6.1f %9s %8s %9s %7s\n", i, kOpName[op], shown, dims, us, 100.0 * us / graph_us,
           mb, gf, fls, pct);
    bd.nodes_us += us;
    if (op == OP_SETUP || op == OP_PROLOGUE || op == OP_INTRA || op == OP_SCAN || op == OP_TAIL) core_us += us;
    if (op == OP_CONV) bd.conv_us += us, bd.conv_pct = 100.0 * fl / bd.conv_us;
    if (op == OP_IN_PROJ) bd.in_us += us;
    if (op == OP_OUT_PROJ) bd.out_us += us;
  }
  const cost core = core_cost(HK, HV, T, N);
  const double core_fl = floor_us(core, copy_gbps);
  printf("  GDN core (setup .. tail) %.1f us: fused-forward floor %.1f us (%.1f MB, %.1f GFLOP) = %.1f%% of it\n", core_us, core_fl,
         core.bytes / 1e6, core.flops / 1e9, core_us > 0 ? 100.0 * core_fl / core_us : 0.0);
  printf("  sum of the nodes alone %.1f us vs the graph %.1f us (the graph overlaps in_proj with setup; each node alone\n"
         "  pays its own launch and ramp)\n", bd.nodes_us, graph_us);
  if (bd.in_us > 0) bd.in_pct = 100.0 * floor_us(op_cost(OP_IN_PROJ, HK, HV, T, Tb, N), copy_gbps) / bd.in_us;
  if (bd.out_us > 0) bd.out_pct = 100.0 * floor_us(op_cost(OP_OUT_PROJ, HK, HV, T, Tb, N), copy_gbps) / bd.out_us;
  return bd;
}

/* ---------------------------------------------------------------- projections vs cuBLASLt's list */

#define LT_OK(expr) lt_ok((expr), #expr)

static void lt_ok(cublasStatus_t st, const char *what) {
  if (st != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "%s: %s\n", what, cublasLtGetStatusName(st));
    exit(1);
  }
}

static unsigned ptr_align(const void *p) {
  unsigned al = 256;
  while (al > 1 && (uintptr_t)p % al != 0) al >>= 1;
  return al;
}

typedef struct lin_ctx {
  const gdn_linear_args *a;
  gdn_linear_config *plan;
} lin_ctx;

static void run_linear(void *p, cudaStream_t s) {
  lin_ctx *c = (lin_ctx *)p;
  gdn_status st = gdn_linear_launch(c->a, c->plan, s);
  if (st != GDN_SUCCESS) die("gdn_linear_launch", st);
}

typedef struct gemm_result {
  double lib_us, best_us, first_us;
  int lib_idx, best_idx, n;
} gemm_result;

/* The GEMM of `a` (bf16, no bias, Y = X W^T: cuBLASLt's TN form as ops/linear builds it):
 * the linear plan's algorithm (median of REPS) vs each of cuBLASLt's heuristic candidates
 * for the same descriptor, layouts and preference (workspace cap, pointer alignments,
 * fp32-only split-K reductions), each timed once after one untimed run. */
static gemm_result gemm_compare(const char *name, const gdn_linear_args *a, cudaStream_t s) {
  gemm_result r;
  memset(&r, 0, sizeof r);
  const int64_t T = a->x.sizes[0], N = a->w.sizes[0], Kin = a->x.sizes[1];
  const double flops = 2.0 * T * N * Kin;
  gdn_device_info dev;
  gdn_status st = gdn_device_info_query(0, &dev);
  if (st != GDN_SUCCESS) die("gdn_device_info_query", st);
  gdn_linear_config *plan = NULL;
  st = gdn_linear_plan(a, &dev, &plan);
  if (st != GDN_SUCCESS) die("gdn_linear_plan", st);
  gdn_linear_algo_info info;
  st = gdn_linear_algo_info_of(plan, &info);
  if (st != GDN_SUCCESS) die("gdn_linear_algo_info_of", st);
  lin_ctx lc = {a, plan};
  r.lib_us = gdn_bench_median_us(run_linear, &lc, s, WARMUP, REPS);

  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, ly;
  cublasLtMatmulPreference_t pref;
  LT_OK(cublasLtCreate(&lt));
  LT_OK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  LT_OK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)Kin, (uint64_t)N, a->w.strides[0]));
  LT_OK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)Kin, (uint64_t)T, a->x.strides[0]));
  LT_OK(cublasLtMatrixLayoutCreate(&ly, CUDA_R_16BF, (uint64_t)N, (uint64_t)T, a->y.strides[0]));
  LT_OK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t max_ws = GDN_LINEAR_MAX_WORKSPACE;
  const char *mb = getenv("GDN_LINEAR_WORKSPACE_MB");
  if (mb != NULL && *mb) max_ws = (uint64_t)strtoull(mb, NULL, 10) << 20;
  uint32_t al[4] = {ptr_align(a->w.data), ptr_align(a->x.data), ptr_align(a->y.data), ptr_align(a->y.data)};
  uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws));
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]));
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]));
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]));
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], sizeof al[3]));
  LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &red, sizeof red));
  cublasLtMatmulHeuristicResult_t res[GEMM_CANDIDATES];
  memset(res, 0, sizeof res);
  LT_OK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ly, ly, pref, GEMM_CANDIDATES, res, &r.n));
  size_t ws = 0;
  for (int i = 0; i < r.n; ++i) ws = res[i].workspaceSize > ws ? res[i].workspaceSize : ws;
  void *work = ws ? gdn_dmalloc(ws) : NULL;
  const float alpha = 1.0f, beta = 0.0f;
  cudaEvent_t ev[2 * GEMM_CANDIDATES];
  cublasStatus_t ok[GEMM_CANDIDATES];
  for (int i = 0; i < 2 * r.n; ++i) CUDA_OK(cudaEventCreate(&ev[i]));
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < r.n; ++i) {
      if (pass) CUDA_OK(cudaEventRecord(ev[2 * i], s));
      cublasStatus_t e = cublasLtMatmul(lt, desc, &alpha, a->w.data, la, a->x.data, lb, &beta, a->y.data, ly, a->y.data, ly,
                                        &res[i].algo, work, res[i].workspaceSize, s);
      if (!pass) ok[i] = e;
      if (pass) CUDA_OK(cudaEventRecord(ev[2 * i + 1], s));
    }
  CUDA_OK(cudaStreamSynchronize(s));
  double us[GEMM_CANDIDATES];
  r.lib_idx = r.best_idx = -1;
  for (int i = 0; i < r.n; ++i) {
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    us[i] = ok[i] == CUBLAS_STATUS_SUCCESS && res[i].state == CUBLAS_STATUS_SUCCESS ? ms * 1e3 : -1.0;
    if (us[i] >= 0 && (r.best_idx < 0 || us[i] < us[r.best_idx])) r.best_idx = i;
    if (r.lib_idx < 0 && memcmp(&res[i].algo, info.algo, sizeof res[i].algo) == 0) r.lib_idx = i;
  }
  r.best_us = r.best_idx >= 0 ? us[r.best_idx] : 0.0;
  r.first_us = r.n > 0 ? us[0] : 0.0;
  const double tf = flops / 1e12;
#define PCT(t) ((t) > 0 ? 100.0 * flops / ((t) * 1e-6) / (PEAK_TFLOPS * 1e12) : 0.0)
  printf("  %-8s [%lld x %lld] x [%lld x %lld]^T, %.2f TFLOP: linear plan %.1f us = %.0f TFLOP/s (%.1f%% of %.0f), "
         "candidate %d of its %d (%s)\n",
         name, (long long)T, (long long)Kin, (long long)N, (long long)Kin, tf, r.lib_us, tf / (r.lib_us * 1e-6), PCT(r.lib_us),
         PEAK_TFLOPS, info.chosen, info.num_candidates, info.timed ? "fastest timed at plan time" : "not timed");
  printf("           cuBLASLt heuristic, %d candidates timed once: best #%d %.1f us (%.1f%%), first %.1f us (%.1f%%); "
         "the plan's is #%d here; plan / best %.3f\n",
         r.n, r.best_idx, r.best_us, PCT(r.best_us), r.first_us, PCT(r.first_us), r.lib_idx,
         r.best_us > 0 ? r.lib_us / r.best_us : 0.0);
  printf("           each (us):");
  for (int i = 0; i < r.n; ++i) printf(" %.1f%s", us[i], i == r.lib_idx ? "*" : "");
  printf("   (* the plan's)\n");
#undef PCT
  for (int i = 0; i < 2 * r.n; ++i) CUDA_OK(cudaEventDestroy(ev[i]));
  if (work) CUDA_OK(cudaFree(work));
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(ly);
  cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(lt);
  gdn_linear_destroy(plan);
  return r;
}

/* The layer's two projections for a bucket of Tb rows, over the bench's x, y and scratch
 * stand-ins for the plan's internal mixed / normed (same shapes, strides, alignment). */
static void compare_projections(const layer_inst *L, int Tb, void *mixed_s, void *normed_s, cudaStream_t s,
                                gemm_result *in, gemm_result *out) {
  const gdn_layer_layout lay = gdn_layer_layout_of(HK, HV, KD, VD);
  const int64_t ld = (lay.Dtot + 7) / 8 * 8, HvV = (int64_t)HV * VD; /* mixed rows: Dtot rounded up to 16 bytes */
  gdn_linear_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_2d(L->x, GDN_DTYPE_BF16, Tb, HIDDEN);
  a.w = gdn_tensor_2d(L->w_in, GDN_DTYPE_BF16, lay.Dtot, HIDDEN);
  a.bias = gdn_tensor_none();
  a.y = gdn_tensor_2d(mixed_s, GDN_DTYPE_BF16, Tb, lay.Dtot);
  a.y.strides[0] = ld;
  *in = gemm_compare("in_proj", &a, s);
  a.x = gdn_tensor_2d(normed_s, GDN_DTYPE_BF16, Tb, HvV);
  a.w = gdn_tensor_2d(L->w_out, GDN_DTYPE_BF16, HIDDEN, HvV);
  a.y = gdn_tensor_2d(L->y, GDN_DTYPE_BF16, Tb, HIDDEN);
  *out = gemm_compare("out_proj", &a, s);
}

/* ---------------------------------------------------------------- TP2 */

typedef struct tp_shared {
  int R;
  ncclComm_t comm[8];
  pthread_barrier_t barrier;
  double graph_us[8][NCONF], eager_us[8][NCONF];
} tp_shared;

typedef struct tp_rank {
  tp_shared *sh;
  int rank;
} tp_rank;

static void *tp_main(void *arg) {
  tp_rank *tr = (tp_rank *)arg;
  tp_shared *sh = tr->sh;
  const int r = tr->rank;
  CUDA_OK(cudaSetDevice(r));
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  layer_inst L;
  /* every rank creates its plan concurrently (NCCL may connect during the capture) */
  layer_create(&L, HK / sh->R, HV / sh->R, sh->comm[r], r, 1234 + (uint64_t)r);
  for (int i = 0; i < NCONF; ++i) {
    run_ctx c;
    set_conf(&c, L.plan, &kConf[i]);
    pthread_barrier_wait(&sh->barrier);
    sh->graph_us[r][i] = gdn_bench_median_us(run_graph, &c, s, WARMUP, REPS);
    pthread_barrier_wait(&sh->barrier);
    sh->eager_us[r][i] = gdn_bench_median_us(run_eager, &c, s, WARMUP, REPS);
  }
  CUDA_OK(cudaStreamSynchronize(s));
  check_batches(L.plan);
  layer_free(&L);
  CUDA_OK(cudaStreamDestroy(s));
  pthread_barrier_wait(&sh->barrier);
  gdn_status st = gdn_layer_comm_destroy(sh->comm[r]);
  if (st != GDN_SUCCESS) die("gdn_layer_comm_destroy", st);
  return NULL;
}

int main(void) {
  gdn_gpu_test_init("bench_layer", 1);
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  int ndev = 0;
  CUDA_OK(cudaGetDeviceCount(&ndev));
  printf("GDN layer prefill, Qwen3-Next shapes: hidden %d, Hk %d, Hv %d, K %d, V %d, W %d, bf16; %d GPU(s) visible\n",
         HIDDEN, HK, HV, KD, VD, WC, ndev);

  /* TP1 on GPU 0, with the per-node breakdown and the projections vs cuBLASLt's list */
  double g1[NCONF], e1[NCONF], copy_gbps = 0.0;
  breakdown bd[NCONF];
  gemm_result gin[NCONF], gout[NCONF];
  {
    CUDA_OK(cudaSetDevice(0));
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    copy_gbps = gdn_bench_copy_gbps((size_t)1 << 30, s);
    printf("copy bandwidth (device-to-device cudaMemcpy of 1 GiB, read + write): %.0f GB/s; bf16 ceiling %.0f TFLOP/s\n",
           copy_gbps, PEAK_TFLOPS);
    layer_inst L;
    layer_create(&L, HK, HV, NULL, 0, 1234);
    const gdn_layer_layout lay = gdn_layer_layout_of(HK, HV, KD, VD);
    gdn_rng r;
    gdn_rng_seed(&r, 99);
    void *mixed_s = gdn_dmalloc((size_t)T_CAP * (size_t)((lay.Dtot + 7) / 8 * 8) * 2);
    void *normed_s = gdn_dmalloc((size_t)T_CAP * HV * VD * 2);
    fill_device(normed_s, GDN_DTYPE_BF16, (size_t)T_CAP * HV * VD, 1.0, &r); /* random operands: zeros draw less power */
    for (int i = 0; i < NCONF; ++i) {
      run_ctx c;
      set_conf(&c, L.plan, &kConf[i]);
      g1[i] = gdn_bench_median_us(run_graph, &c, s, WARMUP, REPS);
      e1[i] = gdn_bench_median_us(run_eager, &c, s, WARMUP, REPS);
      bd[i] = print_breakdown(L.plan, &c, &kConf[i], g1[i], copy_gbps, s);
      compare_projections(&L, kBuckets[i].max_tokens, mixed_s, normed_s, s, &gin[i], &gout[i]);
    }
    CUDA_OK(cudaStreamSynchronize(s));
    check_batches(L.plan);
    CUDA_OK(cudaFree(mixed_s));
    CUDA_OK(cudaFree(normed_s));
    layer_free(&L);
    CUDA_OK(cudaStreamDestroy(s));
  }

  /* TP2 on GPUs 0 and 1 */
  int have2 = ndev >= 2;
  double g2[NCONF], e2[NCONF];
  if (have2) {
    static tp_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.R = 2;
    gdn_status st = gdn_layer_comm_init_all(2, NULL, sh.comm);
    if (st != GDN_SUCCESS) die("gdn_layer_comm_init_all", st);
    pthread_barrier_init(&sh.barrier, NULL, 2);
    tp_rank tr[2];
    pthread_t th[2];
    for (int r = 0; r < 2; ++r) {
      tr[r].sh = &sh;
      tr[r].rank = r;
      if (pthread_create(&th[r], NULL, tp_main, &tr[r]) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
      }
    }
    for (int r = 0; r < 2; ++r) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&sh.barrier);
    for (int i = 0; i < NCONF; ++i) {
      g2[i] = sh.graph_us[0][i] > sh.graph_us[1][i] ? sh.graph_us[0][i] : sh.graph_us[1][i];
      e2[i] = sh.eager_us[0][i] > sh.eager_us[1][i] ? sh.eager_us[0][i] : sh.eager_us[1][i];
    }
  }

  printf("\n%-10s | %12s %9s %12s %7s | %12s %9s %12s | %8s\n", "batch", "R=1 graph us", "ns/tok", "R=1 eager us",
         "eag/gr", "R=2 graph us", "ns/tok", "R=2 eager us", "R1/R2");
  for (int i = 0; i < NCONF; ++i) {
    const int T = kConf[i].seqs * kConf[i].len;
    char name[32];
    snprintf(name, sizeof name, "%dx%d", kConf[i].seqs, kConf[i].len);
    printf("%-10s | %12.1f %9.1f %12.1f %7.2f | ", name, g1[i], g1[i] * 1e3 / T, e1[i], e1[i] / g1[i]);
    if (have2)
      printf("%12.1f %9.1f %12.1f | %8.2f\n", g2[i], g2[i] * 1e3 / T, e2[i], g1[i] / g2[i]);
    else
      printf("%12s %9s %12s | %8s\n", "n/a", "n/a", "n/a", "n/a");
  }
  if (!have2) printf("(R=2 needs >= 2 visible GPUs)\n");
  printf("R=2: per rank Hk %d, Hv %d, the all-reduce of y [T_b, %d] bf16 inside the graph; slowest rank's median.\n",
         HK / 2, HV / 2, HIDDEN);
  printf("R=1 nodes alone (%% of ceiling: copy %.0f GB/s, %.0f TFLOP/s); projections: plan / best cuBLASLt candidate\n", copy_gbps,
         PEAK_TFLOPS);
  for (int i = 0; i < NCONF; ++i)
    printf("%dx%d: conv1d %.1f us %.1f%% | in_proj %.1f us %.1f%%, x%.3f | out_proj %.1f us %.1f%%, x%.3f | nodes %.1f us\n",
           kConf[i].seqs, kConf[i].len, bd[i].conv_us, bd[i].conv_pct, bd[i].in_us, bd[i].in_pct,
           gin[i].best_us > 0 ? gin[i].lib_us / gin[i].best_us : 0.0, bd[i].out_us, bd[i].out_pct,
           gout[i].best_us > 0 ? gout[i].lib_us / gout[i].best_us : 0.0, bd[i].nodes_us);
  return 0;
}
