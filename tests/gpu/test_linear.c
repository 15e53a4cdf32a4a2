/* Linear (cuBLASLt) vs the float64 reference: bf16/fp16, strided X and Y, bias in the
 * output dtype and fp32, accumulate, odd shapes; eager and graph (add_node after a
 * memcpy node, instantiate, replay twice); plan checks at launch; T = 0. Plan-time algorithm
 * selection: the same GEMM planned twice takes the same algorithm, the timed choice is the
 * fastest measured, and every candidate of the heuristic's list (GDN_LINEAR_ALGO=k) meets
 * the same bound; out-of-range and non-integer knob values are refused.
 *
 * Error bound, per element, derived from the path the plan took. Inputs (X, W, Y_old,
 * bias) are rounded to their device dtypes first, so they are exact in the reference.
 * u = 2^-8 (bf16) / 2^-11 (fp16): a round-to-nearest of v to 16 bits errs by at most u|v|
 * (our bias kernel uses __float2bfloat16_rn / __float2half_rn); cuBLASLt does not document
 * the rounding mode of its output conversion, so its roundings get one ulp, 2u|v|
 * (faithful rounding). With p = (X W^T)[t,n], c = Y_old[t,n] (0 unless accumulate),
 * b = bias[n] (0 if none), ref = p + c + b, S = |p| + |c| + |b| (bounds every partial sum):
 *   - fp32 part: the dot product accumulates in fp32 (products of 16-bit values are exact;
 *     split-K only with fp32 partials), error <= ~Kin 2^-24 sum_k |x w|; we allow
 *     2^-23 (one ulp per add, in case the tensor-core adder truncates) and 8 more fp32 ops
 *     on S for the epilogue / bias kernel: (Kin + 8) 2^-23 (sum_k |x w| + S).
 *   - 16-bit roundings (k of them), by path:
 *     no bias:        D = rnd(p + c) in cuBLASLt: 2u |ref|.                         k = 1
 *     bias kernel:    rnd(p + c) by cuBLASLt, then rnd_n(y + b) in our kernel (fp32 add):
 *                     2u |p + c| + u |ref|.                                         k = 2
 *     fused epilogue: cuBLASLt documents one rounding of alpha AB + beta C + bias, but
 *                     with accumulate H100 exceeded the old tolerance 2^-7 |ref| +
 *                     2^-8 rms(ref) by 1.02-1.21x, which one rounding cannot (~0.4x in a
 *                     host simulation) and 2-3 roundings do (1.0-1.9x); so allow one
 *                     rounding per term, in any order:
 *                     2u |ref| + (k - 1) 2u S.                                      k = 2 + acc
 *     each bound times (1 + 2ku) for the rounding errors compounding.
 * So |y - ref| <= R (1 + 2ku) + (Kin + 8) 2^-23 (sum_k |x w| + S), R as above. The bound
 * stays far below the O(|b|), O(|c|), O(|p|) errors of a real bug, and the test checks
 * that: the device output with the bias (or Y_old) removed, or with the dot product of the
 * wrong weight row, must violate it.
 * Relative L2 (statistical): k independent round-to-nearest roundings give an RMS of about
 * sqrt(k) 0.43 u rms(S) (0.85 u per truncating one); rms(S) / rms(ref) <= 1.5 for these
 * inputs, so ~1.1 u for k = 3 (simulated 0.4-0.7 u). We require 2^-7 = 2u (bf16) /
 * 2^-9 = 4u (fp16); a missing bias gives ~0.3, a wrong weight ~1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/linear.h"
#include "gdn/reference.h"
#include "gpu_util.h"

typedef struct lin_case {
  const char *name;
  gdn_dtype dt;
  int T, N, Kin;
  int x_pad, w_pad, y_pad; /* extra elements per row */
  int bias;                /* 0 none, 1 fp32, 2 dtype */
  int accumulate;
} lin_case;

/* p = X W^T and a = |X| |W|^T (the magnitudes the fp32 dot product rounds against). */
static void dot_terms(int T, int N, int K, const double *x, const double *w, double *p, double *a) {
  for (int t = 0; t < T; ++t)
    for (int n = 0; n < N; ++n) {
      double s = 0, sa = 0;
      for (int k = 0; k < K; ++k) {
        double v = x[(size_t)t * K + k] * w[(size_t)n * K + k];
        s += v;
        sa += fabs(v);
      }
      p[(size_t)t * N + n] = s;
      a[(size_t)t * N + n] = sa;
    }
}

/* Per-element bound of the header comment for the path the plan took; returns k. */
static int error_bound(const lin_case *c, int fused, const double *p, const double *a, const double *yold,
                       const double *bias, const double *yref, double *bnd) {
  const double u = c->dt == GDN_DTYPE_BF16 ? ldexp(1.0, -8) : ldexp(1.0, -11);
  const double g = (c->Kin + 8) * ldexp(1.0, -23);
  /* Accumulate adds a rounding of the terms: measured on H100 (bf16, no bias: 20x over a
   * single-rounding bound), cuBLASLt rounds X W^T to the output type before adding Y_old. */
  const int acc = c->accumulate;
  const int k = !c->bias ? 1 + acc : !fused ? 2 + acc : 2 + acc;
  for (int t = 0; t < c->T; ++t)
    for (int n = 0; n < c->N; ++n) {
      size_t i = (size_t)t * c->N + n;
      double cv = acc ? yold[i] : 0.0, bv = c->bias ? bias[n] : 0.0;
      double S = fabs(p[i]) + fabs(cv) + fabs(bv);
      double terms = acc * (fabs(p[i]) + fabs(cv));
      double R = !c->bias ? 2 * u * (fabs(yref[i]) + terms)
                 : !fused  ? 2 * u * (fabs(p[i] + cv) + terms) + u * fabs(yref[i])
                           : 2 * u * (fabs(yref[i]) + (k - 1) * S);
      bnd[i] = R * (1 + 2 * k * u) + g * (a[i] + S);
    }
  return k;
}

/* max |y - ref| / bound (inf for a non-finite y). */
static double max_over_bound(const double *y, const double *ref, const double *bnd, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(y[i])) return INFINITY;
    double e = fabs(y[i] - ref[i]) / (bnd[i] + 1e-300);
    if (e > worst) worst = e;
  }
  return worst;
}

/* The bound must reject real bugs: the device output with the bias or Y_old left out, or
 * with the dot product of the wrong weight row (first rows only: a transposed or shifted W),
 * must exceed it somewhere. */
static void check_bound_rejects_bugs(const lin_case *c, const double *y, const double *yold, const double *bias,
                                     const double *p, const double *x, const double *w, const double *yref,
                                     const double *bnd) {
  const int T = c->T, N = c->N, K = c->Kin;
  size_t ny = (size_t)T * N;
  double *bad = gdn_dalloc(ny);
  if (c->bias) {
    for (size_t i = 0; i < ny; ++i) bad[i] = y[i] - bias[i % N];
    double e = max_over_bound(bad, yref, bnd, ny);
    CHECK(e > 1.0, "%s: the bound accepts a missing bias (max error / bound %.3g)", c->name, e);
  }
  if (c->accumulate) {
    for (size_t i = 0; i < ny; ++i) bad[i] = y[i] - yold[i];
    double e = max_over_bound(bad, yref, bnd, ny);
    CHECK(e > 1.0, "%s: the bound accepts a missing accumulate (max error / bound %.3g)", c->name, e);
  }
  const int rows = T < 4 ? T : 4;
  for (int t = 0; t < rows; ++t)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += x[(size_t)t * K + k] * w[(size_t)((n + 1) % N) * K + k];
      size_t i = (size_t)t * N + n;
      bad[i] = y[i] - p[i] + s;
    }
  double e = max_over_bound(bad, yref, bnd, (size_t)rows * N);
  CHECK(e > 1.0, "%s: the bound accepts a wrong weight row (max error / bound %.3g)", c->name, e);
  free(bad);
}

/* The plan's algorithm choice (see the header comment); y is reset from yinit_d before each
 * candidate's launch and compared over its valid columns. */
static void check_algos(const lin_case *c, const gdn_linear_args *a, const gdn_linear_config *plan, cudaStream_t stream,
                        const void *yinit_d, int64_t ldy, const double *yref, const double *bnd, double rt) {
  const int T = c->T, N = c->N;
  const size_t nyb = (size_t)T * ldy, ny = (size_t)T * N, es = gdn_dtype_size(c->dt);
  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  gdn_linear_algo_info info, again;
  CHECK_OK(gdn_linear_algo_info_of(plan, &info));
  CHECK(info.num_candidates >= 1 && info.num_candidates <= GDN_LINEAR_MAX_CANDIDATES && info.chosen >= 0 &&
            info.chosen < info.num_candidates,
        "%s: %d candidates, chosen %d", c->name, info.num_candidates, info.chosen);
  if (info.num_candidates < 1 || info.chosen < 0) return;
  CHECK(gdn_linear_workspace_bytes(plan) == info.workspace[info.chosen], "%s: workspace %zu, the chosen candidate asks %zu",
        c->name, gdn_linear_workspace_bytes(plan), info.workspace[info.chosen]);
  if (info.timed) {
    CHECK(info.us[info.chosen] >= 0, "%s: the chosen candidate failed to run at plan time", c->name);
    for (int i = 0; i < info.num_candidates; ++i)
      CHECK(info.us[i] < 0 || info.us[i] >= info.us[info.chosen], "%s: candidate %d (%.2f us) beats the chosen %d (%.2f us)",
            c->name, i, info.us[i], info.chosen, info.us[info.chosen]);
  }
  printf("    %d candidate(s), chosen %d%s\n", info.num_candidates, info.chosen, info.timed ? " (timed)" : "");
  gdn_linear_config *p2 = NULL;
  CHECK_OK(gdn_linear_plan(a, &dev, &p2));
  if (p2 != NULL) {
    CHECK_OK(gdn_linear_algo_info_of(p2, &again));
    CHECK(again.chosen == info.chosen && memcmp(again.algo, info.algo, sizeof info.algo) == 0,
          "%s: planned again, chose %d instead of %d", c->name, again.chosen, info.chosen);
    gdn_linear_destroy(p2);
  }
  double *yb = gdn_dalloc(nyb), *yv = gdn_dalloc(ny);
  for (int k = 0; k < info.num_candidates; ++k) {
    char val[16];
    snprintf(val, sizeof val, "%d", k);
    setenv("GDN_LINEAR_ALGO", val, 1);
    gdn_linear_config *pk = NULL;
    CHECK_OK(gdn_linear_plan(a, &dev, &pk));
    if (pk == NULL) continue;
    gdn_linear_algo_info ik;
    CHECK_OK(gdn_linear_algo_info_of(pk, &ik));
    CHECK(ik.chosen == k && !ik.timed, "%s: GDN_LINEAR_ALGO=%d chose %d (timed %d)", c->name, k, ik.chosen, ik.timed);
    CHECK(gdn_linear_bias_fused(pk) == gdn_linear_bias_fused(plan), "%s: candidate %d changed the bias path", c->name, k);
    CUDA_OK(cudaMemcpy(a->y.data, yinit_d, nyb * es, cudaMemcpyDeviceToDevice));
    CHECK_OK(gdn_linear_launch(a, pk, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    gdn_download(c->dt, a->y.data, nyb, yb);
    for (int t = 0; t < T; ++t) memcpy(yv + (size_t)t * N, yb + (size_t)t * ldy, (size_t)N * sizeof(double));
    double rel = gdn_rel_l2(yv, yref, ny), sc = max_over_bound(yv, yref, bnd, ny);
    CHECK(rel <= rt && sc <= 1.0, "%s: candidate %d: rel L2 %.3g, max error / bound %.3g", c->name, k, rel, sc);
    gdn_linear_destroy(pk);
  }
  gdn_linear_config *bad = NULL;
  setenv("GDN_LINEAR_ALGO", "8", 1);
  CHECK_STATUS(gdn_linear_plan(a, &dev, &bad), GDN_ERROR_UNSUPPORTED);
  setenv("GDN_LINEAR_ALGO", "-2", 1);
  CHECK_STATUS(gdn_linear_plan(a, &dev, &bad), GDN_ERROR_UNSUPPORTED);
  setenv("GDN_LINEAR_ALGO", "fast", 1);
  CHECK_STATUS(gdn_linear_plan(a, &dev, &bad), GDN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(gdn_get_last_error(), "GDN_LINEAR_ALGO") != NULL, "message names the knob: '%s'", gdn_get_last_error());
  unsetenv("GDN_LINEAR_ALGO");
  free(yb);
  free(yv);
}

static void run_case(const lin_case *c, gdn_rng *rng, cudaStream_t stream) {
  const int T = c->T, N = c->N, K = c->Kin;
  const int64_t ldx = K + c->x_pad, ldw = K + c->w_pad, ldy = N + c->y_pad;
  const size_t es = gdn_dtype_size(c->dt);
  size_t nxb = (size_t)T * ldx, nwb = (size_t)N * ldw, nyb = (size_t)T * ldy;
  double *xb = gdn_dalloc(nxb), *wb = gdn_dalloc(nwb), *yb0 = gdn_dalloc(nyb), *bias = gdn_dalloc(N);
  gdn_fill_normal(rng, xb, nxb, 1.0);
  gdn_fill_normal(rng, wb, nwb, 1.0 / sqrt((double)K));
  gdn_fill_normal(rng, yb0, nyb, 1.0);
  gdn_fill_normal(rng, bias, N, 0.5);
  gdn_round_to(c->dt, xb, nxb);
  gdn_round_to(c->dt, wb, nwb);
  gdn_round_to(c->dt, yb0, nyb);
  gdn_round_to(c->bias == 1 ? GDN_DTYPE_F32 : c->dt, bias, N);
  double *x = gdn_dalloc((size_t)T * K), *w = gdn_dalloc((size_t)N * K), *yref = gdn_dalloc((size_t)T * N);
  double *yold = gdn_dalloc((size_t)T * N), *p = gdn_dalloc((size_t)T * N), *pa = gdn_dalloc((size_t)T * N);
  double *bnd = gdn_dalloc((size_t)T * N);
  for (int t = 0; t < T; ++t) memcpy(x + (size_t)t * K, xb + (size_t)t * ldx, K * sizeof(double));
  for (int n = 0; n < N; ++n) memcpy(w + (size_t)n * K, wb + (size_t)n * ldw, K * sizeof(double));
  for (int t = 0; t < T; ++t) memcpy(yold + (size_t)t * N, yb0 + (size_t)t * ldy, N * sizeof(double));
  memcpy(yref, yold, (size_t)T * N * sizeof(double));
  gdn_ref_linear(T, N, K, x, w, c->bias ? bias : NULL, c->accumulate, yref);
  dot_terms(T, N, K, x, w, p, pa);

  void *x_d = gdn_upload(c->dt, xb, nxb), *w_d = gdn_upload(c->dt, wb, nwb);
  void *b_d = c->bias ? gdn_upload(c->bias == 1 ? GDN_DTYPE_F32 : c->dt, bias, N) : NULL;
  /* y's initial contents: the old Y (accumulate) or poison; pad columns keep them. */
  void *yinit_d = gdn_upload(c->dt, yb0, nyb);
  if (!c->accumulate) gdn_poison(yinit_d, nyb * es);
  void *y_d = gdn_dmalloc(nyb * es);
  double *yinit = gdn_dalloc(nyb);
  gdn_download(c->dt, yinit_d, nyb, yinit);

  gdn_linear_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_2d(x_d, c->dt, T, K);
  a.x.strides[0] = ldx;
  a.w = gdn_tensor_2d(w_d, c->dt, N, K);
  a.w.strides[0] = ldw;
  a.y = gdn_tensor_2d(y_d, c->dt, T, N);
  a.y.strides[0] = ldy;
  a.bias = c->bias ? gdn_tensor_1d(b_d, c->bias == 1 ? GDN_DTYPE_F32 : c->dt, N) : gdn_tensor_none();
  a.accumulate = c->accumulate;

  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  gdn_linear_config *plan = NULL;
  CHECK_OK(gdn_linear_plan(&a, &dev, &plan));
  if (plan == NULL) return;
  const int fused = gdn_linear_bias_fused(plan);
  CHECK(!(c->bias == 1 && fused), "%s: fp32 bias with 16-bit Y reported fused (cuBLASLt requires bias type = D type)", c->name);
  const int nround = error_bound(c, fused, p, pa, yold, bias, yref, bnd);
  printf("  %s: T %d N %d Kin %d workspace %zu bytes, bias %s, bound with %d 16-bit rounding(s)\n", c->name, T, N, K,
         gdn_linear_workspace_bytes(plan), !c->bias ? "none" : fused ? "fused" : "separate kernel", nround);

  double rt = c->dt == GDN_DTYPE_BF16 ? 1.0 / 128 : 1.0 / 512;
  double *yb = gdn_dalloc(nyb), *yv = gdn_dalloc((size_t)T * N), *eager = gdn_dalloc((size_t)T * N);
  size_t ny = (size_t)T * N;

  /* Eager. */
  CUDA_OK(cudaMemcpy(y_d, yinit_d, nyb * es, cudaMemcpyDeviceToDevice));
  CHECK_OK(gdn_linear_launch(&a, plan, stream));
  CUDA_OK(cudaStreamSynchronize(stream));

  /* Graph: memcpy (reset Y) -> linear; replayed twice. */
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaGraphNode_t cp, lin;
  CUDA_OK(cudaGraphCreate(&graph, 0));
  CUDA_OK(cudaGraphAddMemcpyNode1D(&cp, graph, NULL, 0, y_d, yinit_d, nyb * es, cudaMemcpyDeviceToDevice));
  for (int mode = 0; mode < 3; ++mode) {
    if (mode == 1) {
      CHECK_OK(gdn_linear_add_node(&a, plan, graph, &cp, 1, &lin));
      CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    }
    if (mode >= 1) {
      gdn_poison(y_d, nyb * es);
      CUDA_OK(cudaGraphLaunch(exec, stream));
      CUDA_OK(cudaStreamSynchronize(stream));
    }
    gdn_download(c->dt, y_d, nyb, yb);
    size_t gap_bad = 0;
    for (int t = 0; t < T; ++t)
      for (int64_t j = 0; j < ldy; ++j) {
        size_t i = (size_t)t * ldy + j;
        if (j < N) yv[(size_t)t * N + j] = yb[i];
        else if (!(yb[i] == yinit[i] || (isnan(yb[i]) && isnan(yinit[i])))) ++gap_bad;
      }
    const char *m = mode == 0 ? "eager" : mode == 1 ? "graph" : "graph replay 2";
    double rel = gdn_rel_l2(yv, yref, ny), sc = max_over_bound(yv, yref, bnd, ny);
    CHECK(rel <= rt, "%s %s: rel L2 %.3g > %.3g", c->name, m, rel, rt);
    CHECK(sc <= 1.0, "%s %s: max error / bound %.3g > 1", c->name, m, sc);
    CHECK(gap_bad == 0, "%s %s: %zu pad-column elements of Y changed", c->name, m, gap_bad);
    if (mode == 0) {
      memcpy(eager, yv, ny * sizeof(double));
      printf("    max error / bound %.3g, rel L2 %.3g\n", sc, rel);
      check_bound_rejects_bugs(c, yv, yold, bias, p, x, w, yref, bnd);
    } else {
      double d = gdn_rel_l2(yv, eager, ny);
      CHECK(d <= rt / 4, "%s %s: differs from eager (rel L2 %.3g)", c->name, m, d);
      if (mode == 1) printf("    graph vs eager: %s\n", d == 0.0 ? "bit-identical" : "close (not bit-identical)");
    }
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  check_algos(c, &a, plan, stream, yinit_d, ldy, yref, bnd, rt);

  /* The plan is checked at launch: other shapes, flags or weaker alignment are rejected. */
  gdn_linear_args b = a;
  b.accumulate = !a.accumulate;
  CHECK_STATUS(gdn_linear_launch(&b, plan, stream), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.x.sizes[0] = T - 1;
  b.y.sizes[0] = T - 1;
  CHECK_STATUS(gdn_linear_launch(&b, plan, stream), GDN_ERROR_INVALID_ARGUMENT);
  b = a;
  b.y.strides[0] = ldy + 8;
  CHECK_STATUS(gdn_linear_launch(&b, plan, stream), GDN_ERROR_INVALID_ARGUMENT);

  gdn_linear_destroy(plan);
  CUDA_OK(cudaFree(x_d));
  CUDA_OK(cudaFree(w_d));
  if (b_d) CUDA_OK(cudaFree(b_d));
  CUDA_OK(cudaFree(y_d));
  CUDA_OK(cudaFree(yinit_d));
  free(xb);
  free(wb);
  free(yb0);
  free(bias);
  free(x);
  free(w);
  free(yref);
  free(yinit);
  free(yb);
  free(yv);
  free(eager);
  free(yold);
  free(p);
  free(pa);
  free(bnd);
}

static void misc_checks(cudaStream_t stream) {
  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  /* Alignment: planned on 256-byte aligned pointers, launched on a 2-byte aligned x. */
  const int T = 16, N = 64, K = 64;
  char *x_d = (char *)gdn_dmalloc((size_t)(T * K + 8) * 2);
  void *w_d = gdn_dmalloc((size_t)N * K * 2), *y_d = gdn_dmalloc((size_t)T * N * 2);
  gdn_linear_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_2d(x_d, GDN_DTYPE_BF16, T, K);
  a.w = gdn_tensor_2d(w_d, GDN_DTYPE_BF16, N, K);
  a.y = gdn_tensor_2d(y_d, GDN_DTYPE_BF16, T, N);
  gdn_linear_config *plan = NULL;
  CHECK_OK(gdn_linear_plan(&a, &dev, &plan));
  gdn_linear_args b = a;
  b.x.data = x_d + 2;
  CHECK_STATUS(gdn_linear_launch(&b, plan, stream), GDN_ERROR_INVALID_ARGUMENT);
  gdn_linear_destroy(plan);

  /* T = 0: launch does nothing, add_node adds an empty node. */
  a.x.sizes[0] = 0;
  a.y.sizes[0] = 0;
  CHECK_OK(gdn_linear_plan(&a, &dev, &plan));
  CHECK_OK(gdn_linear_launch(&a, plan, stream));
  cudaGraph_t g;
  cudaGraphNode_t node;
  CUDA_OK(cudaGraphCreate(&g, 0));
  CHECK_OK(gdn_linear_add_node(&a, plan, g, NULL, 0, &node));
  enum cudaGraphNodeType type;
  CUDA_OK(cudaGraphNodeGetType(node, &type));
  CHECK(type == cudaGraphNodeTypeEmpty, "T = 0: node type %d, expected empty", (int)type);
  CUDA_OK(cudaGraphDestroy(g));
  gdn_linear_destroy(plan);
  gdn_linear_destroy(NULL);
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaFree(x_d));
  CUDA_OK(cudaFree(w_d));
  CUDA_OK(cudaFree(y_d));
}

int main(void) {
  gdn_gpu_test_init("test_linear", 1);
  gdn_rng rng;
  gdn_rng_seed(&rng, gdn_test_seed("test_linear"));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const lin_case cases[] = {
      /* name            dt              T    N     Kin   xpad wpad ypad bias acc */
      {"bf16_plain",     GDN_DTYPE_BF16, 100, 192,  256,  64,  0,   32,  0,   0},
      {"bf16_bias_bf16", GDN_DTYPE_BF16, 100, 192,  256,  0,   0,   0,   2,   0},
      {"bf16_bias_f32",  GDN_DTYPE_BF16, 100, 192,  256,  0,   8,   8,   1,   0},
      {"fp16_f32b_acc",  GDN_DTYPE_F16,  64,  128,  320,  0,   0,   16,  1,   1},
      {"bf16_acc",       GDN_DTYPE_BF16, 48,  256,  128,  0,   0,   0,   0,   1},
      {"bf16_bias_acc",  GDN_DTYPE_BF16, 48,  256,  128,  0,   0,   0,   2,   1},
      {"bf16_odd",       GDN_DTYPE_BF16, 37,  100,  72,   4,   4,   2,   2,   0},
      {"fp16_t1",        GDN_DTYPE_F16,  1,   64,   64,   0,   0,   0,   0,   0},
      {"bf16_outproj",   GDN_DTYPE_BF16, 64,  2048, 4096, 0,   0,   0,   0,   1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&cases[i], &rng, stream);
  misc_checks(stream);
  CUDA_OK(cudaStreamDestroy(stream));
  return gdn_test_finish("test_linear");
}
