/* NCCL all-reduce with one rank on device 0: the sum over one rank is the identity, so
 * the buffer must come back bit-identical, eagerly and through a graph (memcpy node ->
 * all-reduce node -> memcpy node, replayed with fresh inputs). Also: validation, count 0
 * (empty node), NCCL error mapping. Exact comparison: nothing is rounded. */
#include <stdlib.h>
#include <string.h>
#include <nccl.h>
#include "gdn/allreduce.h"
#include "gpu_util.h"
#include "ops/allreduce/nccl_util.h"

static void run_dtype(ncclComm_t comm, gdn_dtype dt, gdn_rng *rng, cudaStream_t stream) {
  const size_t n = 100003, es = gdn_dtype_size(dt), bytes = n * es;
  double *x = gdn_dalloc(n);
  void *in_h, *out_h;
  CUDA_OK(cudaMallocHost(&in_h, bytes));
  CUDA_OK(cudaMallocHost(&out_h, bytes));
  void *buf = gdn_dmalloc(bytes);

  /* Eager. */
  gdn_fill_normal(rng, x, n, 3.0);
  gdn_pack(dt, x, n, in_h);
  CUDA_OK(cudaMemcpy(buf, in_h, bytes, cudaMemcpyHostToDevice));
  CHECK_OK(gdn_allreduce_launch(comm, buf, n, dt, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaMemcpy(out_h, buf, bytes, cudaMemcpyDeviceToHost));
  CHECK(memcmp(in_h, out_h, bytes) == 0, "%s eager: 1-rank all-reduce changed the buffer", gdn_dtype_name(dt));

  /* Graph: upload -> all-reduce -> download. */
  cudaStream_t cap;
  CUDA_OK(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking));
  cudaGraph_t g;
  cudaGraphExec_t exec;
  cudaGraphNode_t up, ar, down;
  CUDA_OK(cudaGraphCreate(&g, 0));
  CUDA_OK(cudaGraphAddMemcpyNode1D(&up, g, NULL, 0, buf, in_h, bytes, cudaMemcpyHostToDevice));
  CHECK_OK(gdn_allreduce_add_node(g, &up, 1, comm, buf, n, dt, cap, &ar));
  CUDA_OK(cudaGraphAddMemcpyNode1D(&down, g, &ar, 1, out_h, buf, bytes, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaGraphInstantiate(&exec, g, 0));
  for (int rep = 0; rep < 3; ++rep) {
    gdn_fill_normal(rng, x, n, 3.0);
    gdn_pack(dt, x, n, in_h);
    memset(out_h, 0xFF, bytes);
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    CHECK(memcmp(in_h, out_h, bytes) == 0, "%s graph replay %d: result differs from the input", gdn_dtype_name(dt), rep);
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(g));
  CUDA_OK(cudaStreamDestroy(cap));
  CUDA_OK(cudaFree(buf));
  CUDA_OK(cudaFreeHost(in_h));
  CUDA_OK(cudaFreeHost(out_h));
  free(x);
}

int main(void) {
  gdn_gpu_test_init("test_allreduce", 1);
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  gdn_rng rng;
  gdn_rng_seed(&rng, gdn_test_seed("test_allreduce"));
  CUDA_OK(cudaSetDevice(0));
  int dev0 = 0;
  ncclComm_t comm = NULL;
  CHECK_OK(gdn_nccl_comm_init_all(1, &dev0, &comm));
  if (comm == NULL) return gdn_test_finish("test_allreduce");
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const gdn_dtype dts[3] = {GDN_DTYPE_BF16, GDN_DTYPE_F16, GDN_DTYPE_F32};
  for (int i = 0; i < 3; ++i) run_dtype(comm, dts[i], &rng, stream);

  /* count 0: an empty node, nothing captured. */
  {
    cudaGraph_t g;
    cudaGraphNode_t node;
    cudaStream_t cap;
    CUDA_OK(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking));
    CUDA_OK(cudaGraphCreate(&g, 0));
    CHECK_OK(gdn_allreduce_add_node(g, NULL, 0, comm, NULL, 0, GDN_DTYPE_BF16, cap, &node));
    enum cudaGraphNodeType type;
    CUDA_OK(cudaGraphNodeGetType(node, &type));
    CHECK(type == cudaGraphNodeTypeEmpty, "count 0: node type %d, expected empty", (int)type);
    CUDA_OK(cudaGraphDestroy(g));
    CUDA_OK(cudaStreamDestroy(cap));
    CHECK_OK(gdn_allreduce_launch(comm, NULL, 0, GDN_DTYPE_F32, stream));
  }
  /* Validation and error mapping. */
  {
    void *buf = gdn_dmalloc(64);
    cudaGraph_t g;
    cudaGraphNode_t node;
    CUDA_OK(cudaGraphCreate(&g, 0));
    CHECK_STATUS(gdn_allreduce_launch(NULL, buf, 16, GDN_DTYPE_F32, stream), GDN_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(gdn_allreduce_launch(comm, buf, 16, GDN_DTYPE_I32, stream), GDN_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(gdn_allreduce_launch(comm, NULL, 16, GDN_DTYPE_F32, stream), GDN_ERROR_INVALID_ARGUMENT);
    /* The legacy default stream cannot be captured. */
    CHECK_STATUS(gdn_allreduce_add_node(g, NULL, 0, comm, buf, 16, GDN_DTYPE_F32, NULL, &node), GDN_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(gdn_allreduce_add_node(NULL, NULL, 0, comm, buf, 16, GDN_DTYPE_F32, stream, &node),
                 GDN_ERROR_INVALID_ARGUMENT);
    int bad = 1 << 20;
    ncclComm_t c2 = NULL;
    CHECK_STATUS(gdn_nccl_comm_init_all(0, NULL, &c2), GDN_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(gdn_nccl_comm_init_all(1, &bad, &c2), GDN_ERROR_INVALID_ARGUMENT);
    gdn_status s = gdn_nccl_fail(ncclInvalidArgument, comm, "ncclTest");
    CHECK(s == GDN_ERROR_NCCL, "gdn_nccl_fail returned %d", (int)s);
    CHECK(strstr(gdn_get_last_error(), "ncclTest failed") != NULL && strstr(gdn_get_last_error(), ncclGetErrorString(ncclInvalidArgument)) != NULL,
          "NCCL error message: '%s'", gdn_get_last_error());
    CUDA_OK(cudaGraphDestroy(g));
    CUDA_OK(cudaFree(buf));
  }
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaStreamDestroy(stream));
  ncclCommDestroy(comm);
  return gdn_test_finish("test_allreduce");
}
