/* The chunked reference equals the recurrence (the oracle) on fresh random inputs, stage by
 * stage and as a whole; its deliberately broken variants do not (the test can fail). */
#include <math.h>
#include <string.h>

#include "gdn/batch.h"
#include "test_util.h"

#define TOL 1e-10        /* chunked vs recurrent, relative L2 */
#define BROKEN_MIN 1e-3  /* a perturbed chunked form must be at least this far off */
#define MAX_SEQS 8

enum { GATE_G = 1, GATE_GK = 2 };

typedef struct config {
  int K, V, Hk, Hv, gates, l2norm;
  double scale; /* <= 0: K^-1/2 */
  int num_seqs, lens[MAX_SEQS];
} config;

/* One random problem: raw prefill inputs and the processed ones the core math takes. */
typedef struct problem {
  config cfg;
  gdn_ref_shape s;
  int32_t cu[MAX_SEQS + 1], slots[MAX_SEQS];
  int T, NT, num_slots;
  double *q_raw, *k_raw, *v, *a, *b, *A_log, *dt_bias, *gk; /* gk NULL without GATE_GK */
  double *q, *k, *g, *beta;                                  /* g NULL without GATE_G */
  double *pool, scale;
  size_t pool_n, o_n;
} problem;

static void describe(const config *c, char *buf, size_t n) {
  int w = snprintf(buf, n, "K=%d V=%d Hk=%d Hv=%d g=%d gk=%d l2=%d lens={", c->K, c->V, c->Hk, c->Hv,
                   !!(c->gates & GATE_G), !!(c->gates & GATE_GK), c->l2norm);
  for (int i = 0; i < c->num_seqs && w > 0 && (size_t)w < n; ++i)
    w += snprintf(buf + w, n - (size_t)w, "%s%d", i ? "," : "", c->lens[i]);
  if (w > 0 && (size_t)w < n) snprintf(buf + w, n - (size_t)w, "}");
}

static void problem_make(problem *p, const config *c, gdn_rng *r) {
  memset(p, 0, sizeof *p);
  p->cfg = *c;
  const int K = c->K, V = c->V, Hk = c->Hk, Hv = c->Hv, N = c->num_seqs;
  p->cu[0] = 0;
  for (int n = 0; n < N; ++n) p->cu[n + 1] = p->cu[n] + c->lens[n];
  p->s = (gdn_ref_shape){N, p->cu, Hk, Hv, K, V};
  p->T = gdn_ref_num_tokens(&p->s);
  p->NT = gdn_ref_num_chunks(&p->s);

  /* Slots: a random permutation of a pool two larger than the batch; every third sequence is PAD. */
  p->num_slots = N + 2;
  int perm[MAX_SEQS + 2];
  for (int i = 0; i < p->num_slots; ++i) perm[i] = i;
  for (int i = p->num_slots - 1; i > 0; --i) {
    int j = (int)(gdn_rng_next(r) % (uint64_t)(i + 1)), tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  for (int n = 0; n < N; ++n) p->slots[n] = n % 3 == 1 ? GDN_PAD_SLOT : perm[n];
  p->pool_n = (size_t)p->num_slots * Hv * V * K;
  p->pool = gdn_dalloc(p->pool_n);
  gdn_fill_normal(r, p->pool, p->pool_n, 0.5);

  const size_t T = (size_t)p->T, nqk = T * Hk * K;
  p->o_n = T * Hv * V;
  /* Without l2norm, |k| ~ 1 keeps the delta rule contractive (beta |k|^2 < 2). */
  double qk_std = c->l2norm ? 1.0 : 1.0 / sqrt((double)K);
  p->q_raw = gdn_dalloc(nqk);
  p->k_raw = gdn_dalloc(nqk);
  p->v = gdn_dalloc(p->o_n);
  p->a = gdn_dalloc(T * Hv);
  p->b = gdn_dalloc(T * Hv);
  p->A_log = gdn_dalloc((size_t)Hv);
  p->dt_bias = gdn_dalloc((size_t)Hv);
  gdn_fill_normal(r, p->q_raw, nqk, qk_std);
  gdn_fill_normal(r, p->k_raw, nqk, qk_std);
  gdn_fill_normal(r, p->v, p->o_n, 1.0);
  gdn_fill_normal(r, p->a, T * Hv, 1.0);
  gdn_fill_normal(r, p->b, T * Hv, 1.0);
  gdn_fill_uniform(r, p->A_log, (size_t)Hv, -0.5, 1.5);
  gdn_fill_uniform(r, p->dt_bias, (size_t)Hv, -3.0, -1.0);
  if (c->gates & GATE_GK) {
    p->gk = gdn_dalloc(T * Hv * K);
    gdn_fill_uniform(r, p->gk, T * Hv * K, -0.3, 0.0);
  }

  /* The processed inputs: what gdn_ref_prefill computes internally. */
  p->q = gdn_dalloc(nqk);
  p->k = gdn_dalloc(nqk);
  memcpy(p->q, p->q_raw, nqk * sizeof(double));
  memcpy(p->k, p->k_raw, nqk * sizeof(double));
  if (c->l2norm) {
    gdn_ref_l2norm(p->T, Hk, K, p->q);
    gdn_ref_l2norm(p->T, Hk, K, p->k);
  }
  double *g = gdn_dalloc(T * Hv);
  p->beta = gdn_dalloc(T * Hv);
  gdn_ref_gating(p->T, Hv, p->a, p->b, p->A_log, p->dt_bias, g, p->beta);
  if (c->gates & GATE_G)
    p->g = g;
  else
    free(g);
  p->scale = c->scale > 0 ? c->scale : 1.0 / sqrt((double)K);
}

static void problem_free(problem *p) {
  double *bufs[] = {p->q_raw, p->k_raw, p->v, p->a, p->b, p->A_log, p->dt_bias, p->gk, p->q, p->k, p->g, p->beta, p->pool};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) free(bufs[i]);
}

static double *pool_copy(const problem *p) {
  double *c = gdn_dalloc(p->pool_n);
  memcpy(c, p->pool, p->pool_n * sizeof(double));
  return c;
}

/* 1 when a sequence with tokens writes slot `slot` (other slots must stay bit-identical). */
static int slot_written(const problem *p, int slot) {
  for (int n = 0; n < p->s.num_seqs; ++n)
    if (p->slots[n] == slot && p->cu[n + 1] > p->cu[n]) return 1;
  return 0;
}

static void check_untouched_slots(const problem *p, const double *pool, const char *what, const char *desc) {
  size_t per_slot = p->pool_n / (size_t)p->num_slots;
  for (int sl = 0; sl < p->num_slots; ++sl) {
    if (slot_written(p, sl)) continue;
    CHECK(memcmp(pool + sl * per_slot, p->pool + sl * per_slot, per_slot * sizeof(double)) == 0,
          "%s: slot %d (not written by any sequence) changed [%s]", what, sl, desc);
  }
}

/* Recurrence on processed inputs (the oracle), into fresh buffers. */
static void run_recurrent(const problem *p, double *o, double *pool) {
  gdn_ref_recurrent(&p->s, p->q, p->k, p->v, p->g, p->gk, p->beta, p->scale, pool, p->slots, o);
}

static void run_chunked(const problem *p, double *o, double *pool, int perturbation) {
  gdn_ref_chunked_perturbed(&p->s, p->q, p->k, p->v, p->g, p->gk, p->beta, p->scale, pool, p->slots, o, perturbation);
}

/* ---- whole forward: prefill == recurrent on processed inputs; chunked == recurrent. */
static void test_whole(const config *c, gdn_rng *r) {
  char desc[160];
  describe(c, desc, sizeof desc);
  problem p;
  problem_make(&p, c, r);

  double *o_pre = gdn_dalloc(p.o_n), *pool_pre = pool_copy(&p);
  gdn_ref_prefill_inputs in = {p.q_raw, p.k_raw, p.v, p.a, p.b, p.A_log, p.dt_bias, p.gk,
                               !!(c->gates & GATE_G), c->l2norm, c->scale};
  gdn_ref_prefill(&p.s, &in, pool_pre, p.slots, o_pre);

  double *o_rec = gdn_dalloc(p.o_n), *pool_rec = pool_copy(&p);
  run_recurrent(&p, o_rec, pool_rec);
  CHECK(gdn_rel_l2(o_pre, o_rec, p.o_n) <= 1e-14, "prefill o differs from recurrent on processed inputs [%s]", desc);
  CHECK(gdn_rel_l2(pool_pre, pool_rec, p.pool_n) <= 1e-14, "prefill state differs [%s]", desc);
  CHECK(gdn_count_nonfinite(o_rec, p.o_n) == 0, "recurrent output not finite [%s]", desc);

  double *o_chk = gdn_dalloc(p.o_n), *pool_chk = pool_copy(&p);
  gdn_ref_chunked(&p.s, p.q, p.k, p.v, p.g, p.gk, p.beta, p.scale, pool_chk, p.slots, o_chk);
  double e_o = gdn_rel_l2(o_chk, o_rec, p.o_n), e_s = gdn_rel_l2(pool_chk, pool_rec, p.pool_n);
  CHECK(e_o <= TOL, "chunked o rel err %.3g [%s]", e_o, desc);
  CHECK(e_s <= TOL, "chunked final state rel err %.3g [%s]", e_s, desc);
  check_untouched_slots(&p, pool_rec, "recurrent", desc);
  check_untouched_slots(&p, pool_chk, "chunked", desc);

  /* Perturbation 0 is the same code path: bit-identical. */
  double *o_p0 = gdn_dalloc(p.o_n), *pool_p0 = pool_copy(&p);
  run_chunked(&p, o_p0, pool_p0, 0);
  CHECK(memcmp(o_p0, o_chk, p.o_n * sizeof(double)) == 0, "perturbation 0 != gdn_ref_chunked [%s]", desc);

  /* PAD means a zero initial state: same outputs as giving the sequence a zeroed spare slot. */
  double *pool_z = gdn_dalloc(p.pool_n + (size_t)MAX_SEQS * (p.pool_n / (size_t)p.num_slots));
  memcpy(pool_z, p.pool, p.pool_n * sizeof(double));
  int32_t slots_z[MAX_SEQS];
  for (int n = 0; n < c->num_seqs; ++n) slots_z[n] = p.slots[n] >= 0 ? p.slots[n] : p.num_slots + n;
  double *o_z = gdn_dalloc(p.o_n);
  gdn_ref_recurrent(&p.s, p.q, p.k, p.v, p.g, p.gk, p.beta, p.scale, pool_z, slots_z, o_z);
  CHECK(memcmp(o_z, o_rec, p.o_n * sizeof(double)) == 0, "PAD slot is not a zero initial state [%s]", desc);

  printf("  whole  %-60s o %.2e  state %.2e\n", desc, e_o, e_s);
  free(o_pre); free(pool_pre); free(o_rec); free(pool_rec); free(o_chk); free(pool_chk);
  free(o_p0); free(pool_p0); free(pool_z); free(o_z);
  problem_free(&p);
}

/* ---- the broken variants must fail the same comparison. */
static void test_perturbed(const config *c, gdn_rng *r) {
  char desc[160];
  describe(c, desc, sizeof desc);
  problem p;
  problem_make(&p, c, r);
  double *o_rec = gdn_dalloc(p.o_n), *pool_rec = pool_copy(&p);
  run_recurrent(&p, o_rec, pool_rec);
  for (int pert = 1; pert <= 2; ++pert) {
    double *o = gdn_dalloc(p.o_n), *pool = pool_copy(&p);
    run_chunked(&p, o, pool, pert);
    double e = gdn_rel_l2(o, o_rec, p.o_n); /* NaN (non-finite output) also counts as failing */
    CHECK(!(e <= BROKEN_MIN), "perturbation %d passes the comparison (rel err %.3g) [%s]", pert, e, desc);
    printf("  broken %-60s perturbation %d: o rel err %.2e\n", desc, pert, e);
    free(o);
    free(pool);
  }
  free(o_rec);
  free(pool_rec);
  problem_free(&p);
}

/* ---- stage identities. */

/* Chunk-local cumulative log decay of key kk, value head h, token t (what the stages call G). */
static double G_at(const problem *p, const double *g_cum, const double *gk_cum, int t, int h, int kk) {
  const int K = p->cfg.K, Hv = p->cfg.Hv;
  return (g_cum ? g_cum[(size_t)t * Hv + h] : 0.0) + (gk_cum ? gk_cum[((size_t)t * Hv + h) * K + kk] : 0.0);
}

static const double *key_row(const problem *p, const double *x, int t, int h) { /* q or k of value head h */
  const int K = p->cfg.K, Hk = p->cfg.Hk, Hv = p->cfg.Hv;
  return x + ((size_t)t * Hk + h / (Hv / Hk)) * K;
}

/* A[i][j] of the chunk at t0, value head h, straight from the definition. */
static double A_entry(const problem *p, const double *g_cum, const double *gk_cum, int t0, int i, int j, int h) {
  if (j >= i) return 0.0;
  const double *ki = key_row(p, p->k, t0 + i, h), *kj = key_row(p, p->k, t0 + j, h);
  double acc = 0.0;
  for (int kk = 0; kk < p->cfg.K; ++kk)
    acc += ki[kk] * kj[kk] * exp(G_at(p, g_cum, gk_cum, t0 + i, h, kk) - G_at(p, g_cum, gk_cum, t0 + j, h, kk));
  return p->beta[(size_t)(t0 + i) * p->cfg.Hv + h] * acc;
}

static void check_cumsum(const problem *p, const double *x, const double *x_cum, int inner, const char *what,
                         const char *desc) {
  const size_t row = (size_t)p->cfg.Hv * inner;
  double worst = 0.0;
  for (int n = 0; n < p->s.num_seqs; ++n) {
    for (int t = p->cu[n]; t < p->cu[n + 1]; ++t) {
      int chunk_start = (t - p->cu[n]) % GDN_CHUNK == 0;
      for (size_t e = 0; e < row; ++e) {
        size_t i = (size_t)t * row + e;
        double want = chunk_start ? x[i] : x_cum[i - row] + x[i];
        worst = fmax(worst, fabs(x_cum[i] - want));
      }
    }
  }
  CHECK(worst <= 1e-12, "%s cumsum does not restart per chunk / accumulate (err %.3g) [%s]", what, worst, desc);
}

/* Per chunk and head, with A from the definition: A_inv is unit lower triangular and zero past
 * the chunk, (I + A) A_inv == I, (I + A) w == beta k exp(G), (I + A) u == beta v. */
static void check_kkt_wy(const problem *p, const double *g_cum, const double *gk_cum, const double *A_inv,
                         const double *w, const double *u, const char *desc) {
  enum { BT = GDN_CHUNK };
  const int K = p->cfg.K, V = p->cfg.V, Hv = p->cfg.Hv;
  double *A = gdn_dalloc(BT * BT), e_inv = 0, e_wu = 0, wu_den = 0;
  int shape_ok = 1;
#define A_INV(t, h) (A_inv + ((size_t)(t) * Hv + (h)) * BT)
  for (int n = 0; n < p->s.num_seqs; ++n) {
    for (int t0 = p->cu[n]; t0 < p->cu[n + 1]; t0 += BT) {
      const int len = p->cu[n + 1] - t0 < BT ? p->cu[n + 1] - t0 : BT;
      for (int h = 0; h < Hv; ++h) {
        for (int i = 0; i < len; ++i)
          for (int j = 0; j < len; ++j) A[i * BT + j] = (i == j) + A_entry(p, g_cum, gk_cum, t0, i, j, h); /* I + A */
        for (int i = 0; i < len; ++i) {
          shape_ok &= A_INV(t0 + i, h)[i] == 1.0;
          for (int j = i + 1; j < BT; ++j) shape_ok &= A_INV(t0 + i, h)[j] == 0.0;
          for (int j = 0; j < len; ++j) {
            double acc = 0.0;
            for (int m = 0; m <= i; ++m) acc += A[i * BT + m] * A_INV(t0 + m, h)[j];
            e_inv = fmax(e_inv, fabs(acc - (i == j)));
          }
          const double b = p->beta[(size_t)(t0 + i) * Hv + h], *ki = key_row(p, p->k, t0 + i, h);
          for (int kk = 0; kk < K; ++kk) {
            double lhs = 0.0, rhs = b * ki[kk] * exp(G_at(p, g_cum, gk_cum, t0 + i, h, kk));
            for (int m = 0; m <= i; ++m) lhs += A[i * BT + m] * w[((size_t)(t0 + m) * Hv + h) * K + kk];
            e_wu += (lhs - rhs) * (lhs - rhs);
            wu_den += rhs * rhs;
          }
          for (int vv = 0; vv < V; ++vv) {
            double lhs = 0.0, rhs = b * p->v[((size_t)(t0 + i) * Hv + h) * V + vv];
            for (int m = 0; m <= i; ++m) lhs += A[i * BT + m] * u[((size_t)(t0 + m) * Hv + h) * V + vv];
            e_wu += (lhs - rhs) * (lhs - rhs);
            wu_den += rhs * rhs;
          }
        }
      }
    }
  }
#undef A_INV
  e_wu = sqrt(e_wu / (wu_den > 0 ? wu_den : 1));
  CHECK(shape_ok, "A_inv is not unit lower triangular with zero columns past the chunk [%s]", desc);
  CHECK(e_inv <= 1e-10, "(I + A) A_inv != I: max err %.3g [%s]", e_inv, desc);
  CHECK(e_wu <= 1e-12, "(I + A) [w u] != beta [k exp(G)  v]: rel err %.3g [%s]", e_wu, desc);
  printf("  stages %-60s (I+A)A_inv-I %.1e  wy %.1e\n", desc, e_inv, e_wu);
  free(A);
}

/* gate_qk: qg_t == q_t exp(G_t) and kg_t exp(G_t) == k_t exp(G_last). */
static void check_gate_qk(const problem *p, const double *g_cum, const double *gk_cum, const char *desc) {
  const int K = p->cfg.K, Hv = p->cfg.Hv;
  const size_t n = (size_t)p->T * Hv * K;
  double *qg = gdn_dalloc(n), *kg = gdn_dalloc(n), worst = 0.0;
  gdn_ref_gate_qk(&p->s, p->q, p->k, g_cum, gk_cum, qg, kg);
  for (int sq = 0; sq < p->s.num_seqs; ++sq)
    for (int t0 = p->cu[sq]; t0 < p->cu[sq + 1]; t0 += GDN_CHUNK) {
      const int last = (p->cu[sq + 1] - t0 < GDN_CHUNK ? p->cu[sq + 1] : t0 + GDN_CHUNK) - 1;
      for (int t = t0; t <= last; ++t)
        for (int h = 0; h < Hv; ++h)
          for (int kk = 0; kk < K; ++kk) {
            const double Gt = G_at(p, g_cum, gk_cum, t, h, kk), Gl = G_at(p, g_cum, gk_cum, last, h, kk);
            const size_t i = ((size_t)t * Hv + h) * K + kk;
            worst = fmax(worst, fabs(kg[i] * exp(Gt) - key_row(p, p->k, t, h)[kk] * exp(Gl)));
            worst = fmax(worst, fabs(qg[i] - key_row(p, p->q, t, h)[kk] * exp(Gt)));
          }
    }
  CHECK(worst <= 1e-12, "gate_qk mismatch %.3g [%s]", worst, desc);
  free(qg);
  free(kg);
}

/* h[c] must be the recurrence's state after the first 64 c tokens of its sequence. */
static double check_h_prefix(const problem *p, const double *h) {
  const int K = p->cfg.K, V = p->cfg.V, Hk = p->cfg.Hk, Hv = p->cfg.Hv;
  const size_t per_slot = (size_t)Hv * V * K;
  int32_t off[MAX_SEQS + 1], zero_slot = 0;
  gdn_ref_chunk_offsets(&p->s, off);
  double *pool1 = gdn_dalloc(per_slot), *o1 = gdn_dalloc((size_t)p->T * Hv * V + 1), worst = 0.0;
  for (int n = 0; n < p->s.num_seqs; ++n) {
    for (int c = off[n]; c < off[n + 1]; ++c) {
      int t0 = p->cu[n], L = (c - off[n]) * GDN_CHUNK, cu1[2] = {0, L};
      gdn_ref_shape s1 = {1, cu1, Hk, Hv, K, V};
      if (p->slots[n] >= 0)
        memcpy(pool1, p->pool + (size_t)p->slots[n] * per_slot, per_slot * sizeof(double));
      else
        memset(pool1, 0, per_slot * sizeof(double));
      gdn_ref_recurrent(&s1, p->q + (size_t)t0 * Hk * K, p->k + (size_t)t0 * Hk * K, p->v + (size_t)t0 * Hv * V,
                        p->g ? p->g + (size_t)t0 * Hv : NULL, p->gk ? p->gk + (size_t)t0 * Hv * K : NULL,
                        p->beta + (size_t)t0 * Hv, p->scale, pool1, &zero_slot, o1);
      double num = 0, den = 0;
      for (int hv = 0; hv < Hv; ++hv)
        for (int kk = 0; kk < K; ++kk)
          for (int vv = 0; vv < V; ++vv) {
            double got = h[(((size_t)c * Hv + hv) * K + kk) * V + vv], want = pool1[((size_t)hv * V + vv) * K + kk];
            num += (got - want) * (got - want);
            den += want * want;
          }
      double e = den > 0 ? sqrt(num / den) : sqrt(num);
      worst = e > worst || isnan(e) ? e : worst;
    }
  }
  free(pool1);
  free(o1);
  return worst;
}

/* The stages composed by hand, checked one by one and against the recurrence. */
static void test_stages(const config *c, gdn_rng *r) {
  char desc[160];
  describe(c, desc, sizeof desc);
  problem p;
  problem_make(&p, c, r);
  const int K = c->K, V = c->V, Hk = c->Hk, Hv = c->Hv;
  const size_t TH = (size_t)p.T * Hv;

  double *g_cum = p.g ? gdn_dalloc(TH) : NULL, *gk_cum = p.gk ? gdn_dalloc(TH * K) : NULL;
  if (p.g) gdn_ref_chunk_cumsum(&p.s, 1, p.g, g_cum);
  if (p.gk) gdn_ref_chunk_cumsum(&p.s, K, p.gk, gk_cum);
  if (p.g) check_cumsum(&p, p.g, g_cum, 1, "g", desc);
  if (p.gk) check_cumsum(&p, p.gk, gk_cum, K, "gk", desc);

  double *A_inv = gdn_dalloc(TH * GDN_CHUNK), *w = gdn_dalloc(TH * K), *u = gdn_dalloc(TH * V);
  gdn_ref_kkt_solve(&p.s, p.k, p.beta, g_cum, gk_cum, A_inv);
  gdn_ref_wy(&p.s, p.k, p.v, p.beta, A_inv, g_cum, gk_cum, w, u);
  check_kkt_wy(&p, g_cum, gk_cum, A_inv, w, u, desc);
  check_gate_qk(&p, g_cum, gk_cum, desc);

  /* State scan: the scan applies the scalar gate; a per-key gate must already be in the key. */
  double *kg = NULL;
  if (p.gk) {
    kg = gdn_dalloc(TH * K);
    gdn_ref_gate_qk(&p.s, p.q, p.k, NULL, gk_cum, NULL, kg);
  }
  const int Hkk = p.gk ? Hv : Hk;
  const double *kk = p.gk ? kg : p.k;
  double *h = gdn_dalloc((size_t)p.NT * Hv * K * V), *v_new = gdn_dalloc(TH * V), *pool_st = pool_copy(&p);
  gdn_ref_chunk_delta_h(&p.s, Hkk, kk, w, u, g_cum, gk_cum, pool_st, p.slots, h, v_new);
  double *o_rec = gdn_dalloc(p.o_n), *pool_rec = pool_copy(&p);
  run_recurrent(&p, o_rec, pool_rec);
  double e_state = gdn_rel_l2(pool_st, pool_rec, p.pool_n), e_h = check_h_prefix(&p, h);
  CHECK(e_state <= TOL, "chunk_delta_h final state rel err %.3g [%s]", e_state, desc);
  CHECK(e_h <= TOL, "chunk_delta_h h[c] != recurrence state at the chunk start: rel err %.3g [%s]", e_h, desc);
  check_untouched_slots(&p, pool_st, "chunk_delta_h", desc);

  /* Without the h / v_new outputs: the same final state. */
  double *pool_st2 = pool_copy(&p);
  gdn_ref_chunk_delta_h(&p.s, Hkk, kk, w, u, g_cum, gk_cum, pool_st2, p.slots, NULL, NULL);
  CHECK(memcmp(pool_st2, pool_st, p.pool_n * sizeof(double)) == 0, "chunk_delta_h with h = v_new = NULL differs [%s]", desc);

  double e_out = -1.0;
  if (!p.gk) { /* chunk_o takes the scalar gate only; v_new is the unscaled u - w S */
    double *o = gdn_dalloc(p.o_n);
    gdn_ref_chunk_o(&p.s, p.q, p.k, v_new, h, g_cum, p.scale, o);
    e_out = gdn_rel_l2(o, o_rec, p.o_n);
    CHECK(e_out <= TOL, "chunk_o output rel err %.3g [%s]", e_out, desc);
    free(o);
  }
  printf("  stages %-60s state %.1e  h %.1e  o %.1e%s\n", desc, e_state, e_h, e_out, p.gk ? " (o: n/a with gk)" : "");

  free(g_cum); free(gk_cum); free(A_inv); free(w); free(u); free(kg); free(h); free(v_new);
  free(pool_st); free(pool_st2); free(o_rec); free(pool_rec);
  problem_free(&p);
}

int main(void) {
  gdn_rng r;
  gdn_rng_seed(&r, gdn_test_seed("test_ref_chunked"));
  const int G = GATE_G, GK = GATE_GK, B = GATE_G | GATE_GK;
  /* K, V, Hk, Hv, gates, l2norm, scale, num_seqs, lens */
  const config whole[] = {
      {64, 64, 2, 2, G, 1, 0, 6, {1, 0, 63, 64, 65, 130}},
      {64, 128, 1, 2, GK, 0, 0, 4, {65, 0, 130, 7}},
      {128, 64, 2, 4, B, 1, 0.3, 3, {130, 1, 64}},
      {128, 128, 1, 1, 0, 1, 0, 3, {63, 0, 150}},
      {256, 128, 1, 2, G, 0, 0, 2, {65, 70}},
      {64, 256, 2, 4, B, 0, 0, 2, {129, 3}},
      {256, 256, 1, 1, B, 1, 0, 2, {66, 1}},
      {128, 256, 1, 2, GK, 1, 0.1, 3, {64, 0, 65}},
      {64, 64, 1, 2, 0, 0, 0, 2, {65, 3}},
      {64, 64, 1, 1, 0, 0, 0, 1, {0}},
  };
  for (size_t i = 0; i < sizeof whole / sizeof whole[0]; ++i) test_whole(&whole[i], &r);

  const config broken[] = {
      {64, 64, 1, 2, G, 1, 0, 3, {130, 0, 65}},
      {64, 64, 2, 2, B, 0, 0, 2, {70, 129}},
      {64, 64, 1, 1, GK, 1, 0, 2, {100, 64}},
  };
  for (size_t i = 0; i < sizeof broken / sizeof broken[0]; ++i) test_perturbed(&broken[i], &r);

  const config stages[] = {
      {64, 128, 1, 2, G, 1, 0, 4, {130, 0, 65, 1}},
      {128, 64, 2, 2, GK, 1, 0, 3, {64, 70, 2}},
      {64, 64, 1, 2, B, 0, 0, 3, {129, 63, 0}},
      {256, 64, 1, 1, 0, 1, 0, 2, {65, 20}},
  };
  for (size_t i = 0; i < sizeof stages / sizeof stages[0]; ++i) test_stages(&stages[i], &r);
  return gdn_test_finish("test_ref_chunked");
}
