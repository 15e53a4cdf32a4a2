/* The prefill plan: per-bucket graphs of the GDN chunked forward, built and
 * instantiated once, replayed per batch after a one-copy descriptor upload. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/chunk_intra.h"
#include "gdn/prefill.h"
#include "gdn/prologue.h"
#include "graph/tail_zero.h"
#include "ops/chunk_scan/scan_plan.h"

#define GDN_MAX_BUCKETS 16
/* Pinned descriptor staging ring: GDN_RING slots in groups of GDN_RING_GROUP. One event
 * per group, recorded after the group's last copy and waited on before the group is
 * reused, keeps per-run host work to one copy and one graph launch (the host may run
 * GDN_RING - GDN_RING_GROUP batches ahead before it waits). */
#define GDN_RING 16
#define GDN_RING_GROUP 4

typedef struct bucket_ops {
  gdn_prefill_bucket cap;
  gdn_batch_setup_args setup;
  gdn_batch batch;
  gdn_prologue_args pro;
  gdn_prologue_config pro_cfg;
  gdn_chunk_intra_args intra;
  gdn_chunk_intra_config intra_cfg;
  gdn_chunk_scan_o_args scan;
  gdn_scan_config scan_cfg;
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
  int32_t *desc;        /* device: [N][cu_seqlens: desc_seqs + 1][slots: desc_seqs] */
  size_t desc_bytes;
  int32_t *staging;     /* pinned: GDN_RING descriptors */
  cudaEvent_t staged[GDN_RING / GDN_RING_GROUP];
  int ring_pos;
  gdn_batch_error_record *err;
  int own_graphs; /* 0: embedded only, the caller's graphs hold the nodes */
  void *allocs[16];
  int num_allocs;
};

static gdn_status plan_alloc(gdn_prefill_plan *p, size_t bytes, void **out) {
  if (p->num_allocs == (int)(sizeof p->allocs / sizeof p->allocs[0]))
    return gdn_fail(GDN_ERROR_INTERNAL, "prefill plan: too many workspace buffers");
  GDN_CUDA_TRY(cudaMalloc(out, bytes ? bytes : 16));
  p->allocs[p->num_allocs++] = *out;
  return GDN_SUCCESS;
}

static int cmp_bucket(const void *x, const void *y) {
  const gdn_prefill_bucket *a = (const gdn_prefill_bucket *)x, *b = (const gdn_prefill_bucket *)y;
  if (a->max_tokens != b->max_tokens) return a->max_tokens < b->max_tokens ? -1 : 1;
  return (a->max_seqs > b->max_seqs) - (a->max_seqs < b->max_seqs);
}

int gdn_prefill_pick_bucket(const gdn_prefill_plan *p, int num_tokens, int num_seqs) {
  for (int i = 0; i < p->num_buckets; ++i)
    if (p->b[i].cap.max_tokens >= num_tokens && p->b[i].cap.max_seqs >= num_seqs) return i;
  return -1;
}

int gdn_prefill_num_buckets(const gdn_prefill_plan *p) { return p->num_buckets; }
gdn_prefill_bucket gdn_prefill_bucket_at(const gdn_prefill_plan *p, int i) { return p->b[i].cap; }
int32_t *gdn_prefill_descriptor(gdn_prefill_plan *p) { return p->desc; }
int gdn_prefill_descriptor_seqs(const gdn_prefill_plan *p) { return p->desc_seqs; }

static gdn_status check_shape(const gdn_prefill_shape *s) {
  if (s->Hk <= 0 || s->Hv <= 0 || s->Hv % s->Hk != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: Hk = %d must divide Hv = %d (both > 0)", s->Hk, s->Hv);
  if (s->K != 64 && s->K != 128 && s->K != 256)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "shape: K = %d is not one of 64, 128, 256", s->K);
  if (s->V < 32 || s->V % 32 != 0)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "shape: V = %d is not a positive multiple of 32", s->V);
  if (s->dtype != GDN_DTYPE_BF16 && s->dtype != GDN_DTYPE_F16)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: dtype %s is not bf16 or fp16", gdn_dtype_name(s->dtype));
  if (!isfinite(s->scale)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "shape: scale is not finite");
  return GDN_SUCCESS;
}

/* Fills one bucket's operator arguments over the shared workspace. */
static gdn_status setup_bucket(gdn_prefill_plan *p, bucket_ops *b, void *batch_ws, size_t batch_ws_bytes, float *g_cum,
                               float *beta, float *gk_cum, void *w, void *u, void *qg, void *kg, void *aqk, float *qf,
                               float *kf) {
  const gdn_prefill_shape *s = &p->shape;
  const int64_t T = p->t_cap;
  const gdn_dtype dt = s->dtype;
  memset(&b->setup, 0, sizeof b->setup);
  b->setup.cu_seqlens = p->desc + 1;
  b->setup.slots = p->desc + 1 + p->desc_seqs + 1;
  b->setup.num_seqs_dev = p->desc;
  b->setup.max_seqs = b->cap.max_seqs;
  b->setup.max_tokens = b->cap.max_tokens;
  b->setup.num_slots = (int32_t)p->io.state.sizes[0];
  b->setup.workspace = batch_ws;
  b->setup.workspace_bytes = batch_ws_bytes;
  b->setup.error_record = p->err;
  GDN_TRY(gdn_batch_setup_view(&b->setup, &b->batch));

  memset(&b->pro, 0, sizeof b->pro);
  b->pro.batch = b->batch;
  b->pro.a = p->io.a;
  b->pro.b = p->io.b;
  b->pro.A_log = p->io.A_log;
  b->pro.dt_bias = p->io.dt_bias;
  b->pro.use_g = s->use_g;
  b->pro.beta = gdn_tensor_2d(beta, GDN_DTYPE_F32, T, s->Hv);
  if (s->use_gk) {
    b->pro.gk = p->io.gk;
    b->pro.gk_cum = gdn_tensor_3d(gk_cum, GDN_DTYPE_F32, T, s->Hv, s->K);
  } else if (s->use_g) {
    b->pro.g_cum = gdn_tensor_2d(g_cum, GDN_DTYPE_F32, T, s->Hv);
  }
  GDN_TRY(gdn_prologue_plan(&b->pro, &p->dev, &b->pro_cfg));

  memset(&b->intra, 0, sizeof b->intra);
  b->intra.mode = GDN_INTRA_FUSED;
  b->intra.batch = b->batch;
  b->intra.k = p->io.k;
  b->intra.v = p->io.v;
  b->intra.beta = b->pro.beta;
  b->intra.l2norm = s->l2norm_qk;
  b->intra.scale = s->scale;
  /* Folded WY form where the scan takes its column-split kernel: chunk_intra stores only
   * Tu = A_inv diag(beta) (in w's buffer) and the scan applies it to k and v, so w and u
   * never exist. Else the intra kernel stores w and u. */
  const int fold = !s->use_gk && gdn_scan_fold_default(&b->batch, s->Hv, s->K, &p->dev);
  if (fold) {
    b->intra.tu = gdn_tensor_3d(w, dt, T, s->Hv, 64);
  } else {
    b->intra.w = gdn_tensor_3d(w, dt, T, s->Hv, s->K);
    b->intra.u = gdn_tensor_3d(u, dt, T, s->Hv, s->V);
  }
  /* the causal q.k matrix is built here, in parallel, so the sequential scan skips it */
  b->intra.q = p->io.q;
  b->intra.aqk = gdn_tensor_3d(aqk, dt, T, s->Hv, 64);
  if (s->use_gk) {
    /* per-key path: the intra kernel also gates q and k */
    b->intra.gk = b->pro.gk_cum;
    b->intra.qg = gdn_tensor_3d(qg, dt, T, s->Hv, s->K);
    b->intra.kg = gdn_tensor_3d(kg, dt, T, s->Hv, s->K);
  } else {
    if (s->use_g) b->intra.g = b->pro.g_cum;
    if (s->l2norm_qk) {
      b->intra.qf = gdn_tensor_2d(qf, GDN_DTYPE_F32, T, s->Hv);
      b->intra.kf = gdn_tensor_2d(kf, GDN_DTYPE_F32, T, s->Hv);
    }
  }
  GDN_TRY(gdn_chunk_intra_plan(&b->intra, &p->dev, &b->intra_cfg));

  memset(&b->scan, 0, sizeof b->scan);
  b->scan.batch = b->batch;
  if (fold) {
    b->scan.v = p->io.v;
    b->scan.tu = b->intra.tu;
  } else {
    b->scan.w = b->intra.w;
    b->scan.u = b->intra.u;
  }
  b->scan.state = p->io.state;
  b->scan.o = p->io.o;
  b->scan.scale = s->scale;
  b->scan.aqk = b->intra.aqk;
  if (s->use_gk) {
    b->scan.q = b->intra.qg;
    b->scan.k = b->intra.kg;
    b->scan.gk = b->pro.gk_cum;
  } else {
    b->scan.q = p->io.q;
    b->scan.k = p->io.k;
    b->scan.g = b->intra.g;
    b->scan.qf = b->intra.qf;
    b->scan.kf = b->intra.kf;
  }
  GDN_TRY(gdn_chunk_scan_o_plan(&b->scan, &p->dev, &b->scan_cfg));
  return GDN_SUCCESS;
}

static gdn_status add_core_nodes(gdn_prefill_plan *p, bucket_ops *b, cudaGraph_t g, const cudaGraphNode_t *deps,
                                 size_t num_deps, cudaGraphNode_t *last) {
  cudaGraphNode_t pro, intra, scan, tail;
  GDN_TRY(gdn_prologue_add_node(&b->pro, &b->pro_cfg, g, deps, num_deps, &pro));
  GDN_TRY(gdn_chunk_intra_add_node(&b->intra, &b->intra_cfg, g, &pro, 1, &intra));
  GDN_TRY(gdn_chunk_scan_o_add_node(&b->scan, &b->scan_cfg, g, &intra, 1, &scan));
  GDN_TRY(gdn_tail_zero_add_node(&b->batch, &p->io.o, p->dev.sm_count, g, deps, num_deps, &tail));
  cudaGraphNode_t leaves[2] = {scan, tail};
  GDN_CUDA_TRY(cudaGraphAddEmptyNode(last, g, leaves, 2));
  return GDN_SUCCESS;
}

static gdn_status add_bucket_nodes(gdn_prefill_plan *p, bucket_ops *b, cudaGraph_t g, const cudaGraphNode_t *deps,
                                   size_t num_deps, cudaGraphNode_t *last) {
  cudaGraphNode_t setup;
  GDN_TRY(gdn_batch_setup_add_node(&b->setup, g, deps, num_deps, &setup));
  return add_core_nodes(p, b, g, &setup, 1, last);
}

static gdn_status create_plan(gdn_prefill_plan *p, const gdn_prefill_bucket *buckets, int nb) {
  const gdn_prefill_shape *s = &p->shape;
  for (int i = 0; i < nb; ++i) {
    if (buckets[i].max_tokens <= 0 || buckets[i].max_seqs <= 0)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "buckets[%d] = {%d tokens, %d seqs}: both must be > 0", i,
                      buckets[i].max_tokens, buckets[i].max_seqs);
  }
  gdn_prefill_bucket sorted[GDN_MAX_BUCKETS];
  for (int i = 0; i < nb; ++i) sorted[i] = buckets[i];
  qsort(sorted, (size_t)nb, sizeof sorted[0], cmp_bucket);
  p->num_buckets = nb;
  size_t batch_ws_bytes = 0;
  for (int i = 0; i < nb; ++i) {
    p->b[i].cap = sorted[i];
    if (sorted[i].max_tokens > p->t_cap) p->t_cap = sorted[i].max_tokens;
    if (sorted[i].max_seqs > p->desc_seqs) p->desc_seqs = sorted[i].max_seqs;
  }
  if (p->io.q.rank != 3 || p->io.q.sizes[0] < p->t_cap)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.q: must be [T_cap, Hk, K] with T_cap >= the largest bucket (%d tokens)",
                    p->t_cap);
  if (p->io.state.rank != 4)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.state: must be the pool [num_slots, Hv, V, K]");
  for (int i = 0; i < nb; ++i) {
    size_t need = gdn_batch_workspace_bytes(sorted[i].max_seqs, sorted[i].max_tokens, (int32_t)p->io.state.sizes[0]);
    if (need > batch_ws_bytes) batch_ws_bytes = need;
  }

  const size_t T = (size_t)p->t_cap, es = gdn_dtype_size(s->dtype);
  void *batch_ws, *g_cum = NULL, *beta, *gk_cum = NULL, *w, *u, *qg = NULL, *kg = NULL, *aqk, *qf = NULL, *kf = NULL;
  p->desc_bytes = (size_t)(2 * p->desc_seqs + 2) * sizeof(int32_t);
  GDN_TRY(plan_alloc(p, p->desc_bytes, (void **)&p->desc));
  GDN_CUDA_TRY(cudaMemset(p->desc, 0, p->desc_bytes));
  GDN_TRY(plan_alloc(p, batch_ws_bytes, &batch_ws));
  GDN_CUDA_TRY(cudaMemset(batch_ws, 0, batch_ws_bytes));
  GDN_TRY(plan_alloc(p, T * s->Hv * 4, &beta));
  if (s->use_gk) {
    GDN_TRY(plan_alloc(p, T * s->Hv * s->K * 4, &gk_cum));
    GDN_TRY(plan_alloc(p, T * s->Hv * s->K * es, &qg));
    GDN_TRY(plan_alloc(p, T * s->Hv * s->K * es, &kg));
  } else {
    if (s->use_g) GDN_TRY(plan_alloc(p, T * s->Hv * 4, &g_cum));
    if (s->l2norm_qk) {
      GDN_TRY(plan_alloc(p, T * s->Hv * 4, &qf));
      GDN_TRY(plan_alloc(p, T * s->Hv * 4, &kf));
    }
  }
  GDN_TRY(plan_alloc(p, T * s->Hv * 64 * es, &aqk));
  GDN_TRY(plan_alloc(p, T * s->Hv * s->K * es, &w));
  GDN_TRY(plan_alloc(p, T * s->Hv * s->V * es, &u));
  GDN_CUDA_TRY(cudaHostAlloc((void **)&p->staging, GDN_RING * p->desc_bytes, cudaHostAllocDefault));
  for (int r = 0; r < GDN_RING / GDN_RING_GROUP; ++r)
    GDN_CUDA_TRY(cudaEventCreateWithFlags(&p->staged[r], cudaEventDisableTiming));
  GDN_TRY(gdn_batch_error_record_create(&p->err));

  for (int i = 0; i < nb; ++i) {
    bucket_ops *b = &p->b[i];
    GDN_TRY(setup_bucket(p, b, batch_ws, batch_ws_bytes, (float *)g_cum, (float *)beta, (float *)gk_cum, w, u, qg, kg,
                         aqk, (float *)qf, (float *)kf));
    if (!p->own_graphs) continue;
    GDN_CUDA_TRY(cudaGraphCreate(&b->graph, 0));
    cudaGraphNode_t last;
    GDN_TRY(add_bucket_nodes(p, b, b->graph, NULL, 0, &last));
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
  if (out == NULL || shape == NULL || io == NULL || buckets == NULL)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "prefill plan: plan, shape, io and buckets must not be NULL");
  *out = NULL;
  GDN_TRY(check_shape(shape));
  if (num_buckets < 1 || num_buckets > GDN_MAX_BUCKETS)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_buckets = %d is outside 1..%d", num_buckets, GDN_MAX_BUCKETS);
  if (shape->use_gk && !gdn_tensor_present(&io->gk))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.gk: required by shape.use_gk");
  if (!gdn_tensor_present(&io->state))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "io.state: the state pool is required (use slot -1 for no state)");
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
  return plan_create(out, shape, io, buckets, num_buckets, device, 1);
}

gdn_status gdn_prefill_plan_create_embedded(gdn_prefill_plan **out, const gdn_prefill_shape *shape,
                                            const gdn_prefill_io *io, const gdn_prefill_bucket *buckets,
                                            int num_buckets, int device) {
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
  for (int i = 0; i < p->num_allocs; ++i) cudaFree(p->allocs[i]);
  cudaSetDevice(prev);
  free(p);
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
static gdn_status stage_descriptor(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, int *bucket,
                                   int32_t **host) {
  if (cu == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "cu_seqlens is NULL");
  if (n < 0) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is negative", n);
  *bucket = gdn_prefill_pick_bucket(p, cu[n], n);
  if (*bucket < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "batch of %d tokens in %d sequences exceeds every bucket (largest: %d tokens, %d sequences)", cu[n], n,
                    p->b[p->num_buckets - 1].cap.max_tokens, p->desc_seqs);
  int32_t *d = NULL;
  GDN_TRY(ring_take(p, &d));
  d[0] = n;
  memcpy(d + 1, cu, (size_t)(n + 1) * sizeof(int32_t));
  int32_t *ds = d + 1 + p->desc_seqs + 1;
  for (int i = 0; i < n; ++i) ds[i] = slots ? slots[i] : GDN_PAD_SLOT;
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

gdn_status gdn_prefill_run(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  GDN_TRY(check_own_graphs(p));
  int bucket;
  int32_t *host;
  GDN_TRY(stage_descriptor(p, cu, slots, n, &bucket, &host));
  GDN_TRY(upload(p, host, s));
  GDN_CUDA_TRY(cudaGraphLaunch(p->b[bucket].exec, s));
  return GDN_SUCCESS;
}

gdn_status gdn_prefill_run_device(gdn_prefill_plan *p, const int32_t *cu_dev, const int32_t *slots_dev, int n,
                                  int num_tokens, cudaStream_t s) {
  if (p == NULL || cu_dev == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan and cu_seqlens must not be NULL");
  if (n < 0) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "num_seqs = %d is negative", n);
  GDN_TRY(check_own_graphs(p));
  int bucket = gdn_prefill_pick_bucket(p, num_tokens, n);
  if (bucket < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch of %d tokens in %d sequences exceeds every bucket", num_tokens, n);
  int32_t *d = NULL;
  GDN_TRY(ring_take(p, &d));
  d[0] = n;
  GDN_CUDA_TRY(cudaMemcpyAsync(p->desc, d, sizeof(int32_t), cudaMemcpyHostToDevice, s));
  GDN_TRY(ring_release(p, d, s));
  GDN_CUDA_TRY(cudaMemcpyAsync(p->desc + 1, cu_dev, (size_t)(n + 1) * sizeof(int32_t), cudaMemcpyDeviceToDevice, s));
  int32_t *ds = p->desc + 1 + p->desc_seqs + 1;
  if (slots_dev) GDN_CUDA_TRY(cudaMemcpyAsync(ds, slots_dev, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToDevice, s));
  else GDN_CUDA_TRY(cudaMemsetAsync(ds, 0xFF, (size_t)n * sizeof(int32_t), s)); /* -1 */
  GDN_CUDA_TRY(cudaGraphLaunch(p->b[bucket].exec, s));
  return GDN_SUCCESS;
}

static gdn_status check_bucket(const gdn_prefill_plan *p, int bucket) {
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  if (bucket < 0 || bucket >= p->num_buckets)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "bucket = %d is outside [0, %d)", bucket, p->num_buckets);
  return GDN_SUCCESS;
}

gdn_status gdn_prefill_upload(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s,
                              int *bucket) {
  if (p == NULL || bucket == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan and bucket must not be NULL");
  int32_t *host;
  GDN_TRY(stage_descriptor(p, cu, slots, n, bucket, &host));
  return upload(p, host, s);
}

gdn_status gdn_prefill_launch_setup(gdn_prefill_plan *p, int bucket, cudaStream_t s) {
  GDN_TRY(check_bucket(p, bucket));
  return gdn_batch_setup_launch(&p->b[bucket].setup, s);
}

gdn_status gdn_prefill_launch_core(gdn_prefill_plan *p, int bucket, cudaStream_t s) {
  GDN_TRY(check_bucket(p, bucket));
  bucket_ops *b = &p->b[bucket];
  GDN_TRY(gdn_prologue_launch(&b->pro, &b->pro_cfg, s));
  GDN_TRY(gdn_chunk_intra_launch(&b->intra, &b->intra_cfg, s));
  GDN_TRY(gdn_chunk_scan_o_launch(&b->scan, &b->scan_cfg, s));
  return gdn_tail_zero_launch(&b->batch, &p->io.o, p->dev.sm_count, s);
}

gdn_status gdn_prefill_run_eager(gdn_prefill_plan *p, const int32_t *cu, const int32_t *slots, int n, cudaStream_t s) {
  int bucket;
  GDN_TRY(gdn_prefill_upload(p, cu, slots, n, s, &bucket));
  GDN_TRY(gdn_prefill_launch_setup(p, bucket, s));
  return gdn_prefill_launch_core(p, bucket, s);
}

gdn_status gdn_prefill_check_error(gdn_prefill_plan *p) {
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  return gdn_batch_error_record_check(p->err);
}

gdn_status gdn_prefill_add_to_graph(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                    size_t num_deps, cudaGraphNode_t *last) {
  GDN_TRY(check_bucket(p, bucket));
  if (graph == NULL || last == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "graph and last must not be NULL");
  return add_bucket_nodes(p, &p->b[bucket], graph, deps, num_deps, last);
}

gdn_status gdn_prefill_add_setup_node(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                      size_t num_deps, cudaGraphNode_t *setup) {
  GDN_TRY(check_bucket(p, bucket));
  return gdn_batch_setup_add_node(&p->b[bucket].setup, graph, deps, num_deps, setup);
}

gdn_status gdn_prefill_add_core_nodes(gdn_prefill_plan *p, int bucket, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                      size_t num_deps, cudaGraphNode_t *last) {
  GDN_TRY(check_bucket(p, bucket));
  if (graph == NULL || last == NULL || num_deps == 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "core nodes need a graph, an out node and deps including the setup node");
  return add_core_nodes(p, &p->b[bucket], graph, deps, num_deps, last);
}

gdn_status gdn_prefill_batch_view(const gdn_prefill_plan *p, int bucket, gdn_batch *batch) {
  GDN_TRY(check_bucket(p, bucket));
  if (batch == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch is NULL");
  *batch = p->b[bucket].batch;
  return GDN_SUCCESS;
}
