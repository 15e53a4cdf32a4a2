/* The prefill plan: per-bucket graphs of the GDN chunked forward (graph/forward_ops),
 * built and instantiated once, replayed per batch after a one-copy descriptor upload. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/prefill.h"
#include "graph/forward_ops.h"

#define GDN_MAX_BUCKETS 16
/* Pinned descriptor staging ring: GDN_RING slots in groups of GDN_RING_GROUP. One event
 * per group, recorded after the group's last copy and waited on before the group is
 * reused, keeps per-run host work to one copy and one graph launch (the host may run
 * GDN_RING - GDN_RING_GROUP batches ahead before it waits). */
#define GDN_RING 16
#define GDN_RING_GROUP 4

typedef struct bucket_ops {
  gdn_prefill_bucket cap;
  gdn_fwd_policy policy;
  gdn_fwd f;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
} bucket_ops;

struct gdn_prefill_plan {
  int device;
  gdn_device_info dev;
  gdn_prefill_shape shape;
  gdn_prefill_io io;
  int num_buckets;
  bucket_ops b[GDN_MAX_BUCKETS];
  int32_t desc_seqs, t_cap;
  gdn_prefill_descriptor_layout dl;
  int32_t *desc;        /* device descriptor (gdn_prefill_descriptor_layout) */
  size_t desc_bytes;
  int32_t *staging;     /* pinned: GDN_RING descriptors */
  cudaEvent_t staged[GDN_RING / GDN_RING_GROUP];
  int ring_pos;
  gdn_batch_error_record *err;
  int own_graphs; /* 0: embedded only, the caller's graphs hold the nodes */
  void *workspace;
};

gdn_prefill_descriptor_layout gdn_prefill_descriptor_layout_of(int32_t D) {
  gdn_prefill_descriptor_layout l;
  const int64_t d = D > 0 ? D : 0;
  l.num_seqs = 0;
  l.cu_seqlens = 1;
  l.slots = l.cu_seqlens + d + 1;
  l.out_mode = l.slots + d;
  l.slots_out = l.out_mode + 1;
  l.checkpoint_offsets = l.slots_out + d;
  l.words = l.checkpoint_offsets + d;
  return l;
}

static int cmp_bucket(const void *x, const void *y) {
  const gdn_prefill_bucket *a = (const gdn_prefill_bucket *)x, *b = (const gdn_prefill_bucket *)y;
  if (a->max_tokens != b->max_tokens) return a->max_tokens < b->max_tokens ? -1 : 1;
  return (a->max_seqs > b->max_seqs) - (a->max_seqs < b->max_seqs);
}

static int no_plan(const char *what) {
  gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: plan is NULL", what);
  return 0;
}

int gdn_prefill_pick_bucket(const gdn_prefill_plan *p, int num_tokens, int num_seqs) {
  if (p == NULL) return no_plan("gdn_prefill_pick_bucket") - 1;
  for (int i = 0; i < p->num_buckets; ++i)
    if (p->b[i].cap.max_tokens >= num_tokens && p->b[i].cap.max_seqs >= num_seqs) return i;
  return -1;
}

int gdn_prefill_num_buckets(const gdn_prefill_plan *p) {
  return p != NULL ? p->num_buckets : no_plan("gdn_prefill_num_buckets");
}
gdn_prefill_bucket gdn_prefill_bucket_at(const gdn_prefill_plan *p, int i) {
  gdn_prefill_bucket none = {0, 0};
  if (p == NULL) return no_plan("gdn_prefill_bucket_at"), none;
  if (i < 0 || i >= p->num_buckets) {
    gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_prefill_bucket_at: index %d is outside [0, %d)", i, p->num_buckets);
    return none;
  }
  return p->b[i].cap;
}
int32_t *gdn_prefill_descriptor(gdn_prefill_plan *p) {
  return p != NULL ? p->desc : (no_plan("gdn_prefill_descriptor"), (int32_t *)NULL);
}
int gdn_prefill_descriptor_seqs(const gdn_prefill_plan *p) {
  return p != NULL ? p->desc_seqs : no_plan("gdn_prefill_descriptor_seqs");
}


static gdn_status check_buckets(const gdn_prefill_bucket *buckets, int nb) {
  if (nb < 1 || nb > GDN_MAX_BUCKETS)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_buckets = %d is outside 1..%d", nb, GDN_MAX_BUCKETS);
  for (int i = 0; i < nb; ++i) {
    if (buckets[i].max_tokens <= 0 || buckets[i].max_seqs <= 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "buckets[%d] = {%d tokens, %d seqs}: both must be > 0", i,
                      buckets[i].max_tokens, buckets[i].max_seqs);
    if (buckets[i].max_tokens > GDN_BATCH_MAX_TOKENS || buckets[i].max_seqs > GDN_BATCH_MAX_SEQS)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "buckets[%d] = {%d tokens, %d seqs}: the limits are %d tokens, %d seqs", i,
                      buckets[i].max_tokens, buckets[i].max_seqs, GDN_BATCH_MAX_TOKENS, GDN_BATCH_MAX_SEQS);
  }
  return GDN_SUCCESS;
}

static gdn_fwd_tensors io_tensors(const gdn_prefill_io *io) {
  gdn_fwd_tensors t;
  memset(&t, 0, sizeof t);
  t.q = io->q; t.k = io->k; t.v = io->v; t.o = io->o;
  t.a = io->a; t.b = io->b; t.A_log = io->A_log; t.dt_bias = io->dt_bias;
  t.g = io->g; t.beta = io->beta; t.gk = io->gk;
  t.state_in = io->state; t.state_out = io->state; /* the pool, updated in place */
  t.checkpoints = io->checkpoints;
  t.checkpoint_every = io->checkpoint_every;
  t.norm_z = io->norm_z;
  t.norm_weight = io->norm_weight;
  t.norm_eps = io->norm_eps;
  return t;
}

gdn_status gdn_prefill_validate(const gdn_prefill_shape *shape, const gdn_prefill_io *io,
                                const gdn_prefill_bucket *buckets, int nb) {
  gdn_clear_last_error();
  if (shape == NULL || io == NULL || buckets == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prefill plan: shape, io and buckets must not be NULL");
  GDN_TRY(gdn_fwd_check_shape(shape));
  GDN_TRY(check_buckets(buckets, nb));
  if (!gdn_tensor_present(&io->state))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.state: the state pool is required (use slot -1 for no state)");
  int32_t t_cap = 0;
  for (int i = 0; i < nb; ++i)
    if (buckets[i].max_tokens > t_cap) t_cap = buckets[i].max_tokens;
  gdn_fwd_tensors t = io_tensors(io);
  return gdn_fwd_check_tensors(shape, &t, t_cap, "io");
}

/* The descriptor's device words as the batch source of every bucket. */
static gdn_fwd_batch_src desc_source(const gdn_prefill_plan *p) {
  gdn_fwd_batch_src s;
  memset(&s, 0, sizeof s);
  s.cu_seqlens = p->desc + p->dl.cu_seqlens;
  s.num_seqs_dev = p->desc + p->dl.num_seqs;
  s.slots = p->desc + p->dl.slots;
  s.slots_out = p->desc + p->dl.slots_out;
  s.slots_out_select = p->desc + p->dl.out_mode;
  s.state_aliased = 1;
  s.checkpoint_offsets = gdn_tensor_present(&p->io.checkpoints) ? p->desc + p->dl.checkpoint_offsets : NULL;
  s.error_record = p->err;
  return s;
}

static gdn_status create_plan(gdn_prefill_plan *p, const gdn_prefill_bucket *buckets, int nb) {
  const gdn_prefill_shape *s = &p->shape;
  gdn_prefill_bucket sorted[GDN_MAX_BUCKETS];
  for (int i = 0; i < nb; ++i) sorted[i] = buckets[i];
  qsort(sorted, (size_t)nb, sizeof sorted[0], cmp_bucket);
  p->num_buckets = nb;
  const int ckpt = gdn_tensor_present(&p->io.checkpoints);
  size_t ws_bytes = 0;
  for (int i = 0; i < nb; ++i) {
    bucket_ops *b = &p->b[i];
    b->cap = sorted[i];
    if (sorted[i].max_tokens > p->t_cap) p->t_cap = sorted[i].max_tokens;
    if (sorted[i].max_seqs > p->desc_seqs) p->desc_seqs = sorted[i].max_seqs;
    GDN_TRY(gdn_fwd_policy_for(s, b->cap, &p->dev, ckpt, gdn_tensor_present(&p->io.norm_z), &b->policy));
    gdn_fwd_layout l = gdn_fwd_layout_of(s, b->cap, &b->policy);
    if (l.total > ws_bytes) ws_bytes = l.total; /* buckets run one at a time: one workspace */
  }
  p->dl = gdn_prefill_descriptor_layout_of(p->desc_seqs);
  p->desc_bytes = (size_t)p->dl.words * sizeof(int32_t);
  GDN_CUDA_TRY(cudaMalloc((void **)&p->desc, p->desc_bytes));
  GDN_CUDA_TRY(cudaMemset(p->desc, 0, p->desc_bytes));
  GDN_CUDA_TRY(cudaMalloc(&p->workspace, ws_bytes ? ws_bytes : 256));
  GDN_CUDA_TRY(cudaMemset(p->workspace, 0, ws_bytes ? ws_bytes : 256));
  GDN_CUDA_TRY(cudaHostAlloc((void **)&p->staging, GDN_RING * p->desc_bytes, cudaHostAllocDefault));
  memset(p->staging, 0, GDN_RING * p->desc_bytes);
  for (int r = 0; r < GDN_RING / GDN_RING_GROUP; ++r)
    GDN_CUDA_TRY(cudaEventCreateWithFlags(&p->staged[r], cudaEventDisableTiming));
  GDN_TRY(gdn_batch_error_record_create(&p->err));

  const gdn_fwd_tensors t = io_tensors(&p->io);
  const gdn_fwd_batch_src src = desc_source(p);
  for (int i = 0; i < nb; ++i) {
    bucket_ops *b = &p->b[i];
    gdn_fwd_layout l = gdn_fwd_layout_of(s, b->cap, &b->policy);
    GDN_TRY(gdn_fwd_bind(&b->f, s, &p->dev, &b->policy, &l, b->cap, &t, &src, p->workspace, NULL));
    if (!p->own_graphs) continue;
    GDN_CUDA_TRY(cudaGraphCreate(&b->graph, 0));
    cudaGraphNode_t setup, last;
    GDN_TRY(gdn_fwd_emit_setup(&b->f, NULL, b->graph, NULL, 0, &setup));
    GDN_TRY(gdn_fwd_emit_core(&b->f, NULL, b->graph, &setup, 1, &last));
    GDN_CUDA_TRY(cudaGraphInstantiate(&b->exec, b->graph, 0));
  }
  return GDN_SUCCESS;
}

typedef struct create_ctx {
  gdn_prefill_plan *p;
  const gdn_prefill_bucket *buckets;
  int nb;
} create_ctx;

static gdn_status create_on_device(void *ctx, const gdn_device_info *dev) {
  create_ctx *c = (create_ctx *)ctx;
  c->p->dev = *dev;
  return create_plan(c->p, c->buckets, c->nb);
}

static gdn_status plan_create(gdn_prefill_plan **out, const gdn_prefill_shape *shape, const gdn_prefill_io *io,
                              const gdn_prefill_bucket *buckets, int num_buckets, int device, int own_graphs) {
  if (out == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prefill plan: plan (the out pointer) is NULL");
  *out = NULL;
  GDN_TRY(gdn_prefill_validate(shape, io, buckets, num_buckets));
  gdn_prefill_plan *p = (gdn_prefill_plan *)calloc(1, sizeof *p);
  if (p == NULL) return gdn_fail(GDN_ERROR_OUT_OF_MEMORY, "prefill plan: host allocation failed");
  p->device = device;
  p->own_graphs = own_graphs;
  p->shape = *shape;
  if (p->shape.scale <= 0.f) p->shape.scale = 1.f / sqrtf((float)shape->K);
  p->io = *io;
  create_ctx ctx = {p, buckets, num_buckets};
  gdn_status st = gdn_with_device(device, create_on_device, &ctx);
  if (st != GDN_SUCCESS) {
    gdn_saved_error err;
    gdn_save_error(&err);
    gdn_prefill_plan_destroy(p);
    return gdn_restore_error(&err, st, "");
  }
  *out = p;
  return GDN_SUCCESS;
}

gdn_status gdn_prefill_plan_create(gdn_prefill_plan **out, const gdn_prefill_shape *shape, const gdn_prefill_io *io,
                                   const gdn_prefill_bucket *buckets, int num_buckets, int device) {
  gdn_clear_last_error();
  return plan_create(out, shape, io, buckets, num_buckets, device, 1);
}

gdn_status gdn_prefill_plan_create_embedded(gdn_prefill_plan **out, const gdn_prefill_shape *shape,
                                            const gdn_prefill_io *io, const gdn_prefill_bucket *buckets,
                                            int num_buckets, int device) {
  gdn_clear_last_error();
  return plan_create(out, shape, io, buckets, num_buckets, device, 0);
}

void gdn_prefill_plan_destroy(gdn_prefill_plan *p) {
  if (p == NULL) return;
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(p->device);
  for (int i = 0; i < p->num_buckets; ++i) {
    if (p->b[i].exec) cudaGraphExecDestroy(p->b[i].exec);
    if (p->b[i].graph) cudaGraphDestroy(p->b[i].graph);
  }
  for (int r = 0; r < GDN_RING / GDN_RING_GROUP; ++r)
    if (p->staged[r]) cudaEventDestroy(p->staged[r]);
  if (p->staging) cudaFreeHost(p->staging);
  gdn_batch_error_record_destroy(p->err);
  cudaFree(p->desc);
  cudaFree(p->workspace);
  cudaSetDevice(prev);
  free(p);
}

/* Refuses work that stages through the pinned ring while `s` is capturing. */
static gdn_status check_not_capturing(cudaStream_t s, const char *what) {
  enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  GDN_CUDA_TRY(cudaStreamIsCapturing(s, &cs));
  if (cs != cudaStreamCaptureStatusNone)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "%s: the stream is capturing; this call stages the batch in host memory that later runs reuse, "
                    "so a replay would read a stale batch. Capture gdn_prefill_run_device or gdn_forward instead",
                    what);
  return GDN_SUCCESS;
}

/* Takes the next staging slot; at a group's first slot, waits until the copies of
 * that group's previous round are done (normally long since). */
static gdn_status ring_take(gdn_prefill_plan *p, int32_t **slot) {
  int r = p->ring_pos;
  p->ring_pos = (r + 1) % GDN_RING;
  if (r % GDN_RING_GROUP == 0) GDN_CUDA_TRY(cudaEventSynchronize(p->staged[r / GDN_RING_GROUP]));
  *slot = (int32_t *)((char *)p->staging + (size_t)r * p->desc_bytes);
  return GDN_SUCCESS;
}

/* After the copy from `slot` was enqueued: at a group's last slot, mark the group. */
static gdn_status ring_release(gdn_prefill_plan *p, const int32_t *slot, cudaStream_t s) {
  int r = (int)(((const char *)slot - (const char *)p->staging) / (ptrdiff_t)p->desc_bytes);
  if (r % GDN_RING_GROUP == GDN_RING_GROUP - 1) GDN_CUDA_TRY(cudaEventRecord(p->staged[r / GDN_RING_GROUP], s));
  return GDN_SUCCESS;
}

/* Picks the bucket and stages the descriptor in the pinned ring; returns its slot. */
static gdn_status stage_descriptor(gdn_prefill_plan *p, const gdn_prefill_request *rq, int *bucket, int32_t **host) {
  const int n = rq->num_seqs;
  if (rq->cu_seqlens == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "cu_seqlens is NULL");
  if (n < 0) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is negative", n);
  if (rq->checkpoint_offsets != NULL && !gdn_tensor_present(&p->io.checkpoints))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "checkpoint_offsets: the plan has no io.checkpoints");
  *bucket = gdn_prefill_pick_bucket(p, rq->cu_seqlens[n], n);
  if (*bucket < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "batch of %d tokens in %d sequences exceeds every bucket (largest: %d tokens, %d sequences)",
                    rq->cu_seqlens[n], n, p->b[p->num_buckets - 1].cap.max_tokens, p->desc_seqs);
  int32_t *d = NULL;
  GDN_TRY(ring_take(p, &d));
  const gdn_prefill_descriptor_layout *l = &p->dl;
  d[l->num_seqs] = n;
  memcpy(d + l->cu_seqlens, rq->cu_seqlens, (size_t)(n + 1) * sizeof(int32_t));
  for (int i = 0; i < n; ++i) d[l->slots + i] = rq->slots ? rq->slots[i] : GDN_PAD_SLOT;
  d[l->out_mode] = rq->slots_out != NULL;
  if (rq->slots_out) memcpy(d + l->slots_out, rq->slots_out, (size_t)n * sizeof(int32_t));
  for (int i = 0; i < n; ++i) d[l->checkpoint_offsets + i] = rq->checkpoint_offsets ? rq->checkpoint_offsets[i] : -1;
  *host = d;
  return GDN_SUCCESS;
}

static gdn_status upload(gdn_prefill_plan *p, const int32_t *host, cudaStream_t s) {
  GDN_CUDA_TRY(cudaMemcpyAsync(p->desc, host, p->desc_bytes, cudaMemcpyHostToDevice, s));
  return ring_release(p, host, s);
}

static gdn_status check_own_graphs(const gdn_prefill_plan *p) {
  if (!p->own_graphs)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "plan was created with gdn_prefill_plan_create_embedded: it has no graphs of its own to launch");
  return GDN_SUCCESS;
}

static gdn_prefill_request request_of(const int32_t *cu, const int32_t *slots, int n) {
  gdn_prefill_request r;
  memset(&r, 0, sizeof r);
  r.cu_seqlens = cu;
  r.slots = slots;
  r.num_seqs = n;
  return r;
}

gdn_status gdn_prefill_run_request(gdn_prefill_plan *p, const gdn_prefill_request *rq, cudaStream_t s) {
  gdn_clear_last_error();
  if (p == NULL || rq == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan and request must not be NULL");
  GDN_TRY(check_own_graphs(p));
  GDN_TRY(check_not_capturing(s, "gdn_prefill_run"));
  int bucket;
  int32_t *host;
  GDN_TRY(stage_descriptor(p, rq, &bucket, &host));
  GDN_TRY(upload(p, host, s));
  GDN_CUDA_TRY(cudaGraphLaunch(p->b[bucket].exec, s));
  return GDN_SUCCESS;
}

gdn_status gdn_prefill_run(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  gdn_clear_last_error();
  gdn_prefill_request r = request_of(cu, slots, n);
  return gdn_prefill_run_request(p, &r, s);
}

gdn_status gdn_prefill_run_device(gdn_prefill_plan *p, const int32_t *cu_dev, const int32_t *slots_dev, int n,
                                  int num_tokens, cudaStream_t s) {
  gdn_clear_last_error();
  if (p == NULL || cu_dev == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan and cu_seqlens must not be NULL");
  if (n < 0) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is negative", n);
  int bucket = gdn_prefill_pick_bucket(p, num_tokens, n);
  if (bucket < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch of %d tokens in %d sequences exceeds every bucket", num_tokens, n);
  enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  GDN_CUDA_TRY(cudaStreamIsCapturing(s, &cs));
  const int capturing = cs != cudaStreamCaptureStatusNone;
  if (!capturing) GDN_TRY(check_own_graphs(p));
  const gdn_prefill_descriptor_layout *l = &p->dl;
  if (!capturing) { /* the count from the pinned ring (a capture fixes it in the setup node instead) */
    int32_t *d = NULL;
    GDN_TRY(ring_take(p, &d));
    d[0] = n;
    GDN_CUDA_TRY(cudaMemcpyAsync(p->desc + l->num_seqs, d, sizeof(int32_t), cudaMemcpyHostToDevice, s));
    GDN_TRY(ring_release(p, d, s));
  }
  GDN_CUDA_TRY(cudaMemcpyAsync(p->desc + l->cu_seqlens, cu_dev, (size_t)(n + 1) * sizeof(int32_t),
                               cudaMemcpyDeviceToDevice, s));
  int32_t *ds = p->desc + l->slots;
  if (slots_dev) GDN_CUDA_TRY(cudaMemcpyAsync(ds, slots_dev, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToDevice, s));
  else GDN_CUDA_TRY(cudaMemsetAsync(ds, 0xFF, (size_t)n * sizeof(int32_t), s)); /* -1 */
  GDN_CUDA_TRY(cudaMemsetAsync(p->desc + l->out_mode, 0, sizeof(int32_t), s)); /* in place */
  if (!capturing) {
    GDN_CUDA_TRY(cudaGraphLaunch(p->b[bucket].exec, s));
    return GDN_SUCCESS;
  }
  /* Captured: the plan's kernels one by one (a graph launch cannot be captured). */
  gdn_fwd f = p->b[bucket].f;
  f.setup.num_seqs_dev = NULL;
  f.setup.num_seqs = n;
  GDN_TRY(gdn_fwd_emit_setup(&f, s, NULL, NULL, 0, NULL));
  return gdn_fwd_emit_core(&f, s, NULL, NULL, 0, NULL);
}

static gdn_status check_bucket(const gdn_prefill_plan *p, int bucket) {
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  if (bucket < 0 || bucket >= p->num_buckets)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "bucket = %d is outside [0, %d)", bucket, p->num_buckets);
  return GDN_SUCCESS;
}

gdn_status gdn_prefill_upload(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s,
                              int *bucket) {
  gdn_clear_last_error();
  if (p == NULL || bucket == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan and bucket must not be NULL");
  GDN_TRY(check_not_capturing(s, "gdn_prefill_upload"));
  gdn_prefill_request r = request_of(cu, slots, n);
  int32_t *host;
  GDN_TRY(stage_descriptor(p, &r, bucket, &host));
  return upload(p, host, s);
}

gdn_status gdn_prefill_launch_setup(gdn_prefill_plan *p, int bucket, cudaStream_t s) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  return gdn_fwd_emit_setup(&p->b[bucket].f, s, NULL, NULL, 0, NULL);
}

gdn_status gdn_prefill_launch_core(gdn_prefill_plan *p, int bucket, cudaStream_t s) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  return gdn_fwd_emit_core(&p->b[bucket].f, s, NULL, NULL, 0, NULL);
}

gdn_status gdn_prefill_run_eager(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  gdn_clear_last_error();
  int bucket;
  GDN_TRY(gdn_prefill_upload(p, cu, slots, n, s, &bucket));
  GDN_TRY(gdn_prefill_launch_setup(p, bucket, s));
  return gdn_prefill_launch_core(p, bucket, s);
}

gdn_status gdn_prefill_check_error(gdn_prefill_plan *p) {
  gdn_clear_last_error();
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  return gdn_batch_error_record_check(p->err);
}

gdn_status gdn_prefill_add_to_graph(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                    size_t num_deps, cudaGraphNode_t *last) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  if (graph == NULL || last == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "graph and last must not be NULL");
  cudaGraphNode_t setup;
  GDN_TRY(gdn_fwd_emit_setup(&p->b[bucket].f, NULL, graph, deps, num_deps, &setup));
  return gdn_fwd_emit_core(&p->b[bucket].f, NULL, graph, &setup, 1, last);
}

gdn_status gdn_prefill_add_setup_node(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                      size_t num_deps, cudaGraphNode_t *setup) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  if (graph == NULL || setup == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "graph and setup must not be NULL");
  return gdn_fwd_emit_setup(&p->b[bucket].f, NULL, graph, deps, num_deps, setup);
}

gdn_status gdn_prefill_add_core_nodes(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                      size_t num_deps, cudaGraphNode_t *last) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  if (graph == NULL || last == NULL || num_deps == 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "core nodes need a graph, an out node and deps including the setup node");
  return gdn_fwd_emit_core(&p->b[bucket].f, NULL, graph, deps, num_deps, last);
}

gdn_status gdn_prefill_batch_view(const gdn_prefill_plan *p, int bucket, gdn_batch *batch) {
  gdn_clear_last_error();
  GDN_TRY(check_bucket(p, bucket));
  if (batch == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch is NULL");
  *batch = p->b[bucket].f.batch;
  return GDN_SUCCESS;
}
