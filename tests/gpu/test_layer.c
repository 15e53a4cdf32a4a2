/* The GDN layer plan (graph/layer.c) end to end on one GPU against the float64 layer
 * reference gdn_ref_layer (ref/ref_layer_full.c):
 *
 *  - R = 1 with a REAL single-rank NCCL communicator (the all-reduce node is in the graph).
 *    One plan, 2 buckets ({256 tokens, 4 seqs}, {1024, 8}), replayed over fixed edge batches
 *    (N = 0, a single token, lengths 0 / 2 < W-1 / 65, a full bucket, slots = NULL) and
 *    random varlen batches (random distinct slots or -1). Per replay: y rows < T vs the
 *    reference per sequence; y rows [T, T_b) exactly 0; rows >= T_b untouched (poison); the
 *    pool slots the batch names vs the reference pools (updated batch after batch), every
 *    other slot bit-identical; x rows [T, T_cap) hold NaN on every other replay (they must
 *    not reach anything). The same batch through gdn_layer_run_eager from a copy of the
 *    pools: y and pools identical to the graph replay (<= 1e-6: the same kernels and
 *    cuBLASLt algorithms). After all replays: both whole pools vs the reference pools.
 *  - device-checked invalid batches (slot named twice, slot out of range): check_error gives
 *    GDN_ERROR_INVALID_BATCH, pools untouched, the next batch is right; batches over every
 *    bucket: GDN_ERROR_INVALID_ARGUMENT at once. Plan-creation argument errors.
 *  - the sharding math on one GPU: the layer's weights split into R = 2 shards
 *    (gdn_ref_layer_shard_make), two plans WITHOUT a communicator run the same batch; the
 *    host sum of their y == the unsharded GPU y and the reference; each shard's pools == the
 *    slice of the unsharded pools.
 * Cases: bf16 (hidden 256, Hk 2, Hv 4, K = V = 128, W 4, no conv bias, bf16 conv weight) and
 * fp16 (hidden 128, Hk 2, Hv 4, K 64, V 128, W 3, fp32 conv weight + bias, eps 1e-5).
 *
 * Tolerances. The reference sees the same rounded inputs (x, weights, initial pools), so the
 * difference is the GPU's storage precision along the chain: mixed = x W_in^T rounded to
 * bf16 (2^-9 relative), conv1d output q/k/v rounded (2^-9), the chunked GDN core (its own
 * test bounds it by 2e-2: bf16 w/u intermediates, fp32 tensor-core math, o rounded), the
 * RMSNorm output rounded (2^-9), y rounded (2^-9). RMSNorm and l2norm are scale invariant
 * and out_proj averages independent errors over Hv*V inputs, so the errors add roughly in
 * quadrature: ~1e-2 worst case per sequence, 3e-2 leaves margin. The recurrent state pool
 * (fp32, carried over replays; errors decay with the gate) gets the same 3e-2; the conv
 * pool only holds rounded copies of mixed (1e-2). Sharded vs unsharded GPU: the shards'
 * in_proj may pick other cuBLASLt tilings (rounding flips in mixed) and each partial y is
 * rounded before the host sum: 2e-2. A real bug (row layout, head mapping, slot, conv
 * state, gate) gives errors of order 1.
 *
 * Usage: test_layer [substring] runs the cases whose name contains it. GDN_TEST_SEED=<seed>
 * replays a run. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "gdn/batch.h"
#include "gdn/layer.h"
#include "gdn/reference.h"
#include "gpu_util.h"
#include "test_batch.h"

#define NUM_SLOTS 8
#define T_CAP 1024
#define BOUND 3e-2       /* y per sequence, recurrent state per slot: GPU vs reference */
#define CONV_BOUND 1e-2  /* conv-state pool vs reference */
#define SHARD_BOUND 2e-2 /* sum of GPU shards vs unsharded GPU */
#define SAME_BOUND 1e-6  /* eager vs graph */

static uint64_t g_seed;
static ncclComm_t g_comm;

typedef struct lcase {
  const char *name;
  gdn_dtype dt;
  int hidden, Hk, Hv, K, V, W;
  int conv_bias, conv_w_f32;
  double eps;
  int random_batches;
  int full; /* invalid batches, argument errors */
} lcase;

static const lcase kCases[] = {
    {"bf16: hidden 256, Hk2/Hv4, K128/V128, W4", GDN_DTYPE_BF16, 256, 2, 4, 128, 128, 4, 0, 0, 1e-6, 6, 1},
    {"fp16: hidden 128, Hk2/Hv4, K64/V128, W3, fp32 conv weight + bias", GDN_DTYPE_F16, 128, 2, 4, 64, 128, 3, 1, 1, 1e-5,
     3, 0},
};

/* Unsorted on purpose: the plan sorts them. */
static const gdn_prefill_bucket kBuckets[2] = {{T_CAP, 8}, {256, 4}};

typedef gdn_test_hbatch batch;

/* The unsharded layer on the host (values already rounded to what the device holds). */
typedef struct host_model {
  gdn_ref_layer_shape s;
  gdn_ref_layer_weights w;
  double *w_in, *conv_w, *conv_b, *A_log, *dt_bias, *norm_w, *w_out;
  double *state0, *conv0; /* initial pools */
} host_model;

/* One plan on the device (the unsharded layer or one shard) with its buffers. */
typedef struct dev_layer {
  const lcase *c;
  gdn_ref_layer_shape s;
  int64_t D, Dtot;
  size_t n_state, n_conv;
  void *w_in, *conv_w, *conv_b, *A_log, *dt_bias, *norm_w, *w_out;
  void *x, *y, *state, *conv, *state_bak, *conv_bak;
  gdn_layer_plan *plan;
} dev_layer;

/* ---------------------------------------------------------------- helpers */


static int64_t conv_channels(const gdn_ref_layer_shape *s) { return 2 * (int64_t)s->Hk * s->K + (int64_t)s->Hv * s->V; }
static int64_t in_rows(const gdn_ref_layer_shape *s) { return conv_channels(s) + (int64_t)s->Hv * s->V + 2 * s->Hv; }
static size_t state_elems(const gdn_ref_layer_shape *s) { return (size_t)NUM_SLOTS * s->Hv * s->V * s->K; }
static size_t conv_elems(const gdn_ref_layer_shape *s) { return (size_t)NUM_SLOTS * (s->W - 1) * (size_t)conv_channels(s); }

static double *dup(const double *x, size_t n) {
  double *d = gdn_dalloc(n);
  memcpy(d, x, n * sizeof(double));
  return d;
}

static void random_batch(gdn_rng *r, batch *b) {
  static const int special[] = {0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 200};
  const gdn_prefill_bucket cap = kBuckets[gdn_test_rand_int(r, 2)];
  gdn_test_hbatch_random_lens(b, r, cap.max_tokens, cap.max_seqs, special, (int)(sizeof special / sizeof special[0]),
                              0.5);
  gdn_test_hbatch_random_slots(b, r, NUM_SLOTS);
}

static const int32_t *slots_of(const batch *b) { return b->null_slots ? NULL : b->slots; }

/* Slot named by the batch? */
static int named(const batch *b, int slot) {
  if (b->null_slots) return 0;
  for (int i = 0; i < b->n; ++i)
    if (b->slots[i] == slot) return 1;
  return 0;
}

/* ---------------------------------------------------------------- model */

static void model_init(host_model *m, const lcase *c, gdn_rng *r) {
  memset(m, 0, sizeof *m);
  gdn_ref_layer_shape s = {c->hidden, c->Hk, c->Hv, c->K, c->V, c->W, c->eps, 1, 1, 0.0};
  m->s = s;
  const int64_t D = conv_channels(&s), Dtot = in_rows(&s), HvV = (int64_t)c->Hv * c->V;
  m->w_in = gdn_dalloc((size_t)Dtot * c->hidden);
  m->conv_w = gdn_dalloc((size_t)D * c->W);
  m->conv_b = c->conv_bias ? gdn_dalloc((size_t)D) : NULL;
  m->A_log = gdn_dalloc((size_t)c->Hv);
  m->dt_bias = gdn_dalloc((size_t)c->Hv);
  m->norm_w = gdn_dalloc((size_t)c->V);
  m->w_out = gdn_dalloc((size_t)c->hidden * HvV);
  /* Scaled so every activation is O(1): unit-variance projections of unit-variance x, conv
   * taps summing to unit variance, decays A in [1, 8] with dt_bias in [-3, 0]. */
  gdn_fill_normal(r, m->w_in, (size_t)Dtot * c->hidden, 1.0 / sqrt((double)c->hidden));
  gdn_fill_normal(r, m->conv_w, (size_t)D * c->W, 1.0 / sqrt((double)c->W));
  if (m->conv_b) gdn_fill_normal(r, m->conv_b, (size_t)D, 0.1);
  for (int h = 0; h < c->Hv; ++h) {
    m->A_log[h] = log(1.0 + 7.0 * gdn_rng_uniform(r));
    m->dt_bias[h] = -3.0 + 3.0 * gdn_rng_uniform(r);
  }
  for (int i = 0; i < c->V; ++i) m->norm_w[i] = 1.0 + 0.1 * gdn_rng_normal(r);
  gdn_fill_normal(r, m->w_out, (size_t)c->hidden * HvV, 1.0 / sqrt((double)HvV));
  gdn_round_to(c->dt, m->w_in, (size_t)Dtot * c->hidden);
  gdn_round_to(c->conv_w_f32 ? GDN_DTYPE_F32 : c->dt, m->conv_w, (size_t)D * c->W);
  if (m->conv_b) gdn_round_to(GDN_DTYPE_F32, m->conv_b, (size_t)D);
  gdn_round_to(GDN_DTYPE_F32, m->A_log, (size_t)c->Hv);
  gdn_round_to(GDN_DTYPE_F32, m->dt_bias, (size_t)c->Hv);
  gdn_round_to(GDN_DTYPE_F32, m->norm_w, (size_t)c->V);
  gdn_round_to(c->dt, m->w_out, (size_t)c->hidden * HvV);
  m->w.w_in = m->w_in;
  m->w.conv_weight = m->conv_w;
  m->w.conv_bias = m->conv_b;
  m->w.A_log = m->A_log;
  m->w.dt_bias = m->dt_bias;
  m->w.norm_weight = m->norm_w;
  m->w.w_out = m->w_out;
  m->state0 = gdn_dalloc(state_elems(&s));
  m->conv0 = gdn_dalloc(conv_elems(&s));
  gdn_fill_normal(r, m->state0, state_elems(&s), 0.1);
  gdn_fill_normal(r, m->conv0, conv_elems(&s), 1.0);
  gdn_round_to(GDN_DTYPE_F32, m->state0, state_elems(&s));
  gdn_round_to(c->dt, m->conv0, conv_elems(&s));
}

static void model_free(host_model *m) {
  void *p[9] = {m->w_in, m->conv_w, m->conv_b, m->A_log, m->dt_bias, m->norm_w, m->w_out, m->state0, m->conv0};
  for (int i = 0; i < 9; ++i) free(p[i]);
}

static void layer_tensors(const dev_layer *d, gdn_layer_shape *ls, gdn_layer_weights *lw, gdn_layer_io *io) {
  const lcase *c = d->c;
  const gdn_ref_layer_shape *s = &d->s;
  memset(ls, 0, sizeof *ls);
  ls->hidden = s->hidden;
  ls->Hk = s->Hk;
  ls->Hv = s->Hv;
  ls->K = s->K;
  ls->V = s->V;
  ls->W = s->W;
  ls->dtype = c->dt;
  ls->rms_eps = c->eps;
  ls->use_g = 1;
  ls->l2norm_qk = 1;
  ls->scale = 0.f;
  memset(lw, 0, sizeof *lw);
  lw->w_in = gdn_tensor_2d(d->w_in, c->dt, d->Dtot, s->hidden);
  lw->conv_weight = gdn_tensor_2d(d->conv_w, c->conv_w_f32 ? GDN_DTYPE_F32 : c->dt, d->D, s->W);
  lw->conv_bias = d->conv_b ? gdn_tensor_1d(d->conv_b, GDN_DTYPE_F32, d->D) : gdn_tensor_none();
  lw->A_log = gdn_tensor_1d(d->A_log, GDN_DTYPE_F32, s->Hv);
  lw->dt_bias = gdn_tensor_1d(d->dt_bias, GDN_DTYPE_F32, s->Hv);
  lw->norm_weight = gdn_tensor_1d(d->norm_w, GDN_DTYPE_F32, s->V);
  lw->w_out = gdn_tensor_2d(d->w_out, c->dt, s->hidden, (int64_t)s->Hv * s->V);
  memset(io, 0, sizeof *io);
  io->x = gdn_tensor_2d(d->x, c->dt, T_CAP, s->hidden);
  io->y = gdn_tensor_2d(d->y, c->dt, T_CAP, s->hidden);
  io->state = gdn_tensor_4d(d->state, GDN_DTYPE_F32, NUM_SLOTS, s->Hv, s->V, s->K);
  io->conv_state = gdn_tensor_3d(d->conv, c->dt, NUM_SLOTS, s->W - 1, d->D);
}

/* Uploads the weights, allocates buffers and pools, creates the plan. 0 on success. */
static int dev_layer_create(dev_layer *d, const lcase *c, const gdn_ref_layer_shape *s, const gdn_ref_layer_weights *w,
                            ncclComm_t comm) {
  memset(d, 0, sizeof *d);
  d->c = c;
  d->s = *s;
  d->D = conv_channels(s);
  d->Dtot = in_rows(s);
  d->n_state = state_elems(s);
  d->n_conv = conv_elems(s);
  const size_t HvV = (size_t)s->Hv * s->V, es = gdn_dtype_size(c->dt);
  d->w_in = gdn_upload(c->dt, w->w_in, (size_t)d->Dtot * s->hidden);
  d->conv_w = gdn_upload(c->conv_w_f32 ? GDN_DTYPE_F32 : c->dt, w->conv_weight, (size_t)d->D * s->W);
  d->conv_b = w->conv_bias ? gdn_upload(GDN_DTYPE_F32, w->conv_bias, (size_t)d->D) : NULL;
  d->A_log = gdn_upload(GDN_DTYPE_F32, w->A_log, (size_t)s->Hv);
  d->dt_bias = gdn_upload(GDN_DTYPE_F32, w->dt_bias, (size_t)s->Hv);
  d->norm_w = gdn_upload(GDN_DTYPE_F32, w->norm_weight, (size_t)s->V);
  d->w_out = gdn_upload(c->dt, w->w_out, (size_t)s->hidden * HvV);
  d->x = gdn_dmalloc((size_t)T_CAP * s->hidden * es);
  d->y = gdn_dmalloc((size_t)T_CAP * s->hidden * es);
  d->state = gdn_dmalloc(d->n_state * 4);
  d->state_bak = gdn_dmalloc(d->n_state * 4);
  d->conv = gdn_dmalloc(d->n_conv * es);
  d->conv_bak = gdn_dmalloc(d->n_conv * es);
  CUDA_OK(cudaMemset(d->x, 0, (size_t)T_CAP * s->hidden * es));
  gdn_layer_shape ls;
  gdn_layer_weights lw;
  gdn_layer_io io;
  layer_tensors(d, &ls, &lw, &io);
  gdn_status st = gdn_layer_plan_create(&d->plan, &ls, &lw, &io, kBuckets, 2, comm, 0);
  CHECK(st == GDN_SUCCESS, "[%s] gdn_layer_plan_create (Hk %d, Hv %d, comm %s): %s (%s)", c->name, s->Hk, s->Hv,
        comm ? "yes" : "no", gdn_status_string(st), gdn_get_last_error());
  return st == GDN_SUCCESS ? 0 : -1;
}

static void dev_layer_free(dev_layer *d) {
  gdn_layer_plan_destroy(d->plan);
  void *p[13] = {d->w_in, d->conv_w, d->conv_b, d->A_log, d->dt_bias, d->norm_w, d->w_out,
                 d->x, d->y, d->state, d->state_bak, d->conv, d->conv_bak};
  for (int i = 0; i < 13; ++i)
    if (p[i]) CUDA_OK(cudaFree(p[i]));
  memset(d, 0, sizeof *d);
}

static void set_pools(dev_layer *d, const double *state, const double *conv) {
  gdn_upload_into(GDN_DTYPE_F32, d->state, state, d->n_state);
  gdn_upload_into(d->c->dt, d->conv, conv, d->n_conv);
}

static void backup_pools(dev_layer *d, int restore) {
  const size_t cb = d->n_conv * gdn_dtype_size(d->c->dt);
  if (!restore) {
    CUDA_OK(cudaMemcpy(d->state_bak, d->state, d->n_state * 4, cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaMemcpy(d->conv_bak, d->conv, cb, cudaMemcpyDeviceToDevice));
  } else {
    CUDA_OK(cudaMemcpy(d->state, d->state_bak, d->n_state * 4, cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaMemcpy(d->conv, d->conv_bak, cb, cudaMemcpyDeviceToDevice));
  }
}

/* x rows < T: N(0, 1) rounded (returned for the reference); rows >= T: NaN when nan_tail,
 * else random. */
static double *fill_x(const dev_layer *d, gdn_rng *r, int T, int nan_tail) {
  const size_t H = (size_t)d->s.hidden, n = (size_t)T_CAP * H;
  double *x = gdn_dalloc(n);
  gdn_fill_normal(r, x, n, 1.0);
  gdn_round_to(d->c->dt, x, n);
  if (nan_tail)
    for (size_t i = (size_t)T * H; i < n; ++i) x[i] = NAN;
  gdn_upload_into(d->c->dt, d->x, x, n);
  return x;
}

/* ---------------------------------------------------------------- checks */

typedef struct replay {
  double *y;       /* [T_CAP, hidden] as doubles */
  uint16_t *y_raw; /* raw 16-bit words */
  double *state, *conv;
} replay;

static void replay_get(const dev_layer *d, replay *o) {
  const size_t n = (size_t)T_CAP * d->s.hidden, es = gdn_dtype_size(d->c->dt);
  o->y_raw = (uint16_t *)gdn_download_raw(d->y, n * es);
  o->y = gdn_dalloc(n);
  gdn_unpack(d->c->dt, o->y_raw, n, o->y);
  o->state = gdn_dalloc(d->n_state);
  o->conv = gdn_dalloc(d->n_conv);
  gdn_download(GDN_DTYPE_F32, d->state, d->n_state, o->state);
  gdn_download(d->c->dt, d->conv, d->n_conv, o->conv);
}

static void replay_free(replay *o) {
  free(o->y);
  free(o->y_raw);
  free(o->state);
  free(o->conv);
  memset(o, 0, sizeof *o);
}

/* y rows < T per sequence vs want (bound), rows [T, T_b) exactly 0, rows >= T_b poison. */
static double check_y(const dev_layer *d, const batch *b, const replay *got, const double *want, double bound,
                      const char *what) {
  const lcase *c = d->c;
  const size_t H = (size_t)d->s.hidden;
  const int T = b->cu[b->n], Tb = gdn_layer_bucket_at(d->plan, gdn_layer_pick_bucket(d->plan, T, b->n)).max_tokens;
  char desc[1024];
  gdn_test_hbatch_str(b, desc, sizeof desc);
  double worst = 0;
  for (int n = 0; n < b->n; ++n) {
    const int t0 = b->cu[n], len = b->cu[n + 1] - t0;
    if (len <= 0) continue;
    double e = gdn_rel_l2(got->y + (size_t)t0 * H, want + (size_t)t0 * H, (size_t)len * H);
    if (!(e <= worst)) worst = e;
    CHECK(e <= bound, "[%s] %s: y of sequence %d (len %d, slot %d): rel L2 %.3e > %.1e (seed %llu; %s)", c->name, what, n,
          len, b->null_slots ? -1 : b->slots[n], e, bound, (unsigned long long)g_seed, desc);
  }
  size_t nonzero = 0, touched = 0;
  for (size_t i = (size_t)T * H; i < (size_t)Tb * H; ++i) nonzero += got->y[i] != 0.0;
  for (size_t i = (size_t)Tb * H; i < (size_t)T_CAP * H; ++i) touched += got->y_raw[i] != 0xFFFF;
  CHECK(nonzero == 0, "[%s] %s: %zu elements of y rows [%d, %d) are not 0 (%s)", c->name, what, nonzero, T, Tb, desc);
  CHECK(touched == 0, "[%s] %s: %zu elements of y rows >= %d (past the bucket) were written (%s)", c->name, what, touched,
        Tb, desc);
  return worst;
}

/* Pools: named slots vs the reference, other slots bit-identical to before. */
static void check_pools(const dev_layer *d, const batch *b, const replay *got, const double *state_before,
                        const double *conv_before, const double *ref_state, const double *ref_conv, const char *what) {
  const lcase *c = d->c;
  const size_t ps = d->n_state / NUM_SLOTS, pc = d->n_conv / NUM_SLOTS;
  char desc[1024];
  gdn_test_hbatch_str(b, desc, sizeof desc);
  for (int slot = 0; slot < NUM_SLOTS; ++slot) {
    const double *gs = got->state + slot * ps, *gc = got->conv + slot * pc;
    if (named(b, slot)) {
      double es = gdn_rel_l2(gs, ref_state + slot * ps, ps), ec = gdn_rel_l2(gc, ref_conv + slot * pc, pc);
      CHECK(es <= BOUND, "[%s] %s: state slot %d: rel L2 %.3e > %.1e (seed %llu; %s)", c->name, what, slot, es, BOUND,
            (unsigned long long)g_seed, desc);
      CHECK(ec <= CONV_BOUND, "[%s] %s: conv state slot %d: rel L2 %.3e > %.1e (seed %llu; %s)", c->name, what, slot, ec,
            CONV_BOUND, (unsigned long long)g_seed, desc);
    } else {
      CHECK(memcmp(gs, state_before + slot * ps, ps * sizeof(double)) == 0 &&
                memcmp(gc, conv_before + slot * pc, pc * sizeof(double)) == 0,
            "[%s] %s: slot %d is not named by the batch but changed (%s)", c->name, what, slot, desc);
    }
  }
}

static double rel_same(const double *a, const double *b, size_t n) { return n ? gdn_rel_l2(a, b, n) : 0.0; }

/* ---------------------------------------------------------------- R = 1 replays */

typedef struct run_state {
  const lcase *c;
  host_model *m;
  dev_layer *L;
  gdn_rng *rng;
  cudaStream_t stream;
  double *ref_state, *ref_conv; /* the reference pools, updated batch after batch */
  double *cur_state, *cur_conv; /* the device pools as last downloaded */
  int replays;
  double worst_y, worst_eager;
} run_state;

static void one_batch(run_state *rs, const batch *b) {
  dev_layer *L = rs->L;
  const size_t H = (size_t)rs->m->s.hidden;
  const int T = b->cu[b->n];
  const int nan_tail = rs->replays++ % 2;
  double *x = fill_x(L, rs->rng, T, nan_tail);
  char tag[64];
  snprintf(tag, sizeof tag, "replay %d%s", rs->replays, nan_tail ? " (NaN x tail)" : "");

  /* graph */
  backup_pools(L, 0);
  gdn_poison(L->y, (size_t)T_CAP * H * gdn_dtype_size(rs->c->dt));
  CHECK_OK(gdn_layer_run(L->plan, b->cu, slots_of(b), b->n, rs->stream));
  CUDA_OK(cudaStreamSynchronize(rs->stream));
  CHECK_OK(gdn_layer_check_error(L->plan));
  replay g;
  replay_get(L, &g);

  /* reference */
  double *y_ref = gdn_dalloc((size_t)(T > 0 ? T : 1) * H);
  gdn_ref_layer(&rs->m->s, &rs->m->w, b->n, b->cu, slots_of(b), x, rs->ref_state, rs->ref_conv, y_ref);
  double w = check_y(L, b, &g, y_ref, BOUND, tag);
  if (w > rs->worst_y) rs->worst_y = w;
  check_pools(L, b, &g, rs->cur_state, rs->cur_conv, rs->ref_state, rs->ref_conv, tag);

  /* eager from the same pools */
  backup_pools(L, 1);
  gdn_poison(L->y, (size_t)T_CAP * H * gdn_dtype_size(rs->c->dt));
  CHECK_OK(gdn_layer_run_eager(L->plan, b->cu, slots_of(b), b->n, rs->stream));
  CUDA_OK(cudaStreamSynchronize(rs->stream));
  CHECK_OK(gdn_layer_check_error(L->plan));
  replay e;
  replay_get(L, &e);
  double ey = rel_same(e.y, g.y, (size_t)T * H), es = rel_same(e.state, g.state, L->n_state),
         ec = rel_same(e.conv, g.conv, L->n_conv);
  if (ey > rs->worst_eager) rs->worst_eager = ey;
  CHECK(ey <= SAME_BOUND && es <= SAME_BOUND && ec <= SAME_BOUND, "[%s] %s: eager vs graph: y %.3e, state %.3e, conv %.3e",
        rs->c->name, tag, ey, es, ec);
  CHECK(memcmp(e.y_raw + (size_t)T * H, g.y_raw + (size_t)T * H, (size_t)(T_CAP - T) * H * 2) == 0,
        "[%s] %s: eager and graph differ past the batch", rs->c->name, tag);

  memcpy(rs->cur_state, e.state, L->n_state * sizeof(double));
  memcpy(rs->cur_conv, e.conv, L->n_conv * sizeof(double));
  replay_free(&g);
  replay_free(&e);
  free(y_ref);
  free(x);
}

/* Device-rejected batches leave the pools alone; batches over every bucket launch nothing. */
static void invalid_batches(run_state *rs) {
  dev_layer *L = rs->L;
  const int lens[3] = {10, 20, 5};
  const int reused[3] = {3, 3, -1}, out_of_range[3] = {1, NUM_SLOTS, -1}, below[3] = {-2, 1, 2};
  const int *bad[3] = {reused, out_of_range, below};
  const char *names[3] = {"slot named twice", "slot == num_slots", "slot -2"};
  for (int i = 0; i < 3; ++i) {
    batch b;
    gdn_test_hbatch_make(&b, lens, bad[i], 3);
    (void)fill_x(L, rs->rng, b.cu[b.n], 0);
    CHECK_OK(gdn_layer_run(L->plan, b.cu, b.slots, b.n, rs->stream));
    CUDA_OK(cudaStreamSynchronize(rs->stream));
    CHECK_STATUS(gdn_layer_check_error(L->plan), GDN_ERROR_INVALID_BATCH);
    CHECK_OK(gdn_layer_check_error(L->plan)); /* cleared */
    replay g;
    replay_get(L, &g);
    CHECK(memcmp(g.state, rs->cur_state, L->n_state * sizeof(double)) == 0 &&
              memcmp(g.conv, rs->cur_conv, L->n_conv * sizeof(double)) == 0,
          "[%s] invalid batch (%s) changed the pools", rs->c->name, names[i]);
    replay_free(&g);
  }
  batch big;
  const int one[1] = {T_CAP + 1};
  gdn_test_hbatch_make(&big, one, NULL, 1);
  CHECK_STATUS(gdn_layer_run(L->plan, big.cu, NULL, 1, rs->stream), GDN_ERROR_INVALID_ARGUMENT);
  int many[9];
  for (int i = 0; i < 9; ++i) many[i] = 1;
  gdn_test_hbatch_make(&big, many, NULL, 9);
  CHECK_STATUS(gdn_layer_run(L->plan, big.cu, NULL, 9, rs->stream), GDN_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(gdn_layer_run(NULL, big.cu, NULL, 1, rs->stream), GDN_ERROR_INVALID_ARGUMENT);
}

/* gdn_layer_plan_create refuses bad arguments with a message and leaves *plan NULL. */
static void argument_errors(const dev_layer *L) {
  gdn_layer_shape ls;
  gdn_layer_weights lw;
  gdn_layer_io io;
  gdn_layer_plan *p = (gdn_layer_plan *)&ls; /* must be reset to NULL */
#define EXPECT_FAIL(want, what)                                                                      \
  do {                                                                                               \
    p = (gdn_layer_plan *)&ls;                                                                       \
    gdn_status st_ = gdn_layer_plan_create(&p, &ls, &lw, &io, kBuckets, 2, g_comm, 0);                \
    CHECK(st_ == (want) && p == NULL, "%s: got %s (%s), want %s", what, gdn_status_string(st_),      \
          gdn_get_last_error(), gdn_status_string(want));                                            \
    if (st_ == GDN_SUCCESS) gdn_layer_plan_destroy(p);                                               \
    layer_tensors(L, &ls, &lw, &io);                                                                 \
  } while (0)
  layer_tensors(L, &ls, &lw, &io);
  lw.w_in.sizes[0] -= 1;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "w_in with Dtot-1 rows");
  ls.Hk = 3;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "Hk 3 does not divide Hv 4");
  ls.W = 5;
  EXPECT_FAIL(GDN_ERROR_UNSUPPORTED, "conv width 5");
  io.conv_state.sizes[0] = NUM_SLOTS - 1;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "conv pool with fewer slots than the state pool");
  io.x.sizes[0] = T_CAP - 1;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "x with fewer rows than the largest bucket");
  io.y = io.x;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "y == x");
  io.y.sizes[0] = T_CAP - 1;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "y with too few rows");
  lw.A_log.dtype = GDN_DTYPE_I32;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "int32 A_log");
  ls.dtype = GDN_DTYPE_F32;
  EXPECT_FAIL(GDN_ERROR_INVALID_ARGUMENT, "fp32 activations");
  {
    p = (gdn_layer_plan *)&ls;
    gdn_status st = gdn_layer_plan_create(&p, &ls, &lw, &io, kBuckets, 0, g_comm, 0);
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT && p == NULL, "0 buckets: got %s", gdn_status_string(st));
  }
#undef EXPECT_FAIL
  /* With a communicator y's rows must be contiguous (in-place all-reduce); without one a
   * strided y is fine. */
  {
    const size_t es = gdn_dtype_size(L->c->dt);
    void *wide = gdn_dmalloc((size_t)T_CAP * 2 * L->s.hidden * es);
    layer_tensors(L, &ls, &lw, &io);
    io.y = gdn_tensor_2d(wide, L->c->dt, T_CAP, L->s.hidden);
    io.y.strides[0] = 2 * (int64_t)L->s.hidden;
    p = NULL;
    gdn_status st = gdn_layer_plan_create(&p, &ls, &lw, &io, kBuckets, 2, g_comm, 0);
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT && p == NULL, "strided y with a communicator: got %s",
          gdn_status_string(st));
    st = gdn_layer_plan_create(&p, &ls, &lw, &io, kBuckets, 2, NULL, 0);
    CHECK(st == GDN_SUCCESS && p != NULL, "strided y without a communicator: %s (%s)", gdn_status_string(st),
          gdn_get_last_error());
    CHECK(gdn_layer_num_ranks(p) == 1, "num_ranks without a communicator is %d", gdn_layer_num_ranks(p));
    gdn_layer_plan_destroy(p);
    CUDA_OK(cudaFree(wide));
  }
}

static void check_plan_api(const dev_layer *L) {
  const gdn_layer_plan *p = L->plan;
  CHECK(gdn_layer_num_buckets(p) == 2, "num_buckets %d", gdn_layer_num_buckets(p));
  CHECK(gdn_layer_bucket_at(p, 0).max_tokens == 256 && gdn_layer_bucket_at(p, 1).max_tokens == T_CAP,
        "buckets are not sorted: %d, %d", gdn_layer_bucket_at(p, 0).max_tokens, gdn_layer_bucket_at(p, 1).max_tokens);
  CHECK(gdn_layer_pick_bucket(p, 256, 4) == 0 && gdn_layer_pick_bucket(p, 256, 5) == 1 &&
            gdn_layer_pick_bucket(p, 257, 1) == 1 && gdn_layer_pick_bucket(p, T_CAP + 1, 1) == -1,
        "pick_bucket");
  CHECK(gdn_layer_num_ranks(p) == 1, "num_ranks %d with a 1-rank communicator", gdn_layer_num_ranks(p));
  CHECK(gdn_layer_graph(p, 2) == NULL, "graph of bucket 2 should be NULL");
  for (int i = 0; i < 2; ++i) {
    cudaGraph_t g = gdn_layer_graph(p, i);
    size_t n = 0, roots = 0;
    CHECK(g != NULL, "graph of bucket %d is NULL", i);
    if (g == NULL) continue;
    CUDA_OK(cudaGraphGetNodes(g, NULL, &n));
    CUDA_OK(cudaGraphGetRootNodes(g, NULL, &roots));
    /* in_proj, setup, conv1d, prologue, intra, scan (the RMSNorm in it, or a node of its own
     * after it and the tail), tail, out_proj, all-reduce */
    CHECK(n >= 9, "bucket %d graph has %zu nodes, expected >= 9", i, n);
    CHECK(roots >= 2, "bucket %d graph has %zu root nodes, expected in_proj and setup in parallel", i, roots);
  }
}

/* ---------------------------------------------------------------- sharding on one GPU */

static void sharding(run_state *rs) {
  const lcase *c = rs->c;
  host_model *m = rs->m;
  dev_layer *L = rs->L;
  const int R = 2;
  const size_t H = (size_t)m->s.hidden;
  gdn_ref_layer_shard sh[2];
  dev_layer S[2];
  memset(S, 0, sizeof S);
  memset(sh, 0, sizeof sh);
  int ok = 1;
  for (int k = 0; k < R && ok; ++k) {
    ok = gdn_ref_layer_shard_make(&m->s, &m->w, k, R, &sh[k]) == 0;
    CHECK(ok, "[%s] shard_make %d of %d", c->name, k, R);
    if (ok) ok = dev_layer_create(&S[k], c, &sh[k].shape, &sh[k].weights, NULL) == 0;
  }
  if (ok) {
    /* fresh pools everywhere */
    memcpy(rs->ref_state, m->state0, L->n_state * sizeof(double));
    memcpy(rs->ref_conv, m->conv0, L->n_conv * sizeof(double));
    set_pools(L, m->state0, m->conv0);
    for (int k = 0; k < R; ++k) {
      double *st = gdn_dalloc(S[k].n_state), *cv = gdn_dalloc(S[k].n_conv);
      gdn_ref_layer_shard_state(&m->s, k, R, NUM_SLOTS, m->state0, st);
      gdn_ref_layer_shard_conv_state(&m->s, k, R, NUM_SLOTS, m->conv0, cv);
      set_pools(&S[k], st, cv);
      free(st);
      free(cv);
    }
    const size_t xbytes = (size_t)T_CAP * H * gdn_dtype_size(c->dt);
    for (int it = 0; it < 3; ++it) {
      batch b;
      random_batch(rs->rng, &b);
      const int T = b.cu[b.n];
      double *x = fill_x(L, rs->rng, T, it % 2);
      for (int k = 0; k < R; ++k) {
        CUDA_OK(cudaMemcpy(S[k].x, L->x, xbytes, cudaMemcpyDeviceToDevice));
        gdn_poison(S[k].y, xbytes);
        CHECK_OK(gdn_layer_run(S[k].plan, b.cu, b.slots, b.n, rs->stream));
      }
      gdn_poison(L->y, xbytes);
      CHECK_OK(gdn_layer_run(L->plan, b.cu, b.slots, b.n, rs->stream));
      CUDA_OK(cudaStreamSynchronize(rs->stream));
      double *y_ref = gdn_dalloc((size_t)(T > 0 ? T : 1) * H);
      gdn_ref_layer(&m->s, &m->w, b.n, b.cu, b.slots, x, rs->ref_state, rs->ref_conv, y_ref);
      replay full, part[2];
      replay_get(L, &full);
      double *sum = gdn_dalloc((size_t)T_CAP * H);
      for (int k = 0; k < R; ++k) {
        replay_get(&S[k], &part[k]);
        for (size_t i = 0; i < (size_t)T_CAP * H; ++i) sum[i] += part[k].y[i];
        (void)check_y(&S[k], &b, &part[k], part[k].y, 1.0, "shard rows past the batch");
      }
      char desc[1024];
      gdn_test_hbatch_str(&b, desc, sizeof desc);
      double e_gpu = T ? gdn_rel_l2(sum, full.y, (size_t)T * H) : 0.0;
      double e_ref = T ? gdn_rel_l2(sum, y_ref, (size_t)T * H) : 0.0;
      CHECK(e_gpu <= SHARD_BOUND, "[%s] R=2 shards on one GPU: sum of y vs unsharded GPU y: rel L2 %.3e > %.1e (%s)",
            c->name, e_gpu, SHARD_BOUND, desc);
      CHECK(e_ref <= BOUND, "[%s] R=2 shards on one GPU: sum of y vs reference: rel L2 %.3e > %.1e (%s)", c->name, e_ref,
            BOUND, desc);
      printf("  [%s] shard sum vs unsharded GPU %.2e, vs reference %.2e (%s)\n", c->name, e_gpu, e_ref, desc);
      /* pools: each shard == its slice of the unsharded GPU pools and of the reference */
      for (int k = 0; k < R; ++k) {
        double *gs = gdn_dalloc(S[k].n_state), *gc = gdn_dalloc(S[k].n_conv);
        double *rsl = gdn_dalloc(S[k].n_state), *rc = gdn_dalloc(S[k].n_conv);
        gdn_ref_layer_shard_state(&m->s, k, R, NUM_SLOTS, full.state, gs);
        gdn_ref_layer_shard_conv_state(&m->s, k, R, NUM_SLOTS, full.conv, gc);
        gdn_ref_layer_shard_state(&m->s, k, R, NUM_SLOTS, rs->ref_state, rsl);
        gdn_ref_layer_shard_conv_state(&m->s, k, R, NUM_SLOTS, rs->ref_conv, rc);
        double a = gdn_rel_l2(part[k].state, gs, S[k].n_state), bb = gdn_rel_l2(part[k].conv, gc, S[k].n_conv);
        double cc = gdn_rel_l2(part[k].state, rsl, S[k].n_state), dd = gdn_rel_l2(part[k].conv, rc, S[k].n_conv);
        CHECK(a <= SHARD_BOUND && bb <= CONV_BOUND,
              "[%s] shard %d pools vs the unsharded GPU pools' slice: state %.3e, conv %.3e", c->name, k, a, bb);
        CHECK(cc <= BOUND && dd <= CONV_BOUND, "[%s] shard %d pools vs the reference slice: state %.3e, conv %.3e",
              c->name, k, cc, dd);
        free(gs);
        free(gc);
        free(rsl);
        free(rc);
        replay_free(&part[k]);
      }
      replay_free(&full);
      free(sum);
      free(y_ref);
      free(x);
    }
  }
  for (int k = 0; k < R; ++k) {
    dev_layer_free(&S[k]);
    gdn_ref_layer_shard_free(&sh[k]);
  }
}

/* ---------------------------------------------------------------- driver */

static void run_case(const lcase *c, int index) {
  printf("case: %s\n", c->name);
  gdn_rng rng;
  gdn_rng_seed(&rng, g_seed + 0x9E3779B97F4A7C15ull * (uint64_t)(index + 1));
  host_model m;
  model_init(&m, c, &rng);
  dev_layer L;
  if (dev_layer_create(&L, c, &m.s, &m.w, g_comm) != 0) {
    dev_layer_free(&L);
    model_free(&m);
    return;
  }
  run_state rs;
  memset(&rs, 0, sizeof rs);
  rs.c = c;
  rs.m = &m;
  rs.L = &L;
  rs.rng = &rng;
  CUDA_OK(cudaStreamCreate(&rs.stream)); /* blocking: ordered after the legacy-stream poison/backup copies */
  rs.ref_state = dup(m.state0, L.n_state);
  rs.ref_conv = dup(m.conv0, L.n_conv);
  rs.cur_state = dup(m.state0, L.n_state);
  rs.cur_conv = dup(m.conv0, L.n_conv);
  set_pools(&L, m.state0, m.conv0);
  if (c->full) check_plan_api(&L);

  /* fixed edge batches */
  batch b;
  gdn_test_hbatch_make(&b, NULL, NULL, 0);
  one_batch(&rs, &b); /* N = 0: y rows [0, 256) all zero */
  {
    const int lens[1] = {1}, slots[1] = {0};
    gdn_test_hbatch_make(&b, lens, slots, 1);
    one_batch(&rs, &b);
  }
  {
    const int lens[4] = {0, 2, 65, 1}, slots[4] = {1, -1, 2, 0}; /* 2 < W-1: shifted conv state; slot 0 again */
    gdn_test_hbatch_make(&b, lens, slots, 4);
    one_batch(&rs, &b);
  }
  {
    int lens[8], slots[8];
    for (int i = 0; i < 8; ++i) {
      lens[i] = T_CAP / 8;
      slots[i] = i < 7 ? 7 - i : -1;
    }
    gdn_test_hbatch_make(&b, lens, slots, 8); /* a full bucket */
    one_batch(&rs, &b);
  }
  {
    const int lens[2] = {64, 100};
    gdn_test_hbatch_make(&b, lens, NULL, 2); /* slots = NULL */
    one_batch(&rs, &b);
  }
  if (c->full) invalid_batches(&rs);
  for (int i = 0; i < c->random_batches; ++i) {
    random_batch(&rng, &b);
    one_batch(&rs, &b);
  }
  /* the whole pools after every replay */
  {
    replay g;
    replay_get(&L, &g);
    double es = gdn_rel_l2(g.state, rs.ref_state, L.n_state), ec = gdn_rel_l2(g.conv, rs.ref_conv, L.n_conv);
    CHECK(es <= BOUND && ec <= CONV_BOUND, "[%s] pools after %d replays vs reference: state %.3e, conv %.3e", c->name,
          rs.replays, es, ec);
    printf("  [%s] %d replays: worst y rel L2 %.2e, eager vs graph %.1e; final pools: state %.2e, conv %.2e\n", c->name,
           rs.replays, rs.worst_y, rs.worst_eager, es, ec);
    replay_free(&g);
  }
  if (c->full) argument_errors(&L);
  sharding(&rs);

  CUDA_OK(cudaStreamDestroy(rs.stream));
  free(rs.ref_state);
  free(rs.ref_conv);
  free(rs.cur_state);
  free(rs.cur_conv);
  dev_layer_free(&L);
  model_free(&m);
}

int main(int argc, char **argv) {
  gdn_gpu_test_init("test_layer", 1);
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  g_seed = gdn_test_seed("test_layer");
  CUDA_OK(cudaSetDevice(0));
  CHECK_OK(gdn_layer_comm_init_all(1, NULL, &g_comm));
  if (gdn_test_failures) return gdn_test_finish("test_layer");
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    if (argc > 1 && strstr(kCases[i].name, argv[1]) == NULL) continue;
    run_case(&kCases[i], (int)i);
  }
  CHECK_OK(gdn_layer_comm_destroy(g_comm));
  if (gdn_test_failures) fprintf(stderr, "test_layer: seed %llu\n", (unsigned long long)g_seed);
  return gdn_test_finish("test_layer");
}
