/* gdn-prefill on a GPU: buffers, plan, timed replays (the benches' helpers), check. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "tools/prefill_tool.h"

typedef struct replay_ctx {
  gdn_prefill_plan *plan;
  const tool_batch *b;
} replay_ctx;

static void replay(void *p, cudaStream_t s) {
  const replay_ctx *c = (const replay_ctx *)p;
  TOOL_GDN(gdn_prefill_run(c->plan, c->b->cu, c->b->slots, c->b->num_seqs, s));
}

/* The options' buckets, plus one that holds the batch when none does. */
static int buckets_for(const tool_opts *o, const tool_batch *b, gdn_prefill_bucket *out) {
  int n = o->num_buckets, fits = 0;
  memcpy(out, o->buckets, sizeof(gdn_prefill_bucket) * (size_t)n);
  for (int i = 0; i < n; ++i) fits |= out[i].max_tokens >= b->num_tokens && out[i].max_seqs >= b->num_seqs;
  if (!fits) {
    const int T = b->num_tokens > 0 ? (b->num_tokens + 63) / 64 * 64 : 64;
    out[n++] = (gdn_prefill_bucket){T, b->num_seqs};
    printf("buckets: none holds the batch; added {%d tokens, %d seqs}\n", T, b->num_seqs);
  }
  return n;
}

static void alloc_bufs(const tool_opts *o, int T_cap, int slots, tool_gpu_bufs *d) {
  const size_t Hk = (size_t)tool_rank_hk(o), Hv = (size_t)tool_rank_hv(o), K = (size_t)o->K, V = (size_t)o->V;
  const size_t T = (size_t)T_cap;
  memset(d, 0, sizeof *d);
  d->T_cap = T_cap;
  TOOL_CU(cudaMalloc(&d->q, T * Hk * K * 2));
  TOOL_CU(cudaMalloc(&d->k, T * Hk * K * 2));
  TOOL_CU(cudaMalloc(&d->v, T * Hv * V * 2));
  TOOL_CU(cudaMalloc(&d->o, T * Hv * V * 2));
  TOOL_CU(cudaMalloc(&d->a, T * Hv * 2));
  TOOL_CU(cudaMalloc(&d->b, T * Hv * 2));
  if (o->use_gk) TOOL_CU(cudaMalloc(&d->gk, T * Hv * K * 2));
  TOOL_CU(cudaMalloc((void **)&d->A_log, Hv * 4));
  TOOL_CU(cudaMalloc((void **)&d->dt_bias, Hv * 4));
  TOOL_CU(cudaMalloc((void **)&d->state, (size_t)slots * Hv * V * K * 4));
}

static void free_bufs(tool_gpu_bufs *d) {
  void *p[] = {d->q, d->k, d->v, d->o, d->a, d->b, d->gk, d->A_log, d->dt_bias, d->state};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; ++i) cudaFree(p[i]);
}

static gdn_prefill_io io_of(const tool_opts *o, const tool_gpu_bufs *d, int slots) {
  const int Hk = tool_rank_hk(o), Hv = tool_rank_hv(o), T = d->T_cap;
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(d->q, o->dtype, T, Hk, o->K);
  io.k = gdn_tensor_3d(d->k, o->dtype, T, Hk, o->K);
  io.v = gdn_tensor_3d(d->v, o->dtype, T, Hv, o->V);
  io.b = gdn_tensor_2d(d->b, o->dtype, T, Hv);
  io.a = o->use_g ? gdn_tensor_2d(d->a, o->dtype, T, Hv) : gdn_tensor_none();
  io.A_log = o->use_g ? gdn_tensor_1d(d->A_log, GDN_DTYPE_F32, Hv) : gdn_tensor_none();
  io.dt_bias = o->use_g ? gdn_tensor_1d(d->dt_bias, GDN_DTYPE_F32, Hv) : gdn_tensor_none();
  io.gk = o->use_gk ? gdn_tensor_3d(d->gk, o->dtype, T, Hv, o->K) : gdn_tensor_none();
  io.state = gdn_tensor_4d(d->state, GDN_DTYPE_F32, slots, Hv, o->V, o->K);
  io.o = gdn_tensor_3d(d->o, o->dtype, T, Hv, o->V);
  return io;
}

int tool_run_gpu(const tool_opts *o, const tool_batch *b, tool_result *r) {
  struct cudaDeviceProp prop;
  TOOL_CU(cudaSetDevice(o->device));
  TOOL_CU(cudaGetDeviceProperties(&prop, o->device));
  snprintf(r->device, sizeof r->device, "%d: %s (sm_%d%d, %d SMs)", o->device, prop.name, prop.major, prop.minor,
           prop.multiProcessorCount);
  printf("device %s\n", r->device);

  gdn_prefill_bucket buckets[TOOL_MAX_BUCKETS + 1];
  const int nb = buckets_for(o, b, buckets);
  int T_cap = 0;
  for (int i = 0; i < nb; ++i) T_cap = buckets[i].max_tokens > T_cap ? buckets[i].max_tokens : T_cap;
  const int slots = b->num_seqs > 0 ? b->num_seqs : 1;
  tool_gpu_bufs d;
  alloc_bufs(o, T_cap, slots, &d);
  double t0 = gdn_bench_now_us();
  tool_upload_inputs(o, &d, b->num_tokens, slots);
  r->inputs_s = (gdn_bench_now_us() - t0) * 1e-6;

  const gdn_prefill_shape shape = {.Hk = tool_rank_hk(o), .Hv = tool_rank_hv(o), .K = o->K, .V = o->V,
                                   .dtype = o->dtype, .use_g = o->use_g, .use_gk = o->use_gk,
                                   .l2norm_qk = o->l2norm, .scale = 0.f, .gate = GDN_GATE_RAW};
  const gdn_prefill_io io = io_of(o, &d, slots);
  replay_ctx c = {NULL, b};
  t0 = gdn_bench_now_us();
  TOOL_GDN(gdn_prefill_plan_create(&c.plan, &shape, &io, buckets, nb, o->device));
  r->plan_ms = (gdn_bench_now_us() - t0) * 1e-3;
  r->bucket = gdn_prefill_pick_bucket(c.plan, b->num_tokens, b->num_seqs);
  r->cap = gdn_prefill_bucket_at(c.plan, r->bucket);
  printf("plan: %.1f ms, %d buckets; this batch replays bucket %d\n", r->plan_ms, nb, r->bucket);

  cudaStream_t stream;
  TOOL_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  r->gpu_us = gdn_bench_median_us(replay, &c, stream, 2, o->reps);
  r->host_us = gdn_bench_host_us(replay, &c, stream, 2, o->reps);
  TOOL_GDN(gdn_prefill_check_error(c.plan));
  printf("replay: GPU %.1f us, host %.2f us (medians of %d)\n", r->gpu_us, r->host_us, o->reps);

  const int failed = o->check ? tool_check_gpu(o, b, &d, c.plan, stream, r) : 0;
  gdn_prefill_plan_destroy(c.plan);
  cudaStreamDestroy(stream);
  free_bufs(&d);
  return failed;
}
