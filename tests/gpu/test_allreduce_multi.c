/* NCCL all-reduce over every visible GPU (>= 2, else exit 77): one host thread per GPU,
 * each captures upload -> all-reduce -> download into its own graph and replays it with
 * fresh inputs; the result must equal the sum over ranks. Inputs are small integers, so
 * every partial sum is exact in bf16/fp16/fp32 and the comparison is exact. Eager launch
 * is checked once too. NCCL_NVLS_ENABLE=0 is set before the communicators are created. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <nccl.h>
#include "gdn/allreduce.h"
#include "gpu_util.h"

#define MAX_RANKS 16
#define REPS 3
#define COUNT 65537

typedef struct rank_ctx {
  int rank, nranks;
  ncclComm_t comm;
  gdn_dtype dt;
  uint64_t seed;
  int errors;
  char msg[512];
} rank_ctx;

/* Input of rank r, replay rep, element i: an integer in [-8, 8]. */
static double input_value(uint64_t seed, int rank, int rep, size_t i) {
  gdn_rng r;
  gdn_rng_seed(&r, seed ^ ((uint64_t)rank << 48) ^ ((uint64_t)rep << 40) ^ (uint64_t)i);
  return (double)((int)(gdn_rng_next(&r) % 17) - 8);
}

static void *rank_main(void *p) {
  rank_ctx *c = (rank_ctx *)p;
  const size_t n = COUNT, es = gdn_dtype_size(c->dt), bytes = n * es;
  CUDA_OK(cudaSetDevice(c->rank));
  cudaStream_t stream, cap;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking));
  void *in_h, *out_h, *buf;
  CUDA_OK(cudaMallocHost(&in_h, bytes));
  CUDA_OK(cudaMallocHost(&out_h, bytes));
  CUDA_OK(cudaMalloc(&buf, bytes));
  double *x = gdn_dalloc(n), *got = gdn_dalloc(n);

  /* rep -1: eager; reps 0..REPS-1: graph replays. */
  cudaGraph_t g = NULL;
  cudaGraphExec_t exec = NULL;
  for (int rep = -1; rep < REPS; ++rep) {
    for (size_t i = 0; i < n; ++i) x[i] = input_value(c->seed, c->rank, rep, i);
    gdn_pack(c->dt, x, n, in_h);
    memset(out_h, 0xFF, bytes);
    if (rep < 0) {
      CUDA_OK(cudaMemcpyAsync(buf, in_h, bytes, cudaMemcpyHostToDevice, stream));
      gdn_status s = gdn_allreduce_launch(c->comm, buf, n, c->dt, stream);
      if (s != GDN_SUCCESS) {
        snprintf(c->msg, sizeof c->msg, "eager launch: %s", gdn_get_last_error());
        c->errors++;
        break;
      }
      CUDA_OK(cudaMemcpyAsync(out_h, buf, bytes, cudaMemcpyDeviceToHost, stream));
    } else {
      if (g == NULL) {
        cudaGraphNode_t up, ar, down;
        CUDA_OK(cudaGraphCreate(&g, 0));
        CUDA_OK(cudaGraphAddMemcpyNode1D(&up, g, NULL, 0, buf, in_h, bytes, cudaMemcpyHostToDevice));
        gdn_status s = gdn_allreduce_add_node(g, &up, 1, c->comm, buf, n, c->dt, cap, &ar);
        if (s != GDN_SUCCESS) {
          snprintf(c->msg, sizeof c->msg, "add_node: %s", gdn_get_last_error());
          c->errors++;
          break;
        }
        CUDA_OK(cudaGraphAddMemcpyNode1D(&down, g, &ar, 1, out_h, buf, bytes, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaGraphInstantiate(&exec, g, 0));
      }
      CUDA_OK(cudaGraphLaunch(exec, stream));
    }
    CUDA_OK(cudaStreamSynchronize(stream));
    gdn_unpack(c->dt, out_h, n, got);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; ++i) {
      double want = 0;
      for (int r = 0; r < c->nranks; ++r) want += input_value(c->seed, r, rep, i);
      if (got[i] != want && bad++ == 0) first = i;
    }
    if (bad) {
      snprintf(c->msg, sizeof c->msg, "%s rep %d: %zu elements differ from the sum (first at %zu: %g)",
               gdn_dtype_name(c->dt), rep, bad, first, got[first]);
      c->errors++;
    }
  }
  if (exec) CUDA_OK(cudaGraphExecDestroy(exec));
  if (g) CUDA_OK(cudaGraphDestroy(g));
  CUDA_OK(cudaFree(buf));
  CUDA_OK(cudaFreeHost(in_h));
  CUDA_OK(cudaFreeHost(out_h));
  CUDA_OK(cudaStreamDestroy(stream));
  CUDA_OK(cudaStreamDestroy(cap));
  free(x);
  free(got);
  return NULL;
}

static void destroy_comm(void *p) { ncclCommDestroy(*(ncclComm_t *)p); }

static void *destroy_main(void *p) {
  destroy_comm(p);
  return NULL;
}

int main(void) {
  gdn_gpu_test_init("test_allreduce_multi", 2);
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  int ndev = 0;
  CUDA_OK(cudaGetDeviceCount(&ndev));
  if (ndev > MAX_RANKS) ndev = MAX_RANKS;
  uint64_t seed = gdn_test_seed("test_allreduce_multi");
  printf("test_allreduce_multi: %d ranks\n", ndev);
  ncclComm_t comms[MAX_RANKS];
  CHECK_OK(gdn_nccl_comm_init_all(ndev, NULL, comms));
  if (gdn_test_failures) return gdn_test_finish("test_allreduce_multi");

  const gdn_dtype dts[3] = {GDN_DTYPE_BF16, GDN_DTYPE_F16, GDN_DTYPE_F32};
  for (int d = 0; d < 3; ++d) {
    rank_ctx ctx[MAX_RANKS];
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < ndev; ++r) {
      memset(&ctx[r], 0, sizeof ctx[r]);
      ctx[r].rank = r;
      ctx[r].nranks = ndev;
      ctx[r].comm = comms[r];
      ctx[r].dt = dts[d];
      ctx[r].seed = seed + (uint64_t)d;
      CHECK(pthread_create(&th[r], NULL, rank_main, &ctx[r]) == 0, "pthread_create failed");
    }
    for (int r = 0; r < ndev; ++r) pthread_join(th[r], NULL);
    for (int r = 0; r < ndev; ++r) CHECK(ctx[r].errors == 0, "rank %d: %s", r, ctx[r].msg);
  }
  /* Each communicator destroyed from its own thread (destroy may synchronize the ranks). */
  pthread_t th[MAX_RANKS];
  for (int r = 0; r < ndev; ++r) pthread_create(&th[r], NULL, destroy_main, &comms[r]);
  for (int r = 0; r < ndev; ++r) pthread_join(th[r], NULL);
  return gdn_test_finish("test_allreduce_multi");
}
