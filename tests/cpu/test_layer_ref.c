/* The whole-layer reference gdn_ref_layer (ref/ref_layer_full.c) and its tensor-parallel
 * sharding, on small CPU shapes (hidden 64, Hk 4, Hv 8, K = V = 16, W = 4; the CPU
 * reference takes any head dims):
 *  - composition: gdn_ref_layer on a varlen batch == the step-by-step composition written
 *    out here from the documented W_in row layout (in_proj, column split, conv1d + SiLU,
 *    gating + l2norm + recurrence, gated RMSNorm, out_proj): y and both pools identical
 *    (<= 1e-12 relative; the same float64 operations in the same order);
 *  - batching: the batch == each sequence run alone, one after the other (distinct slots);
 *  - continuation: every sequence cut in two, the two halves run as two batches with the
 *    pools carrying state (recurrent and conv, halves shorter than W-1 included) == one run;
 *  - sharding: for R = 2 and 4, sum over ranks of the shards' y == the unsharded y
 *    (relative L2 <= 1e-10: only the out_proj partial sums are added in another order, every
 *    per-head quantity is computed identically), each shard's pools == the slice of the
 *    unsharded pools, the shards' W_in rows partition the full W_in, invalid shardings are
 *    refused; and a wrong shard (rank 0 twice) is detected (the test can fail).
 * Each check runs with and without a conv bias. GDN_TEST_SEED replays a run. */
#include <math.h>
#include <string.h>

#include "gdn/batch.h"
#include "test_util.h"

#define HIDDEN 64
#define HK 4
#define HV 8
#define KD 16
#define VD 16
#define WC 4
#define NUM_SLOTS 8
#define MAXS 8
#define EXACT 1e-12
#define SHARD_BOUND 1e-10

typedef struct model {
  gdn_ref_layer_shape s;
  int64_t D, Dtot;
  double *w_in, *conv_w, *conv_b, *A_log, *dt_bias, *norm_w, *w_out;
  gdn_ref_layer_weights w;
  double *state0, *conv0; /* initial pools */
} model;

typedef struct batch {
  int n;
  int32_t cu[MAXS + 1];
  int32_t slots[MAXS];
} batch;


static size_t state_elems(const gdn_ref_layer_shape *s) { return (size_t)NUM_SLOTS * s->Hv * s->V * s->K; }
static size_t conv_elems(const gdn_ref_layer_shape *s, int64_t D) { return (size_t)NUM_SLOTS * (s->W - 1) * (size_t)D; }

static void model_init(model *m, gdn_rng *r, int with_bias) {
  memset(m, 0, sizeof *m);
  gdn_ref_layer_shape s = {HIDDEN, HK, HV, KD, VD, WC, 1e-6, 1, 1, 0.0};
  m->s = s;
  m->D = 2 * HK * KD + HV * VD;
  m->Dtot = m->D + HV * VD + 2 * HV;
  m->w_in = gdn_dalloc((size_t)m->Dtot * HIDDEN);
  m->conv_w = gdn_dalloc((size_t)m->D * WC);
  m->conv_b = with_bias ? gdn_dalloc((size_t)m->D) : NULL;
  m->A_log = gdn_dalloc(HV);
  m->dt_bias = gdn_dalloc(HV);
  m->norm_w = gdn_dalloc(VD);
  m->w_out = gdn_dalloc((size_t)HIDDEN * HV * VD);
  /* O(1) activations: unit-variance projections, moderate decays (A in [1, 8]). */
  gdn_fill_normal(r, m->w_in, (size_t)m->Dtot * HIDDEN, 1.0 / sqrt((double)HIDDEN));
  gdn_fill_normal(r, m->conv_w, (size_t)m->D * WC, 1.0 / sqrt((double)WC));
  if (m->conv_b) gdn_fill_normal(r, m->conv_b, (size_t)m->D, 0.1);
  for (int h = 0; h < HV; ++h) {
    m->A_log[h] = log(1.0 + 7.0 * gdn_rng_uniform(r));
    m->dt_bias[h] = -3.0 + 3.0 * gdn_rng_uniform(r);
  }
  for (int i = 0; i < VD; ++i) m->norm_w[i] = 1.0 + 0.1 * gdn_rng_normal(r);
  gdn_fill_normal(r, m->w_out, (size_t)HIDDEN * HV * VD, 1.0 / sqrt((double)(HV * VD)));
  m->w.w_in = m->w_in;
  m->w.conv_weight = m->conv_w;
  m->w.conv_bias = m->conv_b;
  m->w.A_log = m->A_log;
  m->w.dt_bias = m->dt_bias;
  m->w.norm_weight = m->norm_w;
  m->w.w_out = m->w_out;
  m->state0 = gdn_dalloc(state_elems(&m->s));
  m->conv0 = gdn_dalloc(conv_elems(&m->s, m->D));
  gdn_fill_normal(r, m->state0, state_elems(&m->s), 0.1);
  gdn_fill_normal(r, m->conv0, conv_elems(&m->s, m->D), 1.0);
}

static void model_free(model *m) {
  free(m->w_in);
  free(m->conv_w);
  free(m->conv_b);
  free(m->A_log);
  free(m->dt_bias);
  free(m->norm_w);
  free(m->w_out);
  free(m->state0);
  free(m->conv0);
}

/* Lengths 0..40 (short ones included: < W-1 exercises the shifted conv state), distinct
 * slots or -1 (unless all_slots). */
static void random_batch(gdn_rng *r, batch *b, int all_slots) {
  memset(b, 0, sizeof *b);
  b->n = 1 + gdn_test_rand_int(r, MAXS);
  int perm[NUM_SLOTS];
  gdn_test_shuffle(r, perm, NUM_SLOTS);
  for (int i = 0; i < b->n; ++i) {
    int len = gdn_test_rand_int(r, 5) == 0 ? gdn_test_rand_int(r, 3) : 1 + gdn_test_rand_int(r, 40);
    b->cu[i + 1] = b->cu[i] + len;
    b->slots[i] = (all_slots || gdn_rng_uniform(r) < 0.75) ? perm[i] : GDN_PAD_SLOT;
  }
}

static double max_rel(const double *a, const double *b, size_t n) {
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < n; ++i) {
    double d = fabs(a[i] - b[i]);
    if (d > num || d != d) num = d;
    if (fabs(b[i]) > den) den = fabs(b[i]);
  }
  return num / den;
}

/* ---------------------------------------------------------------- composition */

static void run_composed(const model *m, const batch *b, const double *x, double *state, double *conv, double *y) {
  const int T = b->cu[b->n];
  const int64_t Dtot = m->Dtot, D = m->D, HkK = HK * KD, HvV = HV * VD;
  double *mixed = gdn_dalloc((size_t)T * Dtot + 1);
  gdn_ref_linear(T, (int)Dtot, HIDDEN, x, m->w_in, NULL, 0, mixed);
  double *cin = gdn_dalloc((size_t)T * D + 1), *cout = gdn_dalloc((size_t)T * D + 1);
  double *q = gdn_dalloc((size_t)T * HkK + 1), *k = gdn_dalloc((size_t)T * HkK + 1), *v = gdn_dalloc((size_t)T * HvV + 1);
  double *z = gdn_dalloc((size_t)T * HvV + 1), *a = gdn_dalloc((size_t)T * HV + 1), *bb = gdn_dalloc((size_t)T * HV + 1);
  for (int t = 0; t < T; ++t) {
    const double *row = mixed + (size_t)t * Dtot;
    for (int64_t c = 0; c < D; ++c) cin[(size_t)t * D + c] = row[c];
    for (int64_t c = 0; c < HvV; ++c) z[(size_t)t * HvV + c] = row[D + c];
    for (int h = 0; h < HV; ++h) {
      bb[(size_t)t * HV + h] = row[D + HvV + h];
      a[(size_t)t * HV + h] = row[D + HvV + HV + h];
    }
  }
  gdn_ref_conv1d(b->n, b->cu, b->slots, (int)D, WC, cin, m->conv_w, m->conv_b, conv, cout);
  for (int t = 0; t < T; ++t) {
    const double *row = cout + (size_t)t * D;
    for (int64_t c = 0; c < HkK; ++c) {
      q[(size_t)t * HkK + c] = row[c];
      k[(size_t)t * HkK + c] = row[HkK + c];
    }
    for (int64_t c = 0; c < HvV; ++c) v[(size_t)t * HvV + c] = row[2 * HkK + c];
  }
  gdn_ref_shape rs = {b->n, b->cu, HK, HV, KD, VD};
  gdn_ref_prefill_inputs in = {.q = q, .k = k, .v = v, .a = a, .b = bb, .A_log = m->A_log, .dt_bias = m->dt_bias,
                               .gk = NULL, .use_g = 1, .l2norm_qk = 1, .scale = 0.0};
  double *o = gdn_dalloc((size_t)T * HvV + 1), *normed = gdn_dalloc((size_t)T * HvV + 1);
  gdn_ref_prefill(&rs, &in, state, b->slots, o);
  gdn_ref_gated_rmsnorm(T, HV, VD, o, z, m->norm_w, 1e-6, normed);
  gdn_ref_linear(T, HIDDEN, (int)HvV, normed, m->w_out, NULL, 0, y);
  free(mixed);
  free(cin);
  free(cout);
  free(q);
  free(k);
  free(v);
  free(z);
  free(a);
  free(bb);
  free(o);
  free(normed);
}

typedef struct run_out {
  double *y, *state, *conv;
} run_out;

static void run_layer(const model *m, const gdn_ref_layer_shape *s, const gdn_ref_layer_weights *w, int64_t D,
                      const batch *b, const double *x, const double *state0, const double *conv0, run_out *out) {
  const int T = b->cu[b->n];
  out->y = gdn_dalloc((size_t)T * HIDDEN + 1);
  out->state = gdn_dalloc(state_elems(s));
  out->conv = gdn_dalloc(conv_elems(s, D));
  memcpy(out->state, state0, state_elems(s) * sizeof(double));
  memcpy(out->conv, conv0, conv_elems(s, D) * sizeof(double));
  gdn_ref_layer(s, w, b->n, b->cu, b->slots, x, out->state, out->conv, out->y);
  (void)m;
}

static void run_free(run_out *o) {
  free(o->y);
  free(o->state);
  free(o->conv);
}

static void test_composition(const model *m, gdn_rng *r, const char *tag) {
  for (int it = 0; it < 4; ++it) {
    batch b;
    random_batch(r, &b, 0);
    const int T = b.cu[b.n];
    double *x = gdn_dalloc((size_t)T * HIDDEN + 1);
    gdn_fill_normal(r, x, (size_t)T * HIDDEN, 1.0);
    run_out L;
    run_layer(m, &m->s, &m->w, m->D, &b, x, m->state0, m->conv0, &L);
    double *y = gdn_dalloc((size_t)T * HIDDEN + 1), *st = gdn_dalloc(state_elems(&m->s)),
           *cv = gdn_dalloc(conv_elems(&m->s, m->D));
    memcpy(st, m->state0, state_elems(&m->s) * sizeof(double));
    memcpy(cv, m->conv0, conv_elems(&m->s, m->D) * sizeof(double));
    run_composed(m, &b, x, st, cv, y);
    double ey = max_rel(L.y, y, (size_t)T * HIDDEN), es = max_rel(L.state, st, state_elems(&m->s)),
           ec = max_rel(L.conv, cv, conv_elems(&m->s, m->D));
    CHECK(ey <= EXACT && es <= EXACT && ec <= EXACT, "[%s] layer vs composition (N=%d T=%d): y %.3e, state %.3e, conv %.3e",
          tag, b.n, T, ey, es, ec);
    CHECK(gdn_count_nonfinite(L.y, (size_t)T * HIDDEN) == 0, "[%s] non-finite y", tag);
    /* the reference is not trivially zero: activations are O(1) */
    double ss = 0;
    for (size_t i = 0; i < (size_t)T * HIDDEN; ++i) ss += L.y[i] * L.y[i];
    CHECK(T == 0 || (ss / ((double)T * HIDDEN) > 1e-3 && ss / ((double)T * HIDDEN) < 1e2),
          "[%s] y mean square %.3e is not O(1)", tag, T ? ss / ((double)T * HIDDEN) : 0.0);
    run_free(&L);
    free(x);
    free(y);
    free(st);
    free(cv);
  }
}

/* ---------------------------------------------------------------- batching / continuation */

static void test_batch_vs_sequences(const model *m, gdn_rng *r, const char *tag) {
  batch b;
  random_batch(r, &b, 0);
  const int T = b.cu[b.n];
  double *x = gdn_dalloc((size_t)T * HIDDEN + 1);
  gdn_fill_normal(r, x, (size_t)T * HIDDEN, 1.0);
  run_out L;
  run_layer(m, &m->s, &m->w, m->D, &b, x, m->state0, m->conv0, &L);
  double *y = gdn_dalloc((size_t)T * HIDDEN + 1), *st = gdn_dalloc(state_elems(&m->s)),
         *cv = gdn_dalloc(conv_elems(&m->s, m->D));
  memcpy(st, m->state0, state_elems(&m->s) * sizeof(double));
  memcpy(cv, m->conv0, conv_elems(&m->s, m->D) * sizeof(double));
  for (int n = 0; n < b.n; ++n) {
    int32_t cu[2] = {0, b.cu[n + 1] - b.cu[n]};
    gdn_ref_layer(&m->s, &m->w, 1, cu, &b.slots[n], x + (size_t)b.cu[n] * HIDDEN, st, cv, y + (size_t)b.cu[n] * HIDDEN);
  }
  double ey = max_rel(y, L.y, (size_t)T * HIDDEN), es = max_rel(st, L.state, state_elems(&m->s)),
         ec = max_rel(cv, L.conv, conv_elems(&m->s, m->D));
  CHECK(ey <= EXACT && es <= EXACT && ec <= EXACT, "[%s] batch vs one sequence at a time: y %.3e, state %.3e, conv %.3e",
        tag, ey, es, ec);
  run_free(&L);
  free(x);
  free(y);
  free(st);
  free(cv);
}

static void test_continuation(const model *m, gdn_rng *r, const char *tag) {
  for (int it = 0; it < 3; ++it) {
    batch b, b1, b2;
    random_batch(r, &b, 1);
    const int T = b.cu[b.n];
    double *x = gdn_dalloc((size_t)T * HIDDEN + 1);
    gdn_fill_normal(r, x, (size_t)T * HIDDEN, 1.0);
    run_out L;
    run_layer(m, &m->s, &m->w, m->D, &b, x, m->state0, m->conv0, &L);
    /* cut each sequence at a random point (0 and len allowed) */
    int cut[MAXS];
    b1 = b2 = b;
    for (int n = 0; n < b.n; ++n) {
      int len = b.cu[n + 1] - b.cu[n];
      cut[n] = gdn_test_rand_int(r, len + 1);
      if (gdn_test_rand_int(r, 3) == 0 && len > 2) cut[n] = 1 + gdn_test_rand_int(r, 2); /* shorter than W-1 */
      b1.cu[n + 1] = b1.cu[n] + cut[n];
      b2.cu[n + 1] = b2.cu[n] + len - cut[n];
    }
    double *x1 = gdn_dalloc((size_t)T * HIDDEN + 1), *x2 = gdn_dalloc((size_t)T * HIDDEN + 1);
    double *y1 = gdn_dalloc((size_t)T * HIDDEN + 1), *y2 = gdn_dalloc((size_t)T * HIDDEN + 1), *y = gdn_dalloc((size_t)T * HIDDEN + 1);
    for (int n = 0; n < b.n; ++n) {
      int len = b.cu[n + 1] - b.cu[n];
      memcpy(x1 + (size_t)b1.cu[n] * HIDDEN, x + (size_t)b.cu[n] * HIDDEN, (size_t)cut[n] * HIDDEN * sizeof(double));
      memcpy(x2 + (size_t)b2.cu[n] * HIDDEN, x + (size_t)(b.cu[n] + cut[n]) * HIDDEN,
             (size_t)(len - cut[n]) * HIDDEN * sizeof(double));
    }
    double *st = gdn_dalloc(state_elems(&m->s)), *cv = gdn_dalloc(conv_elems(&m->s, m->D));
    memcpy(st, m->state0, state_elems(&m->s) * sizeof(double));
    memcpy(cv, m->conv0, conv_elems(&m->s, m->D) * sizeof(double));
    gdn_ref_layer(&m->s, &m->w, b1.n, b1.cu, b1.slots, x1, st, cv, y1);
    gdn_ref_layer(&m->s, &m->w, b2.n, b2.cu, b2.slots, x2, st, cv, y2);
    for (int n = 0; n < b.n; ++n) {
      int len = b.cu[n + 1] - b.cu[n];
      memcpy(y + (size_t)b.cu[n] * HIDDEN, y1 + (size_t)b1.cu[n] * HIDDEN, (size_t)cut[n] * HIDDEN * sizeof(double));
      memcpy(y + (size_t)(b.cu[n] + cut[n]) * HIDDEN, y2 + (size_t)b2.cu[n] * HIDDEN,
             (size_t)(len - cut[n]) * HIDDEN * sizeof(double));
    }
    double ey = max_rel(y, L.y, (size_t)T * HIDDEN), es = max_rel(st, L.state, state_elems(&m->s)),
           ec = max_rel(cv, L.conv, conv_elems(&m->s, m->D));
    CHECK(ey <= EXACT && es <= EXACT && ec <= EXACT,
          "[%s] two-part continuation vs one run (N=%d T=%d): y %.3e, state %.3e, conv %.3e", tag, b.n, T, ey, es, ec);
    run_free(&L);
    free(x);
    free(x1);
    free(x2);
    free(y1);
    free(y2);
    free(y);
    free(st);
    free(cv);
  }
}

/* ---------------------------------------------------------------- sharding */

static void test_sharding(const model *m, gdn_rng *r, int R, const char *tag) {
  gdn_ref_layer_shard sh[4];
  for (int k = 0; k < R; ++k)
    CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, k, R, &sh[k]) == 0, "[%s] shard_make(rank %d of %d) failed", tag, k, R);
  if (gdn_test_failures) return;
  const int64_t Dr = m->D / R;
  CHECK(sh[0].shape.Hk == HK / R && sh[0].shape.Hv == HV / R && sh[0].shape.hidden == HIDDEN,
        "[%s] shard shape Hk %d Hv %d", tag, sh[0].shape.Hk, sh[0].shape.Hv);

  /* the shards' W_in rows are a partition of the full rows */
  int *seen = (int *)calloc((size_t)m->Dtot, sizeof(int));
  const int64_t Dtot_r = m->Dtot / R;
  for (int k = 0; k < R; ++k)
    for (int64_t row = 0; row < Dtot_r; ++row) {
      int64_t f = gdn_ref_layer_shard_row(&m->s, k, R, row);
      if (f >= 0 && f < m->Dtot) seen[f]++;
      CHECK(memcmp(sh[k].w_in + (size_t)row * HIDDEN, m->w_in + (size_t)f * HIDDEN, HIDDEN * sizeof(double)) == 0,
            "[%s] rank %d W_in row %lld is not full row %lld", tag, k, (long long)row, (long long)f);
    }
  int partition = 1;
  for (int64_t f = 0; f < m->Dtot; ++f) partition &= seen[f] == 1;
  CHECK(partition, "[%s] shard rows do not partition W_in over %d ranks", tag, R);
  free(seen);

  for (int it = 0; it < 3; ++it) {
    batch b;
    random_batch(r, &b, 0);
    const int T = b.cu[b.n];
    double *x = gdn_dalloc((size_t)T * HIDDEN + 1);
    gdn_fill_normal(r, x, (size_t)T * HIDDEN, 1.0);
    run_out full;
    run_layer(m, &m->s, &m->w, m->D, &b, x, m->state0, m->conv0, &full);
    double *sum = gdn_dalloc((size_t)T * HIDDEN + 1), *wrong = gdn_dalloc((size_t)T * HIDDEN + 1);
    for (int k = 0; k < R; ++k) {
      const gdn_ref_layer_shape *s = &sh[k].shape;
      double *st0 = gdn_dalloc(state_elems(s)), *cv0 = gdn_dalloc(conv_elems(s, Dr));
      double *st_want = gdn_dalloc(state_elems(s)), *cv_want = gdn_dalloc(conv_elems(s, Dr));
      gdn_ref_layer_shard_state(&m->s, k, R, NUM_SLOTS, m->state0, st0);
      gdn_ref_layer_shard_conv_state(&m->s, k, R, NUM_SLOTS, m->conv0, cv0);
      run_out part;
      run_layer(m, s, &sh[k].weights, Dr, &b, x, st0, cv0, &part);
      for (size_t i = 0; i < (size_t)T * HIDDEN; ++i) sum[i] += part.y[i];
      gdn_ref_layer_shard_state(&m->s, k, R, NUM_SLOTS, full.state, st_want);
      gdn_ref_layer_shard_conv_state(&m->s, k, R, NUM_SLOTS, full.conv, cv_want);
      double es = max_rel(part.state, st_want, state_elems(s)), ec = max_rel(part.conv, cv_want, conv_elems(s, Dr));
      CHECK(es <= EXACT && ec <= EXACT, "[%s] R=%d rank %d pools vs the unsharded pools' slice: state %.3e, conv %.3e", tag,
            R, k, es, ec);
      /* rank 0's shard in place of every rank: must not sum to the full output */
      if (k == 0)
        for (int kk = 0; kk < R; ++kk)
          for (size_t i = 0; i < (size_t)T * HIDDEN; ++i) wrong[i] += part.y[i];
      run_free(&part);
      free(st0);
      free(cv0);
      free(st_want);
      free(cv_want);
    }
    double e = gdn_rel_l2(sum, full.y, (size_t)T * HIDDEN);
    CHECK(T == 0 || e <= SHARD_BOUND, "[%s] R=%d: sum of shard outputs vs unsharded y: rel L2 %.3e > %.0e (N=%d T=%d)", tag,
          R, e, SHARD_BOUND, b.n, T);
    double ew = gdn_rel_l2(wrong, full.y, (size_t)T * HIDDEN);
    CHECK(T == 0 || ew > 1e-3, "[%s] R=%d: a wrong sharding went undetected (rel L2 %.3e)", tag, R, ew);
    run_free(&full);
    free(x);
    free(sum);
    free(wrong);
  }
  for (int k = 0; k < R; ++k) gdn_ref_layer_shard_free(&sh[k]);
}

static void test_shard_errors(const model *m) {
  gdn_ref_layer_shard sh;
  CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, 0, 3, &sh) == -1, "R=3 does not divide Hk=4: must be refused");
  CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, 2, 2, &sh) == -1, "rank 2 of 2 must be refused");
  CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, -1, 2, &sh) == -1, "rank -1 must be refused");
  CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, 0, 0, &sh) == -1, "0 ranks must be refused");
  /* R = 1 is the identity */
  CHECK(gdn_ref_layer_shard_make(&m->s, &m->w, 0, 1, &sh) == 0, "R=1 refused");
  CHECK(memcmp(sh.w_in, m->w_in, (size_t)m->Dtot * HIDDEN * sizeof(double)) == 0 &&
            memcmp(sh.w_out, m->w_out, (size_t)HIDDEN * HV * VD * sizeof(double)) == 0,
        "R=1 shard differs from the full weights");
  gdn_ref_layer_shard_free(&sh);
}

int main(void) {
  uint64_t seed = gdn_test_seed("test_layer_ref");
  gdn_rng r;
  gdn_rng_seed(&r, seed);
  for (int with_bias = 0; with_bias < 2; ++with_bias) {
    const char *tag = with_bias ? "conv bias" : "no conv bias";
    model m;
    model_init(&m, &r, with_bias);
    test_composition(&m, &r, tag);
    test_batch_vs_sequences(&m, &r, tag);
    test_continuation(&m, &r, tag);
    test_sharding(&m, &r, 2, tag);
    test_sharding(&m, &r, 4, tag);
    test_shard_errors(&m);
    model_free(&m);
  }
  if (gdn_test_failures) fprintf(stderr, "test_layer_ref: seed %llu\n", (unsigned long long)seed);
  return gdn_test_finish("test_layer_ref");
}
