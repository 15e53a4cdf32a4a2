/* Shared by the benches and the gdn-prefill tool: self-contained (no test helpers), a
 * CUDA error ends the program with the failing call named. */
#include "bench_util.h"

#include <cuda.h> /* driver types only: the functions come through cudaGetDriverEntryPointByVersion */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CUDA_OK(expr) bench_cuda_ok((expr), #expr)

static void bench_cuda_ok(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    fprintf(stderr, "FATAL: %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
  }
}

static void *bench_xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p == NULL) {
    fprintf(stderr, "FATAL: host allocation of %zu bytes failed\n", bytes);
    exit(1);
  }
  return p;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double gdn_bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double gdn_bench_median_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaEvent_t *ev = (cudaEvent_t *)bench_xmalloc(sizeof(cudaEvent_t) * 2 * (size_t)reps);
  for (int i = 0; i < 2 * reps; ++i) CUDA_OK(cudaEventCreate(&ev[i]));
  for (int i = 0; i < reps; ++i) {
    CUDA_OK(cudaEventRecord(ev[2 * i], stream));
    fn(ctx, stream);
    CUDA_OK(cudaEventRecord(ev[2 * i + 1], stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)bench_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    t[i] = ms * 1000.0;
  }
  for (int i = 0; i < 2 * reps; ++i) cudaEventDestroy(ev[i]);
  double m = gdn_bench_median(t, reps);
  free(t);
  free(ev);
  return m;
}

double gdn_bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

double gdn_bench_host_us(gdn_bench_fn fn, void *ctx, cudaStream_t stream, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(ctx, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  double *t = (double *)bench_xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    double t0 = gdn_bench_now_us();
    fn(ctx, stream);
    t[i] = gdn_bench_now_us() - t0;
    /* keep the queue short (4 calls, under the prefill plan's 16-slot descriptor ring)
     * so device back-pressure does not enter the host time */
    if (i % 4 == 3) CUDA_OK(cudaStreamSynchronize(stream));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  double m = gdn_bench_median(t, reps);
  free(t);
  return m;
}

typedef struct { void *dst; const void *src; size_t bytes; } copy_ctx;

static void run_copy(void *ctx, cudaStream_t s) {
  copy_ctx *c = (copy_ctx *)ctx;
  CUDA_OK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, s));
}

double gdn_bench_copy_gbps(size_t bytes, cudaStream_t stream) {
  copy_ctx c = {NULL, NULL, bytes};
  CUDA_OK(cudaMalloc(&c.dst, bytes));
  CUDA_OK(cudaMalloc((void **)&c.src, bytes));
  CUDA_OK(cudaMemset((void *)c.src, 1, bytes));
  double us = gdn_bench_median_us(run_copy, &c, stream, 5, 30);
  cudaFree(c.dst);
  cudaFree((void *)c.src);
  return 2.0 * (double)bytes / (us * 1e3);
}

void gdn_bench_gate_params(gdn_rng *r, int Hv, double *A_log, double *dt_bias) {
  for (int h = 0; h < Hv; ++h) {
    A_log[h] = log(1.0 + 15.0 * gdn_rng_uniform(r));
    const double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * gdn_rng_uniform(r));
    dt_bias[h] = dt + log(-expm1(-dt)); /* softplus^-1(dt) */
  }
}

/* ---- per-node timing of a graph */

typedef CUresult (*node_params_fn)(CUgraphNode, CUDA_KERNEL_NODE_PARAMS *);
typedef CUresult (*func_name_fn)(const char **, CUfunction);
typedef CUresult (*kernel_name_fn)(const char **, CUkernel);

static void *driver_entry(const char *sym) {
  void *fn = NULL;
  enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  cudaError_t e = cudaGetDriverEntryPointByVersion(sym, &fn, 12030, cudaEnableDefault, &q);
#else
  cudaError_t e = cudaGetDriverEntryPoint(sym, &fn, cudaEnableDefault, &q);
#endif
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess) {
    (void)cudaGetLastError();
    return NULL;
  }
  return fn;
}

/* Name, grid and block of a kernel node, through the driver: it knows the function of
 * nodes captured from libraries (cuBLASLt) as well as of the runtime's own. */
static void kernel_info(cudaGraphNode_t node, gdn_bench_node *out) {
  static int init;
  static node_params_fn get_params;
  static func_name_fn func_name;
  static kernel_name_fn kernel_name;
  if (!init) {
    init = 1;
    get_params = (node_params_fn)driver_entry("cuGraphKernelNodeGetParams");
    func_name = (func_name_fn)driver_entry("cuFuncGetName");
    kernel_name = (kernel_name_fn)driver_entry("cuKernelGetName");
  }
  CUDA_KERNEL_NODE_PARAMS p;
  memset(&p, 0, sizeof p);
  if (get_params == NULL || get_params((CUgraphNode)node, &p) != CUDA_SUCCESS) return;
  out->grid[0] = p.gridDimX, out->grid[1] = p.gridDimY, out->grid[2] = p.gridDimZ;
  out->block[0] = p.blockDimX, out->block[1] = p.blockDimY, out->block[2] = p.blockDimZ;
  const char *name = NULL;
  if (p.func != NULL && func_name != NULL && func_name(&name, p.func) == CUDA_SUCCESS) out->kernel = name;
  else if (p.kern != NULL && kernel_name != NULL && kernel_name(&name, p.kern) == CUDA_SUCCESS) out->kernel = name;
}

typedef struct exec_ctx { cudaGraphExec_t exec; } exec_ctx;

static void run_exec(void *ctx, cudaStream_t s) { CUDA_OK(cudaGraphLaunch(((exec_ctx *)ctx)->exec, s)); }

/* Node k alone, with the memset nodes that feed it directly: a kernel that finds its
 * workspace zeroed by a memset before it (cuBLASLt's split-K / stream-K semaphores) does
 * not do its work without it (measured: a 4.9 ms projection "ran" in 59 us alone). */
static double time_alone(cudaGraph_t g, cudaGraphNode_t *all, size_t n, size_t k, const cudaGraphNode_t *from,
                         const cudaGraphNode_t *to, size_t ne, cudaStream_t s, int warmup, int reps) {
  cudaGraph_t clone;
  CUDA_OK(cudaGraphClone(&clone, g));
  cudaGraphNode_t *mine = (cudaGraphNode_t *)bench_xmalloc(n * sizeof *mine);
  for (size_t i = 0; i < n; ++i) CUDA_OK(cudaGraphNodeFindInClone(&mine[i], all[i], clone));
  for (size_t i = 0; i < n; ++i) {
    int keep = i == k;
    enum cudaGraphNodeType type;
    CUDA_OK(cudaGraphNodeGetType(all[i], &type));
    for (size_t e = 0; e < ne && !keep; ++e) keep = type == cudaGraphNodeTypeMemset && from[e] == all[i] && to[e] == all[k];
    if (!keep) CUDA_OK(cudaGraphDestroyNode(mine[i]));
  }
  exec_ctx c;
  CUDA_OK(cudaGraphInstantiate(&c.exec, clone, 0));
  double us = gdn_bench_median_us(run_exec, &c, s, warmup, reps);
  CUDA_OK(cudaGraphExecDestroy(c.exec));
  CUDA_OK(cudaGraphDestroy(clone));
  free(mine);
  return us;
}

int gdn_bench_graph_nodes(cudaGraph_t g, cudaStream_t s, int warmup, int reps, gdn_bench_node *nodes, int max) {
  size_t n = 0, ne = 0;
  CUDA_OK(cudaGraphGetNodes(g, NULL, &n));
  cudaGraphNode_t *all = (cudaGraphNode_t *)bench_xmalloc((n ? n : 1) * sizeof *all);
  CUDA_OK(cudaGraphGetNodes(g, all, &n));
  /* Edge data is requested (not NULL) so a programmatic edge is not a lossy query. CUDA 13
   * gave the edge-data form (12.3's cudaGraphGetEdges_v2) the plain name. */
#if CUDART_VERSION >= 13000
  CUDA_OK(cudaGraphGetEdges(g, NULL, NULL, NULL, &ne));
#else
  CUDA_OK(cudaGraphGetEdges_v2(g, NULL, NULL, NULL, &ne));
#endif
  cudaGraphNode_t *from = (cudaGraphNode_t *)bench_xmalloc((ne ? ne : 1) * sizeof *from);
  cudaGraphNode_t *to = (cudaGraphNode_t *)bench_xmalloc((ne ? ne : 1) * sizeof *to);
  cudaGraphEdgeData *ed = (cudaGraphEdgeData *)bench_xmalloc((ne ? ne : 1) * sizeof *ed);
#if CUDART_VERSION >= 13000
  CUDA_OK(cudaGraphGetEdges(g, from, to, ed, &ne));
#else
  CUDA_OK(cudaGraphGetEdges_v2(g, from, to, ed, &ne));
#endif
  /* Kahn's algorithm; the lowest listed index first among the ready nodes. */
  int *indeg = (int *)calloc(n ? n : 1, sizeof(int)), *done = (int *)calloc(n ? n : 1, sizeof(int));
  for (size_t e = 0; e < ne; ++e)
    for (size_t i = 0; i < n; ++i)
      if (all[i] == to[e]) ++indeg[i];
  int count = 0;
  for (size_t step = 0; step < n; ++step) {
    size_t k = n;
    for (size_t i = 0; i < n && k == n; ++i)
      if (!done[i] && indeg[i] == 0) k = i;
    if (k == n) break; /* a cycle: cannot happen in a CUDA graph */
    done[k] = 1;
    for (size_t e = 0; e < ne; ++e)
      if (from[e] == all[k])
        for (size_t i = 0; i < n; ++i)
          if (all[i] == to[e]) --indeg[i];
    enum cudaGraphNodeType type;
    CUDA_OK(cudaGraphNodeGetType(all[k], &type));
    if (type == cudaGraphNodeTypeEmpty || count >= max) continue;
    gdn_bench_node *out = &nodes[count++];
    memset(out, 0, sizeof *out);
    out->type = (int)type;
    if (type == cudaGraphNodeTypeKernel) kernel_info(all[k], out);
    out->us = time_alone(g, all, n, k, from, to, ne, s, warmup, reps);
  }
  free(indeg);
  free(done);
  free(ed);
  free(to);
  free(from);
  free(all);
  return count;
}
