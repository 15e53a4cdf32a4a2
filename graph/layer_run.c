/* The layer plan's run paths (graph replay, eager), accessors and communicator helpers. */
#include "core/cuda_util.h"
#include "gdn/allreduce.h"
#include "graph/layer_plan.h"

gdn_status gdn_layer_run(gdn_layer_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  gdn_clear_last_error();
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer plan is NULL");
  int bucket = -1;
  /* Host-side bucket choice + one descriptor copy; the graph's setup node checks it on the device. */
  GDN_TRY(gdn_prefill_upload(p->prefill, cu, slots, n, s, &bucket));
  GDN_CUDA_TRY(cudaGraphLaunch(p->b[bucket].exec, s));
  return GDN_SUCCESS;
}

static gdn_status run_eager(gdn_layer_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  int bucket = -1;
  GDN_TRY(gdn_prefill_upload(p->prefill, cu, slots, n, s, &bucket));
  gdn_layer_bucket_ops *b = &p->b[bucket];
  GDN_TRY(gdn_linear_launch(&b->in_args, b->in_cfg, s));
  GDN_TRY(gdn_prefill_launch_setup(p->prefill, bucket, s));
  GDN_TRY(gdn_conv1d_launch(&b->conv, &b->conv_cfg, s));
  GDN_TRY(gdn_prefill_launch_core(p->prefill, bucket, s));
  GDN_TRY(gdn_linear_launch(&b->out_args, b->out_cfg, s));
  if (p->comm != NULL) GDN_TRY(gdn_allreduce_launch(p->comm, b->reduce_buf, b->reduce_count, p->shape.dtype, s));
  return GDN_SUCCESS;
}

gdn_status gdn_layer_run_eager(gdn_layer_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  gdn_clear_last_error();
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer plan is NULL");
  int prev = 0;
  GDN_CUDA_TRY(cudaGetDevice(&prev));
  if (prev != p->device) GDN_CUDA_TRY(cudaSetDevice(p->device));
  gdn_status st = run_eager(p, cu, slots, n, s);
  if (prev != p->device) {
    cudaError_t e = cudaSetDevice(prev);
    if (st == GDN_SUCCESS && e != cudaSuccess) st = gdn_cuda_fail(e, "cudaSetDevice (restore)");
  }
  return st;
}

gdn_status gdn_layer_check_error(gdn_layer_plan *p) {
  gdn_clear_last_error();
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer plan is NULL");
  return gdn_prefill_check_error(p->prefill);
}

int gdn_layer_num_buckets(const gdn_layer_plan *p) { return p != NULL ? p->num_buckets : 0; }

gdn_prefill_bucket gdn_layer_bucket_at(const gdn_layer_plan *p, int i) {
  gdn_prefill_bucket none = {0, 0};
  return (p != NULL && i >= 0 && i < p->num_buckets) ? p->b[i].cap : none;
}

int gdn_layer_pick_bucket(const gdn_layer_plan *p, int num_tokens, int num_seqs) {
  return p != NULL ? gdn_prefill_pick_bucket(p->prefill, num_tokens, num_seqs) : -1;
}

cudaGraph_t gdn_layer_graph(const gdn_layer_plan *p, int i) {
  return (p != NULL && i >= 0 && i < p->num_buckets) ? p->b[i].graph : NULL;
}

int gdn_layer_num_ranks(const gdn_layer_plan *p) { return p != NULL ? p->nranks : 0; }

gdn_status gdn_layer_comm_init_all(int ndev, const int *devs, ncclComm_t *comms) {
  gdn_clear_last_error();
  return gdn_nccl_comm_init_all(ndev, devs, comms);
}

gdn_status gdn_layer_comm_destroy(ncclComm_t comm) {
  gdn_clear_last_error();
  return gdn_nccl_comm_destroy(comm);
}
