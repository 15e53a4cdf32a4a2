/* The layer plan: in_proj -> conv1d -> GDN prefill core -> gated RMSNorm -> out_proj
 * [-> NCCL all-reduce], one graph per capacity bucket, built and instantiated once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/allreduce.h"
#include "graph/layer_plan.h"

/* ---------------------------------------------------------------- validation */

static gdn_status check_shape(const gdn_layer_shape *s) {
  if (s->hidden < 1) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: hidden = %d must be >= 1", s->hidden);
  if (s->Hk < 1 || s->Hv < 1 || s->Hv % s->Hk != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: Hk = %d must divide Hv = %d (both > 0)", s->Hk, s->Hv);
  if (s->K < 1 || s->V < 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: K = %d and V = %d must be >= 1", s->K, s->V);
  if (s->W < 2 || s->W > 4)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "layer shape: conv width W = %d is outside 2..4", s->W);
  if (s->dtype != GDN_DTYPE_BF16 && s->dtype != GDN_DTYPE_F16)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: dtype %s is not bf16 or fp16", gdn_dtype_name(s->dtype));
  GDN_TRY(gdn_check_norm_eps(s->rms_eps, "layer shape: rms_eps"));
  if (s->use_g != 0 && s->use_g != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: use_g = %d, expected 0 or 1", s->use_g);
  if (s->l2norm_qk != 0 && s->l2norm_qk != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: l2norm_qk = %d, expected 0 or 1", s->l2norm_qk);
  if (!isfinite(s->scale)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer shape: scale is not finite");
  return GDN_SUCCESS;
}

static gdn_status check_weights(const gdn_layer_shape *s, const gdn_layer_layout *l, const gdn_layer_weights *w) {
  const unsigned act = GDN_DTYPE_MASK(s->dtype), wmask = act | GDN_DTYPE_MASK(GDN_DTYPE_F32);
  int64_t in_sz[2] = {l->Dtot, s->hidden};
  GDN_TRY(gdn_check_tensor(&w->w_in, "weights.w_in", 2, in_sz, act));
  GDN_TRY(gdn_check_inner_contiguous(&w->w_in, "weights.w_in"));
  int64_t cw_sz[2] = {l->D, s->W};
  GDN_TRY(gdn_check_tensor(&w->conv_weight, "weights.conv_weight", 2, cw_sz, wmask));
  int64_t d_sz[1] = {l->D};
  GDN_TRY(gdn_check_optional(&w->conv_bias, "weights.conv_bias", 1, d_sz, wmask));
  int64_t hv_sz[1] = {s->Hv};
  if (s->use_g) {
    GDN_TRY(gdn_check_tensor(&w->A_log, "weights.A_log", 1, hv_sz, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_tensor(&w->dt_bias, "weights.dt_bias", 1, hv_sz, GDN_FLOAT_TYPES));
  }
  int64_t v_sz[1] = {s->V};
  GDN_TRY(gdn_check_tensor(&w->norm_weight, "weights.norm_weight", 1, v_sz, GDN_FLOAT_TYPES));
  int64_t out_sz[2] = {s->hidden, (int64_t)s->Hv * s->V};
  GDN_TRY(gdn_check_tensor(&w->w_out, "weights.w_out", 2, out_sz, act));
  GDN_TRY(gdn_check_inner_contiguous(&w->w_out, "weights.w_out"));
  return GDN_SUCCESS;
}

static gdn_status check_io(const gdn_layer_shape *s, const gdn_layer_layout *l, const gdn_layer_weights *w,
                           const gdn_layer_io *io, int64_t t_cap, int with_comm) {
  const unsigned act = GDN_DTYPE_MASK(s->dtype);
  int64_t row_sz[2] = {-1, s->hidden};
  GDN_TRY(gdn_check_tensor(&io->x, "io.x", 2, row_sz, act));
  GDN_TRY(gdn_check_tensor(&io->y, "io.y", 2, row_sz, act));
  GDN_TRY(gdn_check_inner_contiguous(&io->x, "io.x"));
  GDN_TRY(gdn_check_inner_contiguous(&io->y, "io.y"));
  GDN_TRY(gdn_check_rows(&io->x, "io.x", t_cap, "the largest bucket's max_tokens"));
  GDN_TRY(gdn_check_rows(&io->y, "io.y", t_cap, "the largest bucket's max_tokens"));
  if (with_comm && t_cap > 1 && io->y.strides[0] != s->hidden)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "io.y: row stride %lld != hidden %d; with a communicator y's rows must be contiguous (in-place all-reduce)",
                    (long long)io->y.strides[0], s->hidden);
  int64_t st_sz[4] = {-1, s->Hv, s->V, s->K};
  GDN_TRY(gdn_check_tensor(&io->state, "io.state", 4, st_sz, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
  int64_t cs_sz[3] = {io->state.sizes[0], s->W - 1, l->D};
  GDN_TRY(gdn_check_tensor(&io->conv_state, "io.conv_state (same num_slots as io.state)", 3, cs_sz, act));
  GDN_TRY(gdn_check_inner_contiguous(&io->conv_state, "io.conv_state"));
  if (io->state.sizes[0] < 1 || io->state.sizes[0] > INT32_MAX)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.state: num_slots = %lld is outside 1..2^31-1",
                    (long long)io->state.sizes[0]);
  /* What the layer writes must not overlap anything else it touches. */
  const gdn_tensor *out[3] = {&io->y, &io->state, &io->conv_state};
  const char *on[3] = {"io.y", "io.state", "io.conv_state"};
  const gdn_tensor *in[8] = {&io->x, &w->w_in, &w->conv_weight, &w->conv_bias, &w->A_log, &w->dt_bias,
                             &w->norm_weight, &w->w_out};
  const char *inn[8] = {"io.x", "weights.w_in", "weights.conv_weight", "weights.conv_bias", "weights.A_log",
                        "weights.dt_bias", "weights.norm_weight", "weights.w_out"};
  return gdn_check_outputs(out, on, 3, in, inn, 8);
}

static gdn_status check_buckets(const gdn_prefill_bucket *b, int n, int64_t *t_cap) {
  if (n < 1 || n > GDN_LAYER_MAX_BUCKETS)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_buckets = %d is outside 1..%d", n, GDN_LAYER_MAX_BUCKETS);
  *t_cap = 0;
  for (int i = 0; i < n; ++i) {
    if (b[i].max_tokens <= 0 || b[i].max_seqs <= 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "buckets[%d] = {%d tokens, %d seqs}: both must be > 0", i,
                      b[i].max_tokens, b[i].max_seqs);
    if (b[i].max_tokens > *t_cap) *t_cap = b[i].max_tokens;
  }
  return GDN_SUCCESS;
}

static gdn_status check_comm(ncclComm_t comm, int device, int *nranks) {
  *nranks = 1;
  if (comm == NULL) return GDN_SUCCESS;
  int dev = -1;
  GDN_TRY(gdn_nccl_comm_info(comm, &dev, nranks));
  if (dev != device)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "comm: the communicator belongs to device %d, the plan to device %d", dev,
                    device);
  return GDN_SUCCESS;
}

/* ---------------------------------------------------------------- views */

static gdn_tensor view2(void *data, gdn_dtype dt, int64_t s0, int64_t s1, int64_t st0) {
  gdn_tensor t = gdn_tensor_2d(data, dt, s0, s1);
  t.strides[0] = st0;
  return t;
}

static gdn_tensor view3(void *data, gdn_dtype dt, int64_t s0, int64_t s1, int64_t s2, int64_t st0) {
  gdn_tensor t = gdn_tensor_3d(data, dt, s0, s1, s2);
  t.strides[0] = st0;
  return t;
}

static gdn_tensor rows(gdn_tensor t, int64_t n) {
  t.sizes[0] = n;
  return t;
}

/* Element `col` of row 0 of mixed. */
static void *mixed_col(const gdn_layer_plan *p, int64_t col) {
  return (char *)p->mixed + (size_t)col * gdn_dtype_size(p->shape.dtype);
}

/* ---------------------------------------------------------------- plan */

static gdn_status plan_alloc(void **out, size_t bytes) {
  *out = NULL;
  GDN_CUDA_TRY(cudaMalloc(out, bytes ? bytes : 16));
  /* Defined contents once: rows past a batch are never written by some producers. */
  GDN_CUDA_TRY(cudaMemset(*out, 0, bytes ? bytes : 16));
  return GDN_SUCCESS;
}

static gdn_status setup_bucket(gdn_layer_plan *p, int i) {
  const gdn_layer_shape *s = &p->shape;
  const gdn_layer_layout *l = &p->lay;
  const gdn_dtype dt = s->dtype;
  gdn_layer_bucket_ops *b = &p->b[i];
  const int64_t Tb = b->cap.max_tokens, HvV = (int64_t)s->Hv * s->V;
  GDN_TRY(gdn_prefill_batch_view(p->prefill, i, &b->batch));

  memset(&b->in_args, 0, sizeof b->in_args);
  b->in_args.x = rows(p->io.x, Tb);
  b->in_args.w = p->w.w_in;
  b->in_args.bias = gdn_tensor_none();
  b->in_args.y = view2(p->mixed, dt, Tb, l->Dtot, p->ld);
  GDN_TRY(gdn_linear_plan(&b->in_args, &p->dev, &b->in_cfg));

  memset(&b->conv, 0, sizeof b->conv);
  b->conv.mixed = view2(p->mixed, dt, p->t_cap, l->Dtot, p->ld);
  b->conv.weight = p->w.conv_weight;
  b->conv.bias = p->w.conv_bias;
  b->conv.conv_state = p->io.conv_state;
  b->conv.q = gdn_tensor_3d(p->q, dt, p->t_cap, s->Hk, s->K);
  b->conv.k = gdn_tensor_3d(p->k, dt, p->t_cap, s->Hk, s->K);
  b->conv.v = gdn_tensor_3d(p->v, dt, p->t_cap, s->Hv, s->V);
  b->conv.batch = b->batch;
  GDN_TRY(gdn_conv1d_plan(&b->conv, &p->dev, &b->conv_cfg));

  memset(&b->out_args, 0, sizeof b->out_args);
  b->out_args.x = gdn_tensor_2d(p->normed, dt, Tb, HvV);
  b->out_args.w = p->w.w_out;
  b->out_args.bias = gdn_tensor_none();
  b->out_args.y = rows(p->io.y, Tb);
  GDN_TRY(gdn_linear_plan(&b->out_args, &p->dev, &b->out_cfg));

  b->reduce_buf = p->io.y.data;
  b->reduce_count = (size_t)Tb * (size_t)s->hidden;
  return GDN_SUCCESS;
}

/* in_proj and batch setup (roots, in parallel) -> conv1d -> core with the gated RMSNorm -> out_proj
 * [-> all-reduce]. */
static gdn_status build_graph(gdn_layer_plan *p, int i) {
  gdn_layer_bucket_ops *b = &p->b[i];
  GDN_CUDA_TRY(cudaGraphCreate(&b->graph, 0));
  cudaGraph_t g = b->graph;
  cudaGraphNode_t roots[2], conv, core, out, reduce;
  GDN_TRY(gdn_linear_add_node(&b->in_args, b->in_cfg, g, NULL, 0, &roots[0]));
  GDN_TRY(gdn_prefill_add_setup_node(p->prefill, i, g, NULL, 0, &roots[1]));
  GDN_TRY(gdn_conv1d_add_node(&b->conv, &b->conv_cfg, g, roots, 2, &conv));
  GDN_TRY(gdn_prefill_add_core_nodes(p->prefill, i, g, &conv, 1, &core));
  GDN_TRY(gdn_linear_add_node(&b->out_args, b->out_cfg, g, &core, 1, &out));
  if (p->comm != NULL)
    GDN_TRY(gdn_allreduce_add_node(g, &out, 1, p->comm, b->reduce_buf, b->reduce_count, p->shape.dtype, p->capture,
                                   &reduce));
  GDN_CUDA_TRY(cudaGraphInstantiate(&b->exec, g, 0));
  return GDN_SUCCESS;
}

static gdn_status create_plan(gdn_layer_plan *p, const gdn_prefill_bucket *buckets, int nb) {
  const gdn_layer_shape *s = &p->shape;
  const gdn_dtype dt = s->dtype;
  const size_t es = gdn_dtype_size(dt), T = (size_t)p->t_cap;
  const size_t HvV = (size_t)s->Hv * s->V;
  GDN_TRY(plan_alloc(&p->mixed, T * (size_t)p->ld * es));
  GDN_TRY(plan_alloc(&p->q, T * s->Hk * s->K * es));
  GDN_TRY(plan_alloc(&p->k, T * s->Hk * s->K * es));
  GDN_TRY(plan_alloc(&p->v, T * HvV * es));
  GDN_TRY(plan_alloc(&p->normed, T * HvV * es));
  GDN_CUDA_TRY(cudaStreamCreateWithFlags(&p->capture, cudaStreamNonBlocking));

  gdn_prefill_shape ps;
  memset(&ps, 0, sizeof ps);
  ps.Hk = s->Hk;
  ps.Hv = s->Hv;
  ps.K = s->K;
  ps.V = s->V;
  ps.dtype = dt;
  ps.use_g = s->use_g;
  ps.use_gk = 0;
  ps.l2norm_qk = s->l2norm_qk;
  ps.scale = s->scale;
  gdn_prefill_io pio;
  memset(&pio, 0, sizeof pio);
  pio.q = gdn_tensor_3d(p->q, dt, p->t_cap, s->Hk, s->K);
  pio.k = gdn_tensor_3d(p->k, dt, p->t_cap, s->Hk, s->K);
  pio.v = gdn_tensor_3d(p->v, dt, p->t_cap, s->Hv, s->V);
  /* the core's output goes through the gated RMSNorm (with z) straight into out_proj's input */
  pio.o = gdn_tensor_3d(p->normed, dt, p->t_cap, s->Hv, s->V);
  pio.norm_z = view3(mixed_col(p, p->lay.z), dt, p->t_cap, s->Hv, s->V, p->ld);
  pio.norm_weight = p->w.norm_weight;
  pio.norm_eps = s->rms_eps;
  pio.b = view2(mixed_col(p, p->lay.b), dt, p->t_cap, s->Hv, p->ld);
  if (s->use_g) {
    pio.a = view2(mixed_col(p, p->lay.a), dt, p->t_cap, s->Hv, p->ld);
    pio.A_log = p->w.A_log;
    pio.dt_bias = p->w.dt_bias;
  } else {
    pio.a = pio.A_log = pio.dt_bias = gdn_tensor_none();
  }
  pio.gk = gdn_tensor_none();
  pio.state = p->io.state;
  /* The layer's graphs hold the prefill nodes: the prefill plan needs none of its own. */
  GDN_TRY(gdn_prefill_plan_create_embedded(&p->prefill, &ps, &pio, buckets, nb, p->device));

  /* The prefill plan sorted the buckets: follow its order so indices agree. */
  p->num_buckets = gdn_prefill_num_buckets(p->prefill);
  for (int i = 0; i < p->num_buckets; ++i) p->b[i].cap = gdn_prefill_bucket_at(p->prefill, i);
  for (int i = 0; i < p->num_buckets; ++i) {
    GDN_TRY(setup_bucket(p, i));
    GDN_TRY(build_graph(p, i));
  }
  return GDN_SUCCESS;
}

typedef struct create_ctx {
  gdn_layer_plan *p;
  const gdn_prefill_bucket *buckets;
  int nb;
} create_ctx;

static gdn_status create_on_device(void *ctx, const gdn_device_info *dev) {
  create_ctx *c = (create_ctx *)ctx;
  c->p->dev = *dev;
  return create_plan(c->p, c->buckets, c->nb);
}

gdn_status gdn_layer_plan_create(gdn_layer_plan **out, const gdn_layer_shape *shape, const gdn_layer_weights *weights,
                                 const gdn_layer_io *io, const gdn_prefill_bucket *buckets, int num_buckets,
                                 ncclComm_t comm, int device) {
  gdn_clear_last_error();
  if (out == NULL || shape == NULL || weights == NULL || io == NULL || buckets == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "layer plan: plan, shape, weights, io and buckets must not be NULL");
  *out = NULL;
  GDN_TRY(check_shape(shape));
  const gdn_layer_layout lay = gdn_layer_layout_of(shape->Hk, shape->Hv, shape->K, shape->V);
  int64_t t_cap = 0;
  GDN_TRY(check_buckets(buckets, num_buckets, &t_cap));
  GDN_TRY(check_weights(shape, &lay, weights));
  GDN_TRY(check_io(shape, &lay, weights, io, t_cap, comm != NULL));
  int nranks = 1;
  GDN_TRY(check_comm(comm, device, &nranks));

  gdn_layer_plan *p = (gdn_layer_plan *)calloc(1, sizeof *p);
  if (p == NULL) return gdn_fail(GDN_ERROR_OUT_OF_MEMORY, "layer plan: host allocation failed");
  p->device = device;
  p->shape = *shape;
  p->lay = lay;
  p->w = *weights;
  p->io = *io;
  p->comm = comm;
  p->nranks = nranks;
  p->t_cap = t_cap;
  const int64_t align = 16 / (int64_t)gdn_dtype_size(shape->dtype);
  p->ld = (lay.Dtot + align - 1) / align * align;
  create_ctx ctx = {p, buckets, num_buckets};
  gdn_status st = gdn_with_device(device, create_on_device, &ctx);
  if (st != GDN_SUCCESS) {
    gdn_saved_error err;
    gdn_save_error(&err);
    gdn_layer_plan_destroy(p);
    return gdn_restore_error(&err, st, "layer plan: ");
  }
  *out = p;
  return GDN_SUCCESS;
}

void gdn_layer_plan_destroy(gdn_layer_plan *p) {
  if (p == NULL) return;
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(p->device);
  for (int i = 0; i < GDN_LAYER_MAX_BUCKETS; ++i) {
    gdn_layer_bucket_ops *b = &p->b[i];
    if (b->exec) cudaGraphExecDestroy(b->exec);
    if (b->graph) cudaGraphDestroy(b->graph);
    gdn_linear_destroy(b->in_cfg);  /* after the graphs: they use its workspace */
    gdn_linear_destroy(b->out_cfg);
  }
  gdn_prefill_plan_destroy(p->prefill);
  void *bufs[5] = {p->mixed, p->q, p->k, p->v, p->normed};
  for (int i = 0; i < 5; ++i)
    if (bufs[i]) cudaFree(bufs[i]);
  if (p->capture) cudaStreamDestroy(p->capture);
  cudaSetDevice(prev);
  free(p);
}
