/* The GDN layer with tensor parallelism over every visible GPU (>= 2, else exit 77): R =
 * number of GPUs, one host thread per GPU, communicators from ncclCommInitAll
 * (gdn_layer_comm_init_all, NCCL_NVLS_ENABLE=0 first). The unsharded layer (hidden 256,
 * Hk 8, Hv 16, K = V = 128, W 4, bf16) is split with gdn_ref_layer_shard_make; each rank's
 * plan holds its shard, its slice of the pools and the communicator, so the all-reduce is
 * inside its graph. Several random varlen batches (slots distinct or -1; x rows past the
 * batch NaN on every other batch) are replayed; on every rank:
 *  - y rows < T == the R = 1 float64 reference (rel L2 per sequence <= 3e-2, the bound of
 *    test_layer: the same chain of bf16 roundings, plus the bf16 all-reduce of R partial
 *    sums, each rounded once: another ~2^-9) and == the R = 1 GPU output computed on device 0
 *    without a communicator (<= 2e-2: rounding differences only); rows [T, T_b) exactly 0,
 *    rows past the bucket untouched;
 *  - one batch also through gdn_layer_run_eager from the same pools: pools identical to the
 *    graph run (no collective involved), y within 5e-3 (NCCL may reduce in another order or
 *    protocol eagerly than in the graph: a few bf16 rounding flips);
 *  - after all batches, the rank's pools == its slice of the reference pools (3e-2 state,
 *    1e-2 conv) and of the R = 1 GPU pools (2e-2, 1e-2).
 * R must divide Hk = 8 (R = 2, 4 or 8), else the test is skipped. GDN_TEST_SEED replays. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/batch.h"
#include "gdn/layer.h"
#include "gdn/reference.h"
#include "gpu_util.h"
#include "test_batch.h"

#define MAX_RANKS 16
#define HIDDEN 256
#define HK 8
#define HV 16
#define KD 128
#define VD 128
#define WC 4
#define T_CAP 512
#define NUM_SLOTS 8
#define NBATCH 5
#define EAGER_BATCH 2
#define BOUND 3e-2
#define CONV_BOUND 1e-2
#define GPU_BOUND 2e-2
#define EAGER_BOUND 5e-3

static const gdn_prefill_bucket kBuckets[2] = {{128, 4}, {T_CAP, 8}};
static const gdn_dtype DT = GDN_DTYPE_BF16;

typedef gdn_test_hbatch batch;

/* Everything the ranks read (built by the main thread, read only afterwards). */
typedef struct shared {
  int R;
  uint64_t seed;
  gdn_ref_layer_shape full;
  batch b[NBATCH];
  void *x_packed[NBATCH];      /* host [T_CAP, HIDDEN] bf16 */
  double *y_ref[NBATCH];       /* [T, HIDDEN] */
  double *y_gpu1[NBATCH];      /* [T, HIDDEN], R = 1 on device 0 */
  double *state0, *conv0;      /* initial full pools */
  double *ref_state, *ref_conv;   /* full pools after all batches: reference */
  double *gpu1_state, *gpu1_conv; /* ... and R = 1 GPU */
  gdn_ref_layer_shard shard[MAX_RANKS];
  ncclComm_t comm[MAX_RANKS];
  int created[MAX_RANKS];
  pthread_barrier_t barrier;
} shared;

typedef struct rank_ctx {
  shared *sh;
  int rank;
  int checks, failures;
} rank_ctx;

#define RCHECK(c, cond, ...)                                              \
  do {                                                                    \
    ++(c)->checks;                                                        \
    if (!(cond)) {                                                        \
      ++(c)->failures;                                                    \
      fprintf(stderr, "FAIL rank %d (%s:%d): ", (c)->rank, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                       \
      fprintf(stderr, "\n");                                              \
    }                                                                     \
  } while (0)

static int64_t conv_channels(const gdn_ref_layer_shape *s) { return 2 * (int64_t)s->Hk * s->K + (int64_t)s->Hv * s->V; }
static int64_t in_rows(const gdn_ref_layer_shape *s) { return conv_channels(s) + (int64_t)s->Hv * s->V + 2 * s->Hv; }
static size_t state_elems(const gdn_ref_layer_shape *s) { return (size_t)NUM_SLOTS * s->Hv * s->V * s->K; }
static size_t conv_elems(const gdn_ref_layer_shape *s) { return (size_t)NUM_SLOTS * (s->W - 1) * (size_t)conv_channels(s); }

static void random_batch(gdn_rng *r, batch *b) {
  static const int special[] = {0, 1, 2, 63, 64, 65, 129};
  const gdn_prefill_bucket cap = kBuckets[gdn_test_rand_int(r, 2)];
  gdn_test_hbatch_random_lens(b, r, cap.max_tokens, cap.max_seqs, special, 7, 0.4);
  gdn_test_hbatch_random_slots(b, r, NUM_SLOTS);
}

/* ---------------------------------------------------------------- one plan on one device */

typedef struct dev_layer {
  gdn_ref_layer_shape s;
  int64_t D, Dtot;
  size_t n_state, n_conv;
  void *w[7];
  void *x, *y, *state, *conv, *state_bak, *conv_bak;
  gdn_layer_plan *plan;
} dev_layer;

/* Uploads weights and pools to the current device and creates the plan. */
static gdn_status dev_layer_create(dev_layer *d, const gdn_ref_layer_shape *s, const gdn_ref_layer_weights *w,
                                   const double *state, const double *conv, ncclComm_t comm, int device) {
  memset(d, 0, sizeof *d);
  d->s = *s;
  d->D = conv_channels(s);
  d->Dtot = in_rows(s);
  d->n_state = state_elems(s);
  d->n_conv = conv_elems(s);
  const int64_t HvV = (int64_t)s->Hv * s->V;
  d->w[0] = gdn_upload(DT, w->w_in, (size_t)d->Dtot * s->hidden);
  d->w[1] = gdn_upload(DT, w->conv_weight, (size_t)d->D * s->W);
  d->w[2] = gdn_upload(GDN_DTYPE_F32, w->A_log, (size_t)s->Hv);
  d->w[3] = gdn_upload(GDN_DTYPE_F32, w->dt_bias, (size_t)s->Hv);
  d->w[4] = gdn_upload(GDN_DTYPE_F32, w->norm_weight, (size_t)s->V);
  d->w[5] = gdn_upload(DT, w->w_out, (size_t)s->hidden * HvV);
  d->x = gdn_dmalloc((size_t)T_CAP * s->hidden * 2);
  d->y = gdn_dmalloc((size_t)T_CAP * s->hidden * 2);
  d->state = gdn_upload(GDN_DTYPE_F32, state, d->n_state);
  d->conv = gdn_upload(DT, conv, d->n_conv);
  d->state_bak = gdn_dmalloc(d->n_state * 4);
  d->conv_bak = gdn_dmalloc(d->n_conv * 2);
  gdn_layer_shape ls = {s->hidden, s->Hk, s->Hv, s->K, s->V, s->W, DT, s->rms_eps, 1, 1, 0.f};
  gdn_layer_weights lw;
  lw.w_in = gdn_tensor_2d(d->w[0], DT, d->Dtot, s->hidden);
  lw.conv_weight = gdn_tensor_2d(d->w[1], DT, d->D, s->W);
  lw.conv_bias = gdn_tensor_none();
  lw.A_log = gdn_tensor_1d(d->w[2], GDN_DTYPE_F32, s->Hv);
  lw.dt_bias = gdn_tensor_1d(d->w[3], GDN_DTYPE_F32, s->Hv);
  lw.norm_weight = gdn_tensor_1d(d->w[4], GDN_DTYPE_F32, s->V);
  lw.w_out = gdn_tensor_2d(d->w[5], DT, s->hidden, HvV);
  gdn_layer_io io;
  io.x = gdn_tensor_2d(d->x, DT, T_CAP, s->hidden);
  io.y = gdn_tensor_2d(d->y, DT, T_CAP, s->hidden);
  io.state = gdn_tensor_4d(d->state, GDN_DTYPE_F32, NUM_SLOTS, s->Hv, s->V, s->K);
  io.conv_state = gdn_tensor_3d(d->conv, DT, NUM_SLOTS, s->W - 1, d->D);
  return gdn_layer_plan_create(&d->plan, &ls, &lw, &io, kBuckets, 2, comm, device);
}

static void dev_layer_free(dev_layer *d) {
  gdn_layer_plan_destroy(d->plan);
  for (int i = 0; i < 7; ++i)
    if (d->w[i]) CUDA_OK(cudaFree(d->w[i]));
  void *p[6] = {d->x, d->y, d->state, d->conv, d->state_bak, d->conv_bak};
  for (int i = 0; i < 6; ++i)
    if (p[i]) CUDA_OK(cudaFree(p[i]));
  memset(d, 0, sizeof *d);
}

/* Runs batch i (graph); returns y as doubles [T_CAP, hidden] and the raw words. */
static gdn_status run_batch(dev_layer *d, const shared *sh, int i, cudaStream_t s, int eager, double *y, uint16_t *raw) {
  const batch *b = &sh->b[i];
  const size_t n = (size_t)T_CAP * d->s.hidden;
  CUDA_OK(cudaMemcpy(d->x, sh->x_packed[i], n * 2, cudaMemcpyHostToDevice));
  gdn_poison(d->y, n * 2);
  gdn_status st = eager ? gdn_layer_run_eager(d->plan, b->cu, b->slots, b->n, s) : gdn_layer_run(d->plan, b->cu, b->slots, b->n, s);
  CUDA_OK(cudaStreamSynchronize(s));
  if (st == GDN_SUCCESS) st = gdn_layer_check_error(d->plan);
  CUDA_OK(cudaMemcpy(raw, d->y, n * 2, cudaMemcpyDeviceToHost));
  gdn_unpack(DT, raw, n, y);
  return st;
}

/* ---------------------------------------------------------------- ranks */

static void *rank_main(void *arg) {
  rank_ctx *c = (rank_ctx *)arg;
  shared *sh = c->sh;
  const int r = c->rank, R = sh->R;
  CUDA_OK(cudaSetDevice(r));
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s)); /* blocking: ordered after the legacy-stream poison/copies */
  const gdn_ref_layer_shape *rsh = &sh->shard[r].shape;
  double *st0 = gdn_dalloc(state_elems(rsh)), *cv0 = gdn_dalloc(conv_elems(rsh));
  gdn_ref_layer_shard_state(&sh->full, r, R, NUM_SLOTS, sh->state0, st0);
  gdn_ref_layer_shard_conv_state(&sh->full, r, R, NUM_SLOTS, sh->conv0, cv0);
  dev_layer d;
  /* Plans are created concurrently on every rank: NCCL may connect the ranks while the
   * all-reduce is captured. */
  gdn_status st = dev_layer_create(&d, rsh, &sh->shard[r].weights, st0, cv0, sh->comm[r], r);
  RCHECK(c, st == GDN_SUCCESS, "plan_create: %s (%s)", gdn_status_string(st), gdn_get_last_error());
  sh->created[r] = st == GDN_SUCCESS;
  pthread_barrier_wait(&sh->barrier);
  int all = 1;
  for (int k = 0; k < R; ++k) all &= sh->created[k];
  if (all) {
    RCHECK(c, gdn_layer_num_ranks(d.plan) == R, "num_ranks %d, expected %d", gdn_layer_num_ranks(d.plan), R);
    const size_t H = HIDDEN, n = (size_t)T_CAP * H;
    double *y = gdn_dalloc(n), *y2 = gdn_dalloc(n);
    uint16_t *raw = (uint16_t *)gdn_xmalloc(n * 2), *raw2 = (uint16_t *)gdn_xmalloc(n * 2);
    for (int i = 0; i < NBATCH; ++i) {
      const batch *b = &sh->b[i];
      const int T = b->cu[b->n];
      const int Tb = gdn_layer_bucket_at(d.plan, gdn_layer_pick_bucket(d.plan, T, b->n)).max_tokens;
      if (i == EAGER_BATCH) {
        CUDA_OK(cudaMemcpy(d.state_bak, d.state, d.n_state * 4, cudaMemcpyDeviceToDevice));
        CUDA_OK(cudaMemcpy(d.conv_bak, d.conv, d.n_conv * 2, cudaMemcpyDeviceToDevice));
      }
      st = run_batch(&d, sh, i, s, 0, y, raw);
      RCHECK(c, st == GDN_SUCCESS, "batch %d: run: %s (%s)", i, gdn_status_string(st), gdn_get_last_error());
      for (int q = 0; q < b->n; ++q) {
        const int t0 = b->cu[q], len = b->cu[q + 1] - t0;
        if (len <= 0) continue;
        double e1 = gdn_rel_l2(y + (size_t)t0 * H, sh->y_ref[i] + (size_t)t0 * H, (size_t)len * H);
        double e2 = gdn_rel_l2(y + (size_t)t0 * H, sh->y_gpu1[i] + (size_t)t0 * H, (size_t)len * H);
        RCHECK(c, e1 <= BOUND, "batch %d seq %d (len %d, slot %d): y vs R=1 reference: rel L2 %.3e > %.1e (seed %llu)", i,
               q, len, b->slots[q], e1, BOUND, (unsigned long long)sh->seed);
        RCHECK(c, e2 <= GPU_BOUND, "batch %d seq %d (len %d, slot %d): y vs R=1 GPU: rel L2 %.3e > %.1e (seed %llu)", i,
               q, len, b->slots[q], e2, GPU_BOUND, (unsigned long long)sh->seed);
      }
      size_t nonzero = 0, touched = 0;
      for (size_t k = (size_t)T * H; k < (size_t)Tb * H; ++k) nonzero += y[k] != 0.0;
      for (size_t k = (size_t)Tb * H; k < n; ++k) touched += raw[k] != 0xFFFF;
      RCHECK(c, nonzero == 0 && touched == 0, "batch %d: %zu nonzero y elements in rows [%d, %d), %zu written past the bucket",
             i, nonzero, T, Tb, touched);
      if (i == EAGER_BATCH) {
        double *gs = gdn_dalloc(d.n_state), *gc = gdn_dalloc(d.n_conv), *es = gdn_dalloc(d.n_state),
               *ec = gdn_dalloc(d.n_conv);
        gdn_download(GDN_DTYPE_F32, d.state, d.n_state, gs);
        gdn_download(DT, d.conv, d.n_conv, gc);
        CUDA_OK(cudaMemcpy(d.state, d.state_bak, d.n_state * 4, cudaMemcpyDeviceToDevice));
        CUDA_OK(cudaMemcpy(d.conv, d.conv_bak, d.n_conv * 2, cudaMemcpyDeviceToDevice));
        st = run_batch(&d, sh, i, s, 1, y2, raw2);
        RCHECK(c, st == GDN_SUCCESS, "batch %d: eager run: %s (%s)", i, gdn_status_string(st), gdn_get_last_error());
        gdn_download(GDN_DTYPE_F32, d.state, d.n_state, es);
        gdn_download(DT, d.conv, d.n_conv, ec);
        double e = T ? gdn_rel_l2(y2, y, (size_t)T * H) : 0.0;
        RCHECK(c, e <= EAGER_BOUND, "batch %d: eager vs graph y: rel L2 %.3e > %.1e", i, e, EAGER_BOUND);
        RCHECK(c, memcmp(gs, es, d.n_state * sizeof(double)) == 0 && memcmp(gc, ec, d.n_conv * sizeof(double)) == 0,
               "batch %d: eager and graph pools differ", i);
        RCHECK(c, memcmp(raw + (size_t)T * H, raw2 + (size_t)T * H, (n - (size_t)T * H) * 2) == 0,
               "batch %d: eager and graph differ past the batch", i);
        free(gs);
        free(gc);
        free(es);
        free(ec);
      }
    }
    /* pools after every batch vs the slices of the R = 1 pools */
    double *gs = gdn_dalloc(d.n_state), *gc = gdn_dalloc(d.n_conv), *ws = gdn_dalloc(d.n_state), *wc = gdn_dalloc(d.n_conv);
    gdn_download(GDN_DTYPE_F32, d.state, d.n_state, gs);
    gdn_download(DT, d.conv, d.n_conv, gc);
    gdn_ref_layer_shard_state(&sh->full, r, R, NUM_SLOTS, sh->ref_state, ws);
    gdn_ref_layer_shard_conv_state(&sh->full, r, R, NUM_SLOTS, sh->ref_conv, wc);
    double e1 = gdn_rel_l2(gs, ws, d.n_state), e2 = gdn_rel_l2(gc, wc, d.n_conv);
    RCHECK(c, e1 <= BOUND && e2 <= CONV_BOUND, "pools vs reference slice: state %.3e, conv %.3e", e1, e2);
    gdn_ref_layer_shard_state(&sh->full, r, R, NUM_SLOTS, sh->gpu1_state, ws);
    gdn_ref_layer_shard_conv_state(&sh->full, r, R, NUM_SLOTS, sh->gpu1_conv, wc);
    double e3 = gdn_rel_l2(gs, ws, d.n_state), e4 = gdn_rel_l2(gc, wc, d.n_conv);
    RCHECK(c, e3 <= GPU_BOUND && e4 <= CONV_BOUND, "pools vs R=1 GPU slice: state %.3e, conv %.3e", e3, e4);
    printf("  rank %d: final pools vs reference %.2e / %.2e, vs R=1 GPU %.2e / %.2e\n", r, e1, e2, e3, e4);
    free(gs);
    free(gc);
    free(ws);
    free(wc);
    free(y);
    free(y2);
    free(raw);
    free(raw2);
  }
  dev_layer_free(&d);
  CUDA_OK(cudaStreamDestroy(s));
  free(st0);
  free(cv0);
  pthread_barrier_wait(&sh->barrier);
  /* Each communicator destroyed from its own thread (destruction may wait for the others). */
  gdn_status ds = gdn_layer_comm_destroy(sh->comm[r]);
  RCHECK(c, ds == GDN_SUCCESS, "comm destroy: %s (%s)", gdn_status_string(ds), gdn_get_last_error());
  return NULL;
}

/* ---------------------------------------------------------------- main */

int main(void) {
  gdn_gpu_test_init("test_layer_multi", 2);
  int ndev = 0;
  CUDA_OK(cudaGetDeviceCount(&ndev));
  if (ndev > MAX_RANKS || HK % ndev != 0) {
    printf("test_layer_multi: Hk = %d is not divisible by %d GPUs (R = number of visible GPUs: 2, 4 or 8): skipped\n", HK, ndev);
    return GDN_SKIP_CODE;
  }
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  static shared sh;
  memset(&sh, 0, sizeof sh);
  sh.R = ndev;
  sh.seed = gdn_test_seed("test_layer_multi");
  printf("test_layer_multi: R = %d ranks, full layer hidden %d, Hk %d, Hv %d, K %d, V %d, W %d (per rank Hk %d, Hv %d)\n",
         sh.R, HIDDEN, HK, HV, KD, VD, WC, HK / sh.R, HV / sh.R);
  gdn_rng rng;
  gdn_rng_seed(&rng, sh.seed);

  /* the unsharded layer, rounded to what the devices hold */
  gdn_ref_layer_shape s = {HIDDEN, HK, HV, KD, VD, WC, 1e-6, 1, 1, 0.0};
  sh.full = s;
  const int64_t D = conv_channels(&s), Dtot = in_rows(&s), HvV = HV * VD;
  double *w_in = gdn_dalloc((size_t)Dtot * HIDDEN), *conv_w = gdn_dalloc((size_t)D * WC);
  double *A_log = gdn_dalloc(HV), *dt_bias = gdn_dalloc(HV), *norm_w = gdn_dalloc(VD);
  double *w_out = gdn_dalloc((size_t)HIDDEN * HvV);
  gdn_fill_normal(&rng, w_in, (size_t)Dtot * HIDDEN, 1.0 / sqrt((double)HIDDEN));
  gdn_fill_normal(&rng, conv_w, (size_t)D * WC, 1.0 / sqrt((double)WC));
  for (int h = 0; h < HV; ++h) {
    A_log[h] = log(1.0 + 7.0 * gdn_rng_uniform(&rng));
    dt_bias[h] = -3.0 + 3.0 * gdn_rng_uniform(&rng);
  }
  for (int i = 0; i < VD; ++i) norm_w[i] = 1.0 + 0.1 * gdn_rng_normal(&rng);
  gdn_fill_normal(&rng, w_out, (size_t)HIDDEN * HvV, 1.0 / sqrt((double)HvV));
  gdn_round_to(DT, w_in, (size_t)Dtot * HIDDEN);
  gdn_round_to(DT, conv_w, (size_t)D * WC);
  gdn_round_to(GDN_DTYPE_F32, A_log, HV);
  gdn_round_to(GDN_DTYPE_F32, dt_bias, HV);
  gdn_round_to(GDN_DTYPE_F32, norm_w, VD);
  gdn_round_to(DT, w_out, (size_t)HIDDEN * HvV);
  gdn_ref_layer_weights w = {w_in, conv_w, NULL, A_log, dt_bias, norm_w, w_out};
  const size_t ns = state_elems(&s), nc = conv_elems(&s);
  sh.state0 = gdn_dalloc(ns);
  sh.conv0 = gdn_dalloc(nc);
  gdn_fill_normal(&rng, sh.state0, ns, 0.1);
  gdn_fill_normal(&rng, sh.conv0, nc, 1.0);
  gdn_round_to(GDN_DTYPE_F32, sh.state0, ns);
  gdn_round_to(DT, sh.conv0, nc);

  /* batches, inputs and the R = 1 reference (pools carried batch to batch) */
  sh.ref_state = gdn_dalloc(ns);
  sh.ref_conv = gdn_dalloc(nc);
  memcpy(sh.ref_state, sh.state0, ns * sizeof(double));
  memcpy(sh.ref_conv, sh.conv0, nc * sizeof(double));
  const size_t nx = (size_t)T_CAP * HIDDEN;
  double *x = gdn_dalloc(nx);
  for (int i = 0; i < NBATCH; ++i) {
    random_batch(&rng, &sh.b[i]);
    const int T = sh.b[i].cu[sh.b[i].n];
    gdn_fill_normal(&rng, x, nx, 1.0);
    gdn_round_to(DT, x, nx);
    if (i % 2)
      for (size_t k = (size_t)T * HIDDEN; k < nx; ++k) x[k] = NAN;
    sh.x_packed[i] = gdn_xmalloc(nx * 2);
    gdn_pack(DT, x, nx, sh.x_packed[i]);
    sh.y_ref[i] = gdn_dalloc((size_t)(T > 0 ? T : 1) * HIDDEN);
    gdn_ref_layer(&s, &w, sh.b[i].n, sh.b[i].cu, sh.b[i].slots, x, sh.ref_state, sh.ref_conv, sh.y_ref[i]);
  }
  free(x);

  /* R = 1 on device 0, no communicator */
  {
    CUDA_OK(cudaSetDevice(0));
    cudaStream_t st;
    CUDA_OK(cudaStreamCreate(&st));
    dev_layer d;
    gdn_status cs = dev_layer_create(&d, &s, &w, sh.state0, sh.conv0, NULL, 0);
    CHECK(cs == GDN_SUCCESS, "R=1 plan on device 0: %s (%s)", gdn_status_string(cs), gdn_get_last_error());
    if (cs == GDN_SUCCESS) {
      double *y = gdn_dalloc(nx);
      uint16_t *raw = (uint16_t *)gdn_xmalloc(nx * 2);
      for (int i = 0; i < NBATCH; ++i) {
        CHECK_OK(run_batch(&d, &sh, i, st, 0, y, raw));
        const int T = sh.b[i].cu[sh.b[i].n];
        sh.y_gpu1[i] = gdn_dalloc((size_t)(T > 0 ? T : 1) * HIDDEN);
        memcpy(sh.y_gpu1[i], y, (size_t)T * HIDDEN * sizeof(double));
        double e1 = T ? gdn_rel_l2(y, sh.y_ref[i], (size_t)T * HIDDEN) : 0.0;
        CHECK(e1 <= BOUND, "R=1 GPU batch %d vs reference: rel L2 %.3e", i, e1);
      }
      sh.gpu1_state = gdn_dalloc(ns);
      sh.gpu1_conv = gdn_dalloc(nc);
      gdn_download(GDN_DTYPE_F32, d.state, ns, sh.gpu1_state);
      gdn_download(DT, d.conv, nc, sh.gpu1_conv);
      free(y);
      free(raw);
    }
    dev_layer_free(&d);
    CUDA_OK(cudaStreamDestroy(st));
  }
  if (gdn_test_failures) return gdn_test_finish("test_layer_multi");

  for (int r = 0; r < sh.R; ++r)
    CHECK(gdn_ref_layer_shard_make(&s, &w, r, sh.R, &sh.shard[r]) == 0, "shard_make %d of %d", r, sh.R);
  CHECK_OK(gdn_layer_comm_init_all(sh.R, NULL, sh.comm));
  if (gdn_test_failures) return gdn_test_finish("test_layer_multi");

  pthread_barrier_init(&sh.barrier, NULL, (unsigned)sh.R);
  rank_ctx ctx[MAX_RANKS];
  pthread_t th[MAX_RANKS];
  for (int r = 0; r < sh.R; ++r) {
    memset(&ctx[r], 0, sizeof ctx[r]);
    ctx[r].sh = &sh;
    ctx[r].rank = r;
    int rc = pthread_create(&th[r], NULL, rank_main, &ctx[r]);
    CHECK(rc == 0, "pthread_create failed for rank %d", r);
    if (rc != 0) return gdn_test_finish("test_layer_multi"); /* the others would wait at the barrier */
  }
  for (int r = 0; r < sh.R; ++r) pthread_join(th[r], NULL);
  pthread_barrier_destroy(&sh.barrier);
  for (int r = 0; r < sh.R; ++r) {
    gdn_test_checks += ctx[r].checks;
    gdn_test_failures += ctx[r].failures;
    printf("  rank %d: %d checks, %d failed\n", r, ctx[r].checks, ctx[r].failures);
  }

  for (int r = 0; r < sh.R; ++r) gdn_ref_layer_shard_free(&sh.shard[r]);
  for (int i = 0; i < NBATCH; ++i) {
    free(sh.x_packed[i]);
    free(sh.y_ref[i]);
    free(sh.y_gpu1[i]);
  }
  free(sh.state0);
  free(sh.conv0);
  free(sh.ref_state);
  free(sh.ref_conv);
  free(sh.gpu1_state);
  free(sh.gpu1_conv);
  free(w_in);
  free(conv_w);
  free(A_log);
  free(dt_bias);
  free(norm_w);
  free(w_out);
  if (gdn_test_failures) fprintf(stderr, "test_layer_multi: seed %llu\n", (unsigned long long)sh.seed);
  return gdn_test_finish("test_layer_multi");
}
