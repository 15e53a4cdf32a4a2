/* The GDN forward's operators over one workspace: policy, layout, binding, emission. */
#include <string.h>
#include "core/cuda_util.h"
#include "core/params.h"
#include "graph/forward_ops.h"
#include "graph/tail_zero.h"
#include "ops/chunk_scan/scan_plan.h"

static size_t align256(size_t x) { return (x + 255u) & ~(size_t)255u; }

static gdn_batch_setup_args setup_shape(const gdn_prefill_shape *s, gdn_prefill_bucket rows, const gdn_fwd_policy *pol) {
  gdn_batch_setup_args a;
  memset(&a, 0, sizeof a);
  a.max_seqs = rows.max_seqs;
  a.max_tokens = rows.max_tokens;
  a.checkpoint_offsets = pol->checkpoints ? (const int32_t *)(uintptr_t)16 : NULL; /* reserves the table */
  a.checkpoint_every = 64;
  a.cp_min_chunks = pol->cp_min_chunks;
  a.cp_units = pol->cp_units;
  a.cp_heads = s->Hv;
  a.cp_max_pairs = pol->cp_max_pairs;
  return a;
}

gdn_fwd_layout gdn_fwd_layout_of(const gdn_prefill_shape *s, gdn_prefill_bucket cap, const gdn_fwd_policy *pol) {
  gdn_fwd_layout l;
  memset(&l, 0, sizeof l);
  const size_t T = (size_t)cap.max_tokens, Hv = (size_t)s->Hv, K = (size_t)s->K, V = (size_t)s->V;
  const size_t es = gdn_dtype_size(s->dtype);
  gdn_batch_setup_args sa = setup_shape(s, cap, pol);
  l.batch_bytes = gdn_batch_workspace_bytes_for(&sa);
  l.cp_bytes = gdn_scan_cp_bytes(gdn_batch_max_segments(&sa), s->Hv, s->V, s->K);
  size_t off = 0;
#define GDN_REGION(field, bytes) \
  do {                           \
    l.field = off;               \
    off += align256(bytes);      \
  } while (0)
  GDN_REGION(batch, l.batch_bytes);
  GDN_REGION(beta, T * Hv * 4u);
  GDN_REGION(g_cum, s->use_g && !s->use_gk ? T * Hv * 4u : 0u);
  GDN_REGION(gk_cum, s->use_gk ? T * Hv * K * 4u : 0u);
  GDN_REGION(qg, s->use_gk ? T * Hv * K * es : 0u);
  GDN_REGION(kg, s->use_gk ? T * Hv * K * es : 0u);
  GDN_REGION(qf, s->l2norm_qk && !s->use_gk ? T * Hv * 4u : 0u);
  GDN_REGION(kf, s->l2norm_qk && !s->use_gk ? T * Hv * 4u : 0u);
  GDN_REGION(aqk, T * Hv * 64u * es);
  GDN_REGION(w, T * Hv * (pol->fold ? 64u : K) * es);
  GDN_REGION(u, pol->fold ? 0u : T * Hv * V * es);
  GDN_REGION(cp, l.cp_bytes);
#undef GDN_REGION
  l.total = off;
  return l;
}

/* Plan-time stand-ins for the caller's tensors: distinct, aligned, never dereferenced
 * (the operators' planners only read shapes, strides and alignment). */
static void fake_tensors(const gdn_prefill_shape *s, int64_t T, const gdn_fwd_policy *pol, gdn_fwd_tensors *t) {
  uintptr_t base = (uintptr_t)1 << 48; /* 2^44 apart: more than any tensor of a 2^30-token capacity */
  const uintptr_t step = (uintptr_t)1 << 44;
#define GDN_FAKE() ((void *)(base += step))
  memset(t, 0, sizeof *t);
  t->q = gdn_tensor_3d(GDN_FAKE(), s->dtype, T, s->Hk, s->K);
  t->k = gdn_tensor_3d(GDN_FAKE(), s->dtype, T, s->Hk, s->K);
  t->v = gdn_tensor_3d(GDN_FAKE(), s->dtype, T, s->Hv, s->V);
  t->o = gdn_tensor_3d(GDN_FAKE(), s->dtype, T, s->Hv, s->V);
  if (s->gate == GDN_GATE_PRECOMPUTED) {
    if (s->use_g) t->g = gdn_tensor_2d(GDN_FAKE(), GDN_DTYPE_F32, T, s->Hv);
    t->beta = gdn_tensor_2d(GDN_FAKE(), GDN_DTYPE_F32, T, s->Hv);
  } else {
    if (s->use_g) {
      t->a = gdn_tensor_2d(GDN_FAKE(), GDN_DTYPE_F32, T, s->Hv);
      t->A_log = gdn_tensor_1d(GDN_FAKE(), GDN_DTYPE_F32, s->Hv);
      t->dt_bias = gdn_tensor_1d(GDN_FAKE(), GDN_DTYPE_F32, s->Hv);
    }
    t->b = gdn_tensor_2d(GDN_FAKE(), GDN_DTYPE_F32, T, s->Hv);
  }
  if (s->use_gk) t->gk = gdn_tensor_3d(GDN_FAKE(), GDN_DTYPE_F32, T, s->Hv, s->K);
  t->state_in = gdn_tensor_4d(GDN_FAKE(), GDN_DTYPE_F32, 1, s->Hv, s->V, s->K);
  t->state_out = t->state_in;
  if (pol->checkpoints) {
    t->checkpoints = gdn_tensor_4d(GDN_FAKE(), GDN_DTYPE_F32, 1, s->Hv, s->V, s->K);
    t->checkpoint_every = 64;
  }
  if (pol->norm) {
    t->norm_z = gdn_tensor_3d(GDN_FAKE(), s->dtype, T, s->Hv, s->V);
    t->norm_weight = gdn_tensor_1d(GDN_FAKE(), GDN_DTYPE_F32, s->V);
  }
#undef GDN_FAKE
}

gdn_status gdn_fwd_bind_standins(gdn_fwd *f, const gdn_prefill_shape *s, const gdn_device_info *dev,
                                 const gdn_fwd_policy *pol, gdn_prefill_bucket cap) {
  gdn_fwd_tensors t;
  fake_tensors(s, cap.max_tokens, pol, &t);
  gdn_fwd_layout l = gdn_fwd_layout_of(s, cap, pol);
  gdn_fwd_batch_src src;
  memset(&src, 0, sizeof src);
  src.cu_seqlens = (const int32_t *)((uintptr_t)1 << 54);
  src.slots = src.cu_seqlens + ((size_t)1 << 30);
  src.checkpoint_offsets = pol->checkpoints ? src.slots + ((size_t)1 << 30) : NULL;
  src.num_seqs = 0;
  return gdn_fwd_bind(f, s, dev, pol, &l, cap, &t, &src, (void *)((uintptr_t)1 << 56), NULL);
}

/* CTAs of the scan's main kernel one SM holds: its shared memory, and registers at the
 * launch bound's 255 per thread (the warpgroup kernel's producer warpgroup gives its
 * registers to the compute warps: the same CTA total). */
static int scan_ctas_per_sm(const gdn_scan_config *c, const gdn_device_info *dev) {
  const int threads = 32 * c->num_warps;
  int by_regs = 65536 / (threads * 256), by_smem = (int)(dev->smem_per_sm / (c->smem_bytes + 1024));
  int n = by_regs < by_smem ? by_regs : by_smem;
  return n > 0 ? n : 1;
}

gdn_status gdn_fwd_policy_for(const gdn_prefill_shape *s, gdn_prefill_bucket cap, const gdn_device_info *dev,
                              int checkpoints, int norm, gdn_fwd_policy *pol) {
  memset(pol, 0, sizeof *pol);
  pol->checkpoints = checkpoints;
  gdn_fwd f;
  /* context parallelism where a batch of this capacity leaves the device idle
   * (gdn_batch_setup_context_parallel's policy, the capacity's own batch included; GDN_CP=0
   * turns it off). H200, bench_prefill, CP vs GDN_CP=0, one sequence: TP1 8192 tokens 410
   * vs 487 us, 32768 1355 vs 1823, TP4 193 vs 444, 417 vs 1606 */
  int env_cp = 1;
  if (gdn_param_int(GDN_PARAM_CP, &env_cp) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  gdn_batch_setup_args probe;
  memset(&probe, 0, sizeof probe);
  probe.max_tokens = cap.max_tokens;
  probe.max_seqs = cap.max_seqs;
  const int cp = env_cp != 0 && gdn_batch_setup_context_parallel(&probe, s->Hv, dev) == 0;
  if (cp) {
    pol->cp_min_chunks = probe.cp_min_chunks;
    pol->cp_units = probe.cp_units; /* provisional: refined from the scan's config below */
    pol->cp_max_pairs = probe.cp_max_pairs;
  }
  gdn_batch b;
  memset(&b, 0, sizeof b);
  b.max_seqs = cap.max_seqs;
  b.max_tokens = cap.max_tokens;
  b.max_chunks = gdn_batch_max_chunks(cap.max_tokens, cap.max_seqs);
  if (cp) { /* the planner's view of a segmented batch */
    gdn_batch_setup_args sa = setup_shape(s, cap, pol);
    b.max_segments = gdn_batch_max_segments(&sa);
    b.segments = (const gdn_batch_segment *)(uintptr_t)16;
  }
  /* the folded form where the one-segment schedule takes the column-split kernel anyway, or
   * where every long batch of the capacity is cut (its segments run the column-split kernel) */
  gdn_batch b1 = b;
  b1.segments = NULL;
  b1.max_segments = 0;
  pol->fold = !s->use_gk && (gdn_scan_fold_default(&b1, s->Hv, s->K, s->V, dev) ||
                             (cp && s->K <= 128));
  if (cp) {
    GDN_TRY(gdn_fwd_bind_standins(&f, s, dev, pol, cap));
    const int nvb = s->V / f.scan_cp_cfg.bv;
    pol->cp_units = dev->sm_count * scan_ctas_per_sm(&f.scan_cp_cfg, dev) / (nvb > 0 ? nvb : 1);
    if (pol->cp_units < 1) pol->cp_units = 1;
  }
  /* The output norm in the scan where its plan for this capacity already takes whole rows on
   * the warpgroup kernel (the folded forward at BV = V = 128, one schedule): there it saves a
   * write and a read of o and a launch. Elsewhere (narrow batches: BV 64; context
   * parallelism: two schedules) gdn_gated_rmsnorm runs after the scan, in place on o. */
  if (norm) {
    int env_norm = -1;
    if (gdn_param_int(GDN_PARAM_NORM_IN_SCAN, &env_norm) < 0) return GDN_ERROR_INVALID_ARGUMENT;
    if (env_norm < -1 || env_norm > 1)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "GDN_NORM_IN_SCAN=%d: expected 1, 0 or -1 (planned)", env_norm);
    pol->norm = 2;
    if (env_norm != 0 && pol->fold && !cp) {
      GDN_TRY(gdn_fwd_bind_standins(&f, s, dev, pol, cap));
      if (f.scan_cfg.column_split == 2 && f.scan_cfg.bv == s->V && s->V == 128) {
        pol->norm = 1;
        const gdn_status st = gdn_fwd_bind_standins(&f, s, dev, pol, cap);
        if (st != GDN_SUCCESS) { /* e.g. overridden stages: no room */
          if (env_norm == 1) return st; /* the plan's message says why */
          pol->norm = 2;
          gdn_clear_last_error();
        }
      }
    }
    if (env_norm == 1 && pol->norm != 1)
      return gdn_fail(GDN_ERROR_UNSUPPORTED,
                      "GDN_NORM_IN_SCAN=1: the scan of the bucket {%d tokens, %d seqs} does not own whole rows (the "
                      "warpgroup scan at BV = V = 128: compute capability 9.0, K = V = 128, max_seqs x Hv >= 1.4 SMs, "
                      "no context parallelism)",
                      cap.max_tokens, cap.max_seqs);
  }
  return GDN_SUCCESS;
}

gdn_status gdn_fwd_bind(gdn_fwd *f, const gdn_prefill_shape *s, const gdn_device_info *dev,
                        const gdn_fwd_policy *pol, const gdn_fwd_layout *l, gdn_prefill_bucket rows,
                        const gdn_fwd_tensors *t, const gdn_fwd_batch_src *src, void *ws, const gdn_fwd *cfgs) {
  memset(f, 0, sizeof *f);
  unsigned char *w = (unsigned char *)ws;
  const int64_t T = rows.max_tokens;
  const gdn_dtype dt = s->dtype;
  f->sm_count = dev->sm_count;
  f->o = t->o;
  f->norm_mode = pol->norm;

  gdn_batch_setup_args *sa = &f->setup;
  *sa = setup_shape(s, rows, pol);
  sa->cu_seqlens = src->cu_seqlens;
  sa->cu_seqlens64 = src->cu_seqlens64;
  sa->num_seqs_dev = src->num_seqs_dev;
  sa->num_seqs = src->num_seqs;
  sa->slots = src->slots;
  sa->slots_identity = src->slots_identity;
  sa->slots_out = src->slots_out;
  sa->slots_out_select = src->slots_out_select;
  sa->slots_out_mode = src->slots_out_mode;
  sa->state_aliased = src->state_aliased;
  sa->num_slots = gdn_tensor_present(&t->state_in) ? (int32_t)t->state_in.sizes[0] : 0;
  sa->num_slots_out = gdn_tensor_present(&t->state_out) ? (int32_t)t->state_out.sizes[0] : 0;
  sa->checkpoint_offsets = pol->checkpoints ? src->checkpoint_offsets : NULL;
  sa->checkpoint_every = t->checkpoint_every > 0 ? t->checkpoint_every : 64;
  sa->num_checkpoints = gdn_tensor_present(&t->checkpoints) ? (int32_t)t->checkpoints.sizes[0] : 0;
  sa->workspace = w + l->batch;
  sa->workspace_bytes = l->batch_bytes;
  sa->error_record = src->error_record;
  GDN_TRY(gdn_batch_setup_view(sa, &f->batch));

  gdn_prologue_args *pro = &f->pro;
  pro->batch = f->batch;
  pro->use_g = s->use_g;
  pro->precomputed = s->gate == GDN_GATE_PRECOMPUTED;
  if (pro->precomputed) {
    pro->a = t->g;
    pro->b = t->beta;
  } else {
    pro->a = t->a;
    pro->b = t->b;
    pro->A_log = t->A_log;
    pro->dt_bias = t->dt_bias;
  }
  pro->beta = gdn_tensor_2d(w + l->beta, GDN_DTYPE_F32, T, s->Hv);
  if (s->use_gk) {
    pro->gk = t->gk;
    pro->gk_cum = gdn_tensor_3d(w + l->gk_cum, GDN_DTYPE_F32, T, s->Hv, s->K);
  } else if (s->use_g) {
    pro->g_cum = gdn_tensor_2d(w + l->g_cum, GDN_DTYPE_F32, T, s->Hv);
  }

  gdn_chunk_intra_args *in = &f->intra;
  in->mode = GDN_INTRA_FUSED;
  in->batch = f->batch;
  in->k = t->k;
  in->v = t->v;
  in->beta = pro->beta;
  in->l2norm = s->l2norm_qk;
  in->scale = s->scale;
  if (pol->fold) {
    in->tu = gdn_tensor_3d(w + l->w, dt, T, s->Hv, 64);
  } else {
    in->w = gdn_tensor_3d(w + l->w, dt, T, s->Hv, s->K);
    in->u = gdn_tensor_3d(w + l->u, dt, T, s->Hv, s->V);
  }
  /* the causal q.k matrix is built here, in parallel, so the sequential scan skips it */
  in->q = t->q;
  in->aqk = gdn_tensor_3d(w + l->aqk, dt, T, s->Hv, 64);
  if (s->use_gk) { /* per-key path: the intra kernel also gates q and k */
    in->gk = pro->gk_cum;
    in->qg = gdn_tensor_3d(w + l->qg, dt, T, s->Hv, s->K);
    in->kg = gdn_tensor_3d(w + l->kg, dt, T, s->Hv, s->K);
  } else {
    if (s->use_g) in->g = pro->g_cum;
    if (s->l2norm_qk) {
      in->qf = gdn_tensor_2d(w + l->qf, GDN_DTYPE_F32, T, s->Hv);
      in->kf = gdn_tensor_2d(w + l->kf, GDN_DTYPE_F32, T, s->Hv);
    }
  }

  gdn_chunk_scan_o_args *sc = &f->scan;
  sc->batch = f->batch;
  if (pol->fold) {
    sc->v = t->v;
    sc->tu = in->tu;
  } else {
    sc->w = in->w;
    sc->u = in->u;
  }
  sc->state = t->state_in;
  /* a separate final-state tensor, unless it is the very pool read (updated in place) */
  if (gdn_tensor_present(&t->state_out) && !gdn_fwd_same_view(&t->state_out, &t->state_in))
    sc->state_out = t->state_out;
  sc->checkpoints = t->checkpoints;
  sc->checkpoint_every = t->checkpoint_every;
  sc->o = t->o;
  if (pol->norm == 1) {
    sc->norm_z = t->norm_z;
    sc->norm_weight = t->norm_weight;
    sc->norm_eps = t->norm_eps;
  }
  sc->scale = s->scale;
  sc->aqk = in->aqk;
  sc->cp_workspace = l->cp_bytes ? w + l->cp : NULL;
  sc->cp_workspace_bytes = l->cp_bytes;
  if (s->use_gk) {
    sc->q = in->qg;
    sc->k = in->kg;
    sc->gk = pro->gk_cum;
  } else {
    sc->q = t->q;
    sc->k = t->k;
    sc->g = in->g;
    sc->qf = in->qf;
    sc->kf = in->kf;
  }

  /* with segments: the segmented schedule, and the one-segment schedule over the same tables
   * without the segment view; the device runs one of them per batch */
  f->cp = f->batch.segments != NULL;
  if (f->cp) {
    f->scan_cp = *sc;
    f->scan_cp.batch.when_cut = 1;
    sc->batch.segments = NULL;
    sc->batch.seq_segments = NULL;
    sc->batch.max_segments = 0;
    sc->batch.when_cut = -1;
    sc->cp_workspace = NULL;
    sc->cp_workspace_bytes = 0;
  }

  if (pol->norm == 2) { /* rows of the bucket: [num_tokens, T) zeroed like the tail */
    gdn_gated_rmsnorm_args *na = &f->norm;
    na->x = t->o;
    na->x.sizes[0] = T;
    na->z = t->norm_z;
    na->weight = t->norm_weight;
    na->out = na->x;
    na->eps = t->norm_eps;
    na->batch = f->batch;
  }

  if (cfgs != NULL) {
    f->pro_cfg = cfgs->pro_cfg;
    f->intra_cfg = cfgs->intra_cfg;
    f->scan_cfg = cfgs->scan_cfg;
    f->scan_cp_cfg = cfgs->scan_cp_cfg;
    f->norm_cfg = cfgs->norm_cfg;
    return GDN_SUCCESS;
  }
  GDN_TRY(gdn_prologue_plan(pro, dev, &f->pro_cfg));
  GDN_TRY(gdn_chunk_intra_plan(in, dev, &f->intra_cfg));
  if (pol->norm == 2) GDN_TRY(gdn_gated_rmsnorm_plan(&f->norm, dev, &f->norm_cfg));
  if (f->cp) GDN_TRY(gdn_chunk_scan_o_plan(&f->scan_cp, dev, &f->scan_cp_cfg));
  return gdn_chunk_scan_o_plan(sc, dev, &f->scan_cfg);
}

gdn_status gdn_fwd_emit_setup(const gdn_fwd *f, cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *deps,
                              size_t num_deps, cudaGraphNode_t *last) {
  if (graph == NULL) return gdn_batch_setup_launch(&f->setup, stream);
  return gdn_batch_setup_add_node(&f->setup, graph, deps, num_deps, last);
}

gdn_status gdn_fwd_emit_core(const gdn_fwd *f, cudaStream_t stream, cudaGraph_t g, const cudaGraphNode_t *deps,
                             size_t num_deps, cudaGraphNode_t *last) {
  if (g == NULL) {
    GDN_TRY(gdn_prologue_launch(&f->pro, &f->pro_cfg, stream));
    GDN_TRY(gdn_chunk_intra_launch(&f->intra, &f->intra_cfg, stream));
    if (f->cp) GDN_TRY(gdn_chunk_scan_o_launch(&f->scan_cp, &f->scan_cp_cfg, stream));
    GDN_TRY(gdn_chunk_scan_o_launch(&f->scan, &f->scan_cfg, stream));
    GDN_TRY(gdn_tail_zero_launch(&f->batch, &f->o, f->sm_count, stream));
    if (f->norm_mode == 2) GDN_TRY(gdn_gated_rmsnorm_launch(&f->norm, &f->norm_cfg, stream));
    return GDN_SUCCESS;
  }
  cudaGraphNode_t pro, intra, leaves[3];
  int n = 0;
  GDN_TRY(gdn_prologue_add_node(&f->pro, &f->pro_cfg, g, deps, num_deps, &pro));
  GDN_TRY(gdn_chunk_intra_add_node(&f->intra, &f->intra_cfg, g, &pro, 1, &intra));
  if (f->cp) GDN_TRY(gdn_chunk_scan_o_add_node(&f->scan_cp, &f->scan_cp_cfg, g, &intra, 1, &leaves[n++]));
  GDN_TRY(gdn_chunk_scan_o_add_node(&f->scan, &f->scan_cfg, g, &intra, 1, &leaves[n++]));
  GDN_TRY(gdn_tail_zero_add_node(&f->batch, &f->o, f->sm_count, g, deps, num_deps, &leaves[n++]));
  /* the separate norm after every writer of o (it zeroes the tail rows too) */
  if (f->norm_mode == 2) return gdn_gated_rmsnorm_add_node(&f->norm, &f->norm_cfg, g, leaves, (size_t)n, last);
  GDN_CUDA_TRY(cudaGraphAddEmptyNode(last, g, leaves, (size_t)n));
  return GDN_SUCCESS;
}
