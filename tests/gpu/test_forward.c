/* The per-call forward entry (gdn_forward) against the float64 recurrence
 * (gdn_ref_recurrent_io), scenario by scenario:
 *  - separate initial / final state tensors (row i of sequence i) in FLA's [N, Hv, K, V]
 *    layout (strides), precomputed log-space gates and beta, int64 cu_seqlens;
 *  - a pool updated in place through slots, and copy-on-write slots (slots_in may repeat a
 *    cached prefix row, slots_out distinct): every pool row not written bit-identical;
 *  - bf16 and fp16 pools (the state rounded once per write-back);
 *  - prefix-cache checkpoints every 128 / 192 tokens, including sequences shorter than that
 *    and lengths not a multiple of it; rows not named stay bit-identical;
 *  - the call captured in a CUDA graph (global capture mode: nothing unsafe may be called),
 *    then replayed over new inputs in the same buffers and new batches of the same shape:
 *    each replay == an eager call on the same data == the reference;
 *  - context parallelism (few value heads): one long sequence (65536 tokens with K = V = 64,
 *    8192 with K = V = 128) and mixed batches, against the same plan with GDN_CP=0 and the
 *    reference;
 *  - gates that overflow fp32 (A_log = 88.5) and precomputed gates of -inf: o and states
 *    finite and equal to the float64 math (a full decay is a reset);
 *  - an invalid batch (checked on the device): nothing written, the error reported, the
 *    next batch right.
 * Random batches mix 0- and 1-token sequences and lengths around multiples of 64.
 *
 * Tolerance: rel L2 <= 2e-2 per (sequence, value head) for o and per (row, value head) for
 * states, as in test_prefill_graph (16-bit operands with fp32 accumulation, w / u / tu and o
 * rounded to 16 bits once: a few 2^-9 roundings). A bf16 pool adds one 2^-9 rounding of the
 * state (fp16: 2^-12). CP == non-CP is held to the same bound: segments reorder fp32 sums
 * and round the transition products' operands like the state's.
 * GDN_TEST_SMALL=1 shrinks the long cases (for compute-sanitizer runs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/forward.h"
#include "gdn/reference.h"
#include "gpu_util.h"
#include "test_batch.h"

#define BOUND 2e-2

static uint64_t g_seed;
static int g_small;

typedef struct shape_case {
  int Hk, Hv, K, V;
  gdn_dtype dt;
  int use_g, l2norm;
  gdn_gate_mode gate;
} shape_case;

/* Inputs of one forward: host doubles (as the device holds them) and device copies. */
typedef struct fwd_data {
  shape_case c;
  int T;                 /* rows of the token tensors */
  size_t nqk, nv, nh;
  double *q, *k, *v, *a, *b, *A_log, *dt_bias, *g, *beta;
  void *dq, *dk, *dv, *da, *db, *dA_log, *ddt, *dg, *dbeta, *d_o;
  gdn_dtype beta_dt;
} fwd_data;

static void data_alloc(fwd_data *d, const shape_case *c, int T) {
  memset(d, 0, sizeof *d);
  d->c = *c;
  d->T = T;
  d->nqk = (size_t)T * c->Hk * c->K;
  d->nv = (size_t)T * c->Hv * c->V;
  d->nh = (size_t)T * c->Hv;
  d->q = gdn_dalloc(d->nqk); d->k = gdn_dalloc(d->nqk); d->v = gdn_dalloc(d->nv);
  d->a = gdn_dalloc(d->nh); d->b = gdn_dalloc(d->nh); d->g = gdn_dalloc(d->nh); d->beta = gdn_dalloc(d->nh);
  d->A_log = gdn_dalloc((size_t)c->Hv); d->dt_bias = gdn_dalloc((size_t)c->Hv);
  const size_t es = gdn_dtype_size(c->dt);
  d->dq = gdn_dmalloc(d->nqk * es); d->dk = gdn_dmalloc(d->nqk * es); d->dv = gdn_dmalloc(d->nv * es);
  d->d_o = gdn_dmalloc(d->nv * es);
  d->da = gdn_dmalloc(d->nh * 2); d->db = gdn_dmalloc(d->nh * 2);
  d->dg = gdn_dmalloc(d->nh * 4); d->dbeta = gdn_dmalloc(d->nh * 4); /* beta as fp32 or 16-bit */
  d->dA_log = gdn_dmalloc((size_t)c->Hv * 4); d->ddt = gdn_dmalloc((size_t)c->Hv * 4);
  d->beta_dt = GDN_DTYPE_BF16;
}

static void data_free(fwd_data *d) {
  double *h[] = {d->q, d->k, d->v, d->a, d->b, d->g, d->beta, d->A_log, d->dt_bias};
  for (size_t i = 0; i < sizeof h / sizeof h[0]; ++i) free(h[i]);
  void *dv[] = {d->dq, d->dk, d->dv, d->d_o, d->da, d->db, d->dg, d->dbeta, d->dA_log, d->ddt};
  for (size_t i = 0; i < sizeof dv / sizeof dv[0]; ++i) cudaFree(dv[i]);
}

/* Fresh random inputs rounded to their device dtypes. A_log_value != 0 sets every A_log. */
static void data_fill(fwd_data *d, gdn_rng *r, double A_log_value) {
  const shape_case *c = &d->c;
  gdn_fill_normal(r, d->q, d->nqk, 1.0);
  gdn_fill_normal(r, d->k, d->nqk, 1.0);
  if (!c->l2norm) { /* keep ||k|| < 1 without normalization (stable delta rule) */
    for (size_t row = 0; row < d->nqk / (size_t)c->K; ++row) {
      double nk = 0;
      for (int i = 0; i < c->K; ++i) nk += d->k[row * c->K + i] * d->k[row * c->K + i];
      for (int i = 0; i < c->K; ++i) {
        d->k[row * c->K + i] *= 0.8 / sqrt(nk);
        d->q[row * c->K + i] /= sqrt((double)c->K);
      }
    }
  }
  gdn_fill_normal(r, d->v, d->nv, 1.0);
  gdn_fill_normal(r, d->a, d->nh, 1.0);
  gdn_fill_normal(r, d->b, d->nh, 1.0);
  for (int h = 0; h < c->Hv; ++h) {
    d->A_log[h] = A_log_value != 0 ? A_log_value : log(1.0 + 15.0 * gdn_rng_uniform(r));
    d->dt_bias[h] = 0.5 * gdn_rng_normal(r);
  }
  gdn_round_to(c->dt, d->q, d->nqk);
  gdn_round_to(c->dt, d->k, d->nqk);
  gdn_round_to(c->dt, d->v, d->nv);
  gdn_round_to(GDN_DTYPE_BF16, d->a, d->nh);
  gdn_round_to(GDN_DTYPE_BF16, d->b, d->nh);
  gdn_round_to(GDN_DTYPE_F32, d->A_log, (size_t)c->Hv);
  gdn_round_to(GDN_DTYPE_F32, d->dt_bias, (size_t)c->Hv);
  /* the precomputed form of the same gates, in the dtypes a caller would pass */
  gdn_ref_gating(d->T, c->Hv, d->a, d->b, d->A_log, d->dt_bias, d->g, d->beta);
  gdn_round_to(GDN_DTYPE_F32, d->g, d->nh);
  gdn_round_to(d->beta_dt, d->beta, d->nh);
  gdn_upload_into(c->dt, d->dq, d->q, d->nqk);
  gdn_upload_into(c->dt, d->dk, d->k, d->nqk);
  gdn_upload_into(c->dt, d->dv, d->v, d->nv);
  gdn_upload_into(GDN_DTYPE_BF16, d->da, d->a, d->nh);
  gdn_upload_into(GDN_DTYPE_BF16, d->db, d->b, d->nh);
  gdn_upload_into(GDN_DTYPE_F32, d->dA_log, d->A_log, (size_t)c->Hv);
  gdn_upload_into(GDN_DTYPE_F32, d->ddt, d->dt_bias, (size_t)c->Hv);
  gdn_upload_into(GDN_DTYPE_F32, d->dg, d->g, d->nh);
  gdn_upload_into(d->beta_dt, d->dbeta, d->beta, d->nh);
}

static gdn_prefill_shape shape_of(const shape_case *c) {
  gdn_prefill_shape s = {c->Hk, c->Hv, c->K, c->V, c->dt, c->use_g, 0, c->l2norm, 0.f, c->gate};
  return s;
}

static void args_base(const fwd_data *d, gdn_forward_args *a) {
  const shape_case *c = &d->c;
  memset(a, 0, sizeof *a);
  a->q = gdn_tensor_3d(d->dq, c->dt, d->T, c->Hk, c->K);
  a->k = gdn_tensor_3d(d->dk, c->dt, d->T, c->Hk, c->K);
  a->v = gdn_tensor_3d(d->dv, c->dt, d->T, c->Hv, c->V);
  a->o = gdn_tensor_3d(d->d_o, c->dt, d->T, c->Hv, c->V);
  if (c->gate == GDN_GATE_PRECOMPUTED) {
    if (c->use_g) a->g = gdn_tensor_2d(d->dg, GDN_DTYPE_F32, d->T, c->Hv);
    a->beta = gdn_tensor_2d(d->dbeta, d->beta_dt, d->T, c->Hv);
  } else {
    if (c->use_g) {
      a->a = gdn_tensor_2d(d->da, GDN_DTYPE_BF16, d->T, c->Hv);
      a->A_log = gdn_tensor_1d(d->dA_log, GDN_DTYPE_F32, c->Hv);
      a->dt_bias = gdn_tensor_1d(d->ddt, GDN_DTYPE_F32, c->Hv);
    }
    a->b = gdn_tensor_2d(d->db, GDN_DTYPE_BF16, d->T, c->Hv);
  }
}

/* The float64 math of the call: gates from the same rounded inputs, l2norm, recurrence. */
static void ref_forward(const fwd_data *d, const gdn_test_hbatch *b, double *state, const gdn_ref_state_io *io,
                        double *o) {
  const shape_case *c = &d->c;
  gdn_ref_shape s = {b->n, b->cu, c->Hk, c->Hv, c->K, c->V};
  double *q = gdn_dalloc(d->nqk), *k = gdn_dalloc(d->nqk);
  memcpy(q, d->q, d->nqk * sizeof(double));
  memcpy(k, d->k, d->nqk * sizeof(double));
  if (c->l2norm) {
    gdn_ref_l2norm(d->T, c->Hk, c->K, q);
    gdn_ref_l2norm(d->T, c->Hk, c->K, k);
  }
  double *g = NULL, *beta = gdn_dalloc(d->nh);
  if (c->gate == GDN_GATE_PRECOMPUTED) {
    if (c->use_g) g = d->g;
    memcpy(beta, d->beta, d->nh * sizeof(double));
  } else {
    if (c->use_g) g = gdn_dalloc(d->nh);
    gdn_ref_gating(d->T, c->Hv, d->a, d->b, d->A_log, d->dt_bias, g, beta);
  }
  gdn_ref_recurrent_io(&s, q, k, d->v, g, NULL, beta, 1.0 / sqrt((double)c->K), state, io, o);
  if (g != d->g) free(g);
  free(beta);
  free(q);
  free(k);
}

/* o rows of the batch vs the reference per (sequence, head); rows [cu[N], T) exactly 0. */
static void check_o(const char *tag, const fwd_data *d, const gdn_test_hbatch *b, const double *o_ref) {
  const shape_case *c = &d->c;
  const size_t row = (size_t)c->Hv * c->V;
  double *got = gdn_dalloc(d->nv);
  gdn_download(c->dt, d->d_o, d->nv, got);
  const int Tb = b->cu[b->n];
  double *gs = gdn_dalloc((size_t)d->T * c->V + 1), *rs = gdn_dalloc((size_t)d->T * c->V + 1);
  for (int n = 0; n < b->n; ++n) {
    const int t0 = b->cu[n], len = b->cu[n + 1] - t0;
    for (int h = 0; h < c->Hv && len > 0; ++h) {
      for (int t = 0; t < len; ++t) {
        memcpy(gs + (size_t)t * c->V, got + (size_t)(t0 + t) * row + (size_t)h * c->V, sizeof(double) * c->V);
        memcpy(rs + (size_t)t * c->V, o_ref + (size_t)(t0 + t) * row + (size_t)h * c->V, sizeof(double) * c->V);
      }
      const double e = gdn_rel_l2(gs, rs, (size_t)len * c->V);
      CHECK(e <= BOUND, "[%s] o of sequence %d (len %d), head %d: rel L2 %.3e > %.0e (seed %llu)", tag, n, len, h, e,
            BOUND, (unsigned long long)g_seed);
    }
  }
  size_t tail = 0;
  for (size_t i = (size_t)Tb * row; i < d->nv; ++i) tail += got[i] != 0.0;
  CHECK(tail == 0, "[%s] %zu elements of o rows [%d, %d) past the batch are not 0", tag, tail, Tb, d->T);
  free(gs);
  free(rs);
  free(got);
}

/* States [rows, Hv, V, K] of dtype dt at device `dev` (element strides st), rows in `want`
 * vs the reference (rel L2 per row and head); every other row bit-identical to `before`. */
typedef struct state_buf {
  gdn_dtype dt;
  int rows, fla; /* fla: stored [rows, Hv, K, V] */
  size_t elems;
  void *dev;
} state_buf;

static state_buf state_new(gdn_dtype dt, int rows, const shape_case *c, int fla) {
  state_buf s = {dt, rows, fla, (size_t)rows * c->Hv * c->V * c->K, NULL};
  s.dev = gdn_dmalloc(s.elems * gdn_dtype_size(dt));
  return s;
}
static gdn_tensor state_tensor(const state_buf *s, const shape_case *c) {
  gdn_tensor t = gdn_tensor_4d(s->dev, s->dt, s->rows, c->Hv, c->V, c->K);
  if (s->fla) { /* [rows, Hv, K, V] storage: the [.., V, K] view with swapped strides */
    t.strides[2] = 1;
    t.strides[3] = c->V;
  }
  return t;
}
/* Host [rows, Hv, V, K] doubles <-> the device layout. */
static void state_put(const state_buf *s, const shape_case *c, const double *x) {
  double *tmp = gdn_dalloc(s->elems);
  const size_t VK = (size_t)c->V * c->K;
  for (size_t rh = 0; rh < (size_t)s->rows * c->Hv; ++rh)
    for (int v = 0; v < c->V; ++v)
      for (int k = 0; k < c->K; ++k)
        tmp[rh * VK + (s->fla ? (size_t)k * c->V + v : (size_t)v * c->K + k)] = x[rh * VK + (size_t)v * c->K + k];
  gdn_upload_into(s->dt, s->dev, tmp, s->elems);
  free(tmp);
}
static void state_get(const state_buf *s, const shape_case *c, double *x) {
  double *tmp = gdn_dalloc(s->elems);
  gdn_download(s->dt, s->dev, s->elems, tmp);
  const size_t VK = (size_t)c->V * c->K;
  for (size_t rh = 0; rh < (size_t)s->rows * c->Hv; ++rh)
    for (int v = 0; v < c->V; ++v)
      for (int k = 0; k < c->K; ++k)
        x[rh * VK + (size_t)v * c->K + k] = tmp[rh * VK + (s->fla ? (size_t)k * c->V + v : (size_t)v * c->K + k)];
  free(tmp);
}

static void check_states(const char *tag, const char *what, const state_buf *s, const shape_case *c,
                         const char *written, const double *ref, const void *raw_before) {
  const size_t VK = (size_t)c->V * c->K, row_bytes = (size_t)c->Hv * VK * gdn_dtype_size(s->dt);
  double *got = gdn_dalloc(s->elems);
  state_get(s, c, got);
  unsigned char *raw = (unsigned char *)gdn_download_raw(s->dev, s->elems * gdn_dtype_size(s->dt));
  for (int r = 0; r < s->rows; ++r) {
    if (written[r]) {
      for (int h = 0; h < c->Hv; ++h) {
        const size_t off = ((size_t)r * c->Hv + h) * VK;
        const double e = gdn_rel_l2(got + off, ref + off, VK);
        CHECK(e <= BOUND, "[%s] %s row %d head %d: rel L2 %.3e > %.0e (seed %llu)", tag, what, r, h, e, BOUND,
              (unsigned long long)g_seed);
      }
    } else if (raw_before) {
      CHECK(memcmp(raw + (size_t)r * row_bytes, (const unsigned char *)raw_before + (size_t)r * row_bytes, row_bytes) == 0,
            "[%s] %s row %d is not written by the batch but changed", tag, what, r);
    }
  }
  free(raw);
  free(got);
}

static void random_batch(gdn_test_hbatch *b, gdn_rng *r, int max_tokens, int max_seqs) {
  static const int special[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 191, 192, 255, 300};
  gdn_test_hbatch_random_lens(b, r, max_tokens, max_seqs, special, (int)(sizeof special / sizeof special[0]), 0.5);
}

typedef struct plan_ws {
  gdn_forward_plan *plan;
  void *ws;
  size_t bytes;
} plan_ws;

static plan_ws plan_make(const shape_case *c, int max_tokens, int max_seqs) {
  plan_ws p = {NULL, NULL, 0};
  gdn_prefill_shape s = shape_of(c);
  gdn_prefill_bucket cap = {max_tokens, max_seqs};
  CHECK_OK(gdn_forward_plan_create(&p.plan, &s, cap, 0));
  if (p.plan == NULL) exit(1);
  p.bytes = gdn_forward_workspace_bytes(p.plan);
  p.ws = gdn_dmalloc(p.bytes);
  return p;
}
static void plan_free(plan_ws *p) {
  gdn_forward_plan_destroy(p->plan);
  cudaFree(p->ws);
}

static int32_t *dev_i32(const int32_t *x, int n) {
  int32_t *d = (int32_t *)gdn_dmalloc((size_t)(n > 0 ? n : 1) * 4);
  if (n > 0) CUDA_OK(cudaMemcpy(d, x, (size_t)n * 4, cudaMemcpyHostToDevice));
  return d;
}
static void *dev_cu(const gdn_test_hbatch *b, int i64) {
  if (!i64) return dev_i32(b->cu, b->n + 1);
  int64_t tmp[GDN_TEST_MAX_SEQS + 1];
  for (int i = 0; i <= b->n; ++i) tmp[i] = b->cu[i];
  void *d = gdn_dmalloc((size_t)(b->n + 1) * 8);
  CUDA_OK(cudaMemcpy(d, tmp, (size_t)(b->n + 1) * 8, cudaMemcpyHostToDevice));
  return d;
}

static gdn_status call(const plan_ws *p, const gdn_forward_args *a, cudaStream_t s) {
  gdn_status st = gdn_forward(p->plan, a, p->ws, p->bytes, s);
  CUDA_OK(cudaStreamSynchronize(s));
  return st;
}

/* ---- separate initial / final states, FLA layout, precomputed gates, int64 offsets */
static void scenario_states(gdn_rng *r, cudaStream_t st) {
  const shape_case c = {2, 4, 128, 128, GDN_DTYPE_BF16, 1, 1, GDN_GATE_PRECOMPUTED};
  const int T = 2048, S = 8;
  plan_ws p = plan_make(&c, T, S);
  fwd_data d;
  data_alloc(&d, &c, T);
  for (int it = 0; it < 4; ++it) {
    gdn_test_hbatch b;
    random_batch(&b, r, T - 37, S);
    data_fill(&d, r, 0);
    const int fla = it % 2 == 0, i64 = it >= 2;
    state_buf sin = state_new(GDN_DTYPE_F32, b.n, &c, fla), sout = state_new(GDN_DTYPE_F32, b.n, &c, fla);
    const size_t ne = sin.elems;
    double *init = gdn_dalloc(ne + 1), *ref_out = gdn_dalloc(ne + 1), *o_ref = gdn_dalloc(d.nv);
    gdn_fill_normal(r, init, ne, 0.3);
    gdn_round_to(GDN_DTYPE_F32, init, ne);
    state_put(&sin, &c, init);
    gdn_poison(sout.dev, ne * 4);
    gdn_poison(d.d_o, d.nv * 2);
    void *cu = dev_cu(&b, i64);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(cu, i64 ? GDN_DTYPE_I64 : GDN_DTYPE_I32, b.n + 1);
    a.state_in = state_tensor(&sin, &c);
    a.state_out = state_tensor(&sout, &c);
    CHECK_OK(call(&p, &a, st));
    CHECK_OK(gdn_forward_check_error(p.plan));
    int32_t ident[GDN_TEST_MAX_SEQS];
    for (int i = 0; i < b.n; ++i) ident[i] = i;
    gdn_ref_state_io io = {ident, ident, ref_out, 0, NULL, NULL};
    double *work = gdn_dalloc(ne + 1);
    memcpy(work, init, ne * sizeof(double));
    ref_forward(&d, &b, work, &io, o_ref);
    char tag[96];
    snprintf(tag, sizeof tag, "states %s%s N=%d T=%d", fla ? "FLA [K,V]" : "[V,K]", i64 ? " int64" : "", b.n, b.cu[b.n]);
    check_o(tag, &d, &b, o_ref);
    char all[GDN_TEST_MAX_SEQS];
    memset(all, 1, sizeof all);
    check_states(tag, "state_out", &sout, &c, all, ref_out, NULL);
    free(work); free(init); free(ref_out); free(o_ref);
    cudaFree(cu); cudaFree(sin.dev); cudaFree(sout.dev);
  }
  data_free(&d);
  plan_free(&p);
}

/* ---- pool in place and copy-on-write slots, raw gates, 16-bit pools */
static void scenario_pool(gdn_rng *r, cudaStream_t st, gdn_dtype pool_dt) {
  const shape_case c = {1, 4, 128, 64, GDN_DTYPE_BF16, 1, 1, GDN_GATE_RAW};
  const int T = 1536, S = 6, ROWS = 16;
  plan_ws p = plan_make(&c, T, S);
  fwd_data d;
  data_alloc(&d, &c, T);
  state_buf pool = state_new(pool_dt, ROWS, &c, 0);
  const size_t ne = pool.elems;
  double *ref_pool = gdn_dalloc(ne), *o_ref = gdn_dalloc(d.nv);
  gdn_fill_normal(r, ref_pool, ne, 0.3);
  gdn_round_to(pool_dt, ref_pool, ne);
  state_put(&pool, &c, ref_pool);
  for (int it = 0; it < 6; ++it) {
    const int cow = it % 2 == 1;
    gdn_test_hbatch b;
    random_batch(&b, r, T, S);
    data_fill(&d, r, 0);
    /* slots: distinct writes; with copy-on-write, reads of a shared prefix row that nobody writes */
    int perm[ROWS];
    for (int i = 0; i < ROWS; ++i) perm[i] = i;
    gdn_test_shuffle(r, perm, ROWS);
    int32_t sin[GDN_TEST_MAX_SEQS], sout[GDN_TEST_MAX_SEQS];
    for (int i = 0; i < b.n; ++i) {
      sout[i] = gdn_test_rand_int(r, 5) == 0 ? -1 : perm[i];
      sin[i] = cow ? (gdn_test_rand_int(r, 3) == 0 ? -1 : perm[ROWS - 1 - gdn_test_rand_int(r, 2)]) : sout[i];
    }
    void *before = gdn_download_raw(pool.dev, ne * gdn_dtype_size(pool_dt));
    int32_t *dsin = dev_i32(sin, b.n), *dsout = dev_i32(sout, b.n);
    void *cu = dev_cu(&b, 0);
    gdn_poison(d.d_o, d.nv * 2);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(cu, GDN_DTYPE_I32, b.n + 1);
    a.state_in = a.state_out = state_tensor(&pool, &c);
    a.slots_in = dsin;
    a.slots_out = dsout;
    CHECK_OK(call(&p, &a, st));
    CHECK_OK(gdn_forward_check_error(p.plan));
    gdn_ref_state_io io = {sin, sout, NULL, 0, NULL, NULL};
    ref_forward(&d, &b, ref_pool, &io, o_ref);
    gdn_round_to(pool_dt, ref_pool, ne);
    char tag[96], written[ROWS];
    snprintf(tag, sizeof tag, "pool %s %s N=%d T=%d", gdn_dtype_name(pool_dt), cow ? "copy-on-write" : "in place", b.n,
             b.cu[b.n]);
    memset(written, 0, sizeof written);
    for (int i = 0; i < b.n; ++i)
      if (sout[i] >= 0) written[sout[i]] = 1;
    check_o(tag, &d, &b, o_ref);
    check_states(tag, "pool", &pool, &c, written, ref_pool, before);
    state_get(&pool, &c, ref_pool); /* continue from the device's pool: errors do not compound */
    free(before);
    cudaFree(dsin); cudaFree(dsout); cudaFree(cu);
  }
  free(ref_pool); free(o_ref);
  cudaFree(pool.dev);
  data_free(&d);
  plan_free(&p);
}

/* ---- checkpoints */
static void scenario_checkpoints(gdn_rng *r, cudaStream_t st) {
  const shape_case c = {2, 4, 64, 128, GDN_DTYPE_BF16, 1, 1, GDN_GATE_RAW};
  const int T = 2048, S = 8, CK_ROWS = 48;
  plan_ws p = plan_make(&c, T, S);
  fwd_data d;
  data_alloc(&d, &c, T);
  for (int it = 0; it < 3; ++it) {
    const int every = it == 1 ? 192 : 128;
    gdn_test_hbatch b;
    random_batch(&b, r, T, S);
    data_fill(&d, r, 0);
    int32_t off[GDN_TEST_MAX_SEQS];
    int next = 1; /* row 0 never named: it must stay as it was */
    char written[CK_ROWS];
    memset(written, 0, sizeof written);
    for (int i = 0; i < b.n; ++i) {
      const int cnt = (b.cu[i + 1] - b.cu[i]) / every;
      off[i] = (gdn_test_rand_int(r, 4) == 0 || next + cnt > CK_ROWS) ? -1 : next;
      if (off[i] >= 0) {
        for (int j = 0; j < cnt; ++j) written[next + j] = 1;
        next += cnt + gdn_test_rand_int(r, 2);
      }
    }
    state_buf ck = state_new(GDN_DTYPE_F32, CK_ROWS, &c, 0);
    gdn_poison(ck.dev, ck.elems * 4);
    void *before = gdn_download_raw(ck.dev, ck.elems * 4);
    double *ref_ck = gdn_dalloc(ck.elems), *o_ref = gdn_dalloc(d.nv);
    int32_t *doff = dev_i32(off, b.n);
    void *cu = dev_cu(&b, 0);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(cu, GDN_DTYPE_I32, b.n + 1);
    a.checkpoints = state_tensor(&ck, &c);
    a.checkpoint_offsets = doff;
    a.checkpoint_every = every;
    CHECK_OK(call(&p, &a, st));
    CHECK_OK(gdn_forward_check_error(p.plan));
    gdn_ref_state_io io = {NULL, NULL, NULL, every, off, ref_ck};
    ref_forward(&d, &b, NULL, &io, o_ref);
    char tag[96];
    snprintf(tag, sizeof tag, "checkpoints every %d N=%d T=%d", every, b.n, b.cu[b.n]);
    check_o(tag, &d, &b, o_ref);
    check_states(tag, "checkpoint", &ck, &c, written, ref_ck, before);
    free(before); free(ref_ck); free(o_ref);
    cudaFree(doff); cudaFree(cu); cudaFree(ck.dev);
  }
  data_free(&d);
  plan_free(&p);
}

/* ---- captured, then replayed over new data and new batches of the same shape */
static void scenario_capture(gdn_rng *r, cudaStream_t st) {
  const shape_case c = {2, 2, 128, 128, GDN_DTYPE_F16, 1, 1, GDN_GATE_PRECOMPUTED};
  enum { N = 5 };
  const int T = 1024;
  plan_ws p = plan_make(&c, 4096, 16);
  fwd_data d;
  data_alloc(&d, &c, T);
  state_buf sin = state_new(GDN_DTYPE_F32, N, &c, 0), sout = state_new(GDN_DTYPE_F32, N, &c, 0);
  int32_t *cu = (int32_t *)gdn_dmalloc((N + 1) * 4);
  gdn_forward_args a;
  args_base(&d, &a);
  a.cu_seqlens = gdn_tensor_1d(cu, GDN_DTYPE_I32, N + 1);
  a.state_in = state_tensor(&sin, &c);
  a.state_out = state_tensor(&sout, &c);
  gdn_test_hbatch b;
  int lens[N] = {300, 0, 1, 400, 100};
  gdn_test_hbatch_make(&b, lens, NULL, N);
  CUDA_OK(cudaMemcpy(cu, b.cu, (N + 1) * 4, cudaMemcpyHostToDevice));
  data_fill(&d, r, 0);
  {
    double *zero = gdn_dalloc(sin.elems);
    state_put(&sin, &c, zero); /* defined initial states for the warm-up call */
    free(zero);
  }
  CHECK_OK(call(&p, &a, st)); /* warm-up outside the capture */
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  gdn_status cs = gdn_forward(p.plan, &a, p.ws, p.bytes, st);
  CUDA_OK(cudaStreamEndCapture(st, &graph));
  CHECK_OK(cs);
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  const size_t ne = sin.elems;
  double *init = gdn_dalloc(ne), *o_ref = gdn_dalloc(d.nv), *ref_out = gdn_dalloc(ne);
  double *o_graph = gdn_dalloc(d.nv), *o_eager = gdn_dalloc(d.nv);
  for (int rep = 0; rep < 4; ++rep) {
    /* a new batch of the same shape (N sequences, T rows), new inputs in the same buffers */
    for (int i = 0; i < N; ++i) lens[i] = gdn_test_rand_int(r, T / N);
    gdn_test_hbatch_make(&b, lens, NULL, N);
    CUDA_OK(cudaMemcpy(cu, b.cu, (N + 1) * 4, cudaMemcpyHostToDevice));
    data_fill(&d, r, 0);
    gdn_fill_normal(r, init, ne, 0.3);
    gdn_round_to(GDN_DTYPE_F32, init, ne);
    state_put(&sin, &c, init);
    gdn_poison(d.d_o, d.nv * 2);
    CUDA_OK(cudaGraphLaunch(exec, st));
    CUDA_OK(cudaStreamSynchronize(st));
    CHECK_OK(gdn_forward_check_error(p.plan));
    gdn_download(c.dt, d.d_o, d.nv, o_graph);
    double *s_graph = gdn_dalloc(ne);
    state_get(&sout, &c, s_graph);
    gdn_poison(d.d_o, d.nv * 2);
    CHECK_OK(call(&p, &a, st));
    gdn_download(c.dt, d.d_o, d.nv, o_eager);
    CHECK(memcmp(o_graph, o_eager, d.nv * sizeof(double)) == 0, "[capture replay %d] o differs from the eager call", rep);
    int32_t ident[N] = {0, 1, 2, 3, 4};
    gdn_ref_state_io io = {ident, ident, ref_out, 0, NULL, NULL};
    double *work = gdn_dalloc(ne);
    memcpy(work, init, ne * sizeof(double));
    ref_forward(&d, &b, work, &io, o_ref);
    char tag[64];
    snprintf(tag, sizeof tag, "capture replay %d T=%d", rep, b.cu[N]);
    check_o(tag, &d, &b, o_ref);
    char all[N];
    memset(all, 1, sizeof all);
    check_states(tag, "state_out", &sout, &c, all, ref_out, NULL);
    free(work);
    free(s_graph);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  free(init); free(o_ref); free(ref_out); free(o_graph); free(o_eager);
  cudaFree(cu); cudaFree(sin.dev); cudaFree(sout.dev);
  data_free(&d);
  plan_free(&p);
}

/* ---- context parallelism: few heads, long sequences; vs GDN_CP=0 and the reference */
static void scenario_cp(gdn_rng *r, cudaStream_t st, int K, int long_len) {
  const shape_case c = {2, 4, K, K, GDN_DTYPE_BF16, 1, 1, GDN_GATE_RAW};
  const int T = long_len + 1200, S = 4;
  plan_ws p = plan_make(&c, T, S);
  setenv("GDN_CP", "0", 1);
  plan_ws q = plan_make(&c, T, S);
  unsetenv("GDN_CP");
  fwd_data d;
  data_alloc(&d, &c, T);
  for (int it = 0; it < 2; ++it) {
    gdn_test_hbatch b;
    int lens[3] = {long_len, 1 + gdn_test_rand_int(r, 700), gdn_test_rand_int(r, 400)};
    gdn_test_hbatch_make(&b, lens, NULL, it == 0 ? 1 : 3);
    data_fill(&d, r, 0);
    state_buf sin = state_new(GDN_DTYPE_F32, b.n, &c, 0), s_cp = state_new(GDN_DTYPE_F32, b.n, &c, 0),
              s_ser = state_new(GDN_DTYPE_F32, b.n, &c, 0);
    const size_t ne = sin.elems;
    double *init = gdn_dalloc(ne), *ref_out = gdn_dalloc(ne), *o_ref = gdn_dalloc(d.nv), *o_cp = gdn_dalloc(d.nv);
    gdn_fill_normal(r, init, ne, 0.3);
    gdn_round_to(GDN_DTYPE_F32, init, ne);
    state_put(&sin, &c, init);
    void *cu = dev_cu(&b, 0);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(cu, GDN_DTYPE_I32, b.n + 1);
    a.state_in = state_tensor(&sin, &c);
    a.state_out = state_tensor(&s_ser, &c);
    gdn_poison(d.d_o, d.nv * 2);
    CHECK_OK(call(&q, &a, st)); /* one segment per sequence */
    double *o_ser = gdn_dalloc(d.nv), *st_ser = gdn_dalloc(ne);
    gdn_download(c.dt, d.d_o, d.nv, o_ser);
    state_get(&s_ser, &c, st_ser);
    a.state_out = state_tensor(&s_cp, &c);
    gdn_poison(d.d_o, d.nv * 2);
    CHECK_OK(call(&p, &a, st));
    CHECK_OK(gdn_forward_check_error(p.plan));
    gdn_download(c.dt, d.d_o, d.nv, o_cp);
    int32_t ident[3] = {0, 1, 2};
    gdn_ref_state_io io = {ident, ident, ref_out, 0, NULL, NULL};
    double *work = gdn_dalloc(ne);
    memcpy(work, init, ne * sizeof(double));
    ref_forward(&d, &b, work, &io, o_ref);
    char tag[96];
    snprintf(tag, sizeof tag, "context parallel K=%d N=%d lens %d/%d/%d", K, b.n, lens[0], lens[1], lens[2]);
    check_o(tag, &d, &b, o_ref);
    char all[3] = {1, 1, 1};
    check_states(tag, "state_out", &s_cp, &c, all, ref_out, NULL);
    const double e_o = gdn_rel_l2(o_cp, o_ser, (size_t)b.cu[b.n] * c.Hv * c.V);
    double *st_cp = gdn_dalloc(ne);
    state_get(&s_cp, &c, st_cp);
    const double e_s = gdn_rel_l2(st_cp, st_ser, ne);
    CHECK(e_o <= BOUND && e_s <= BOUND, "[%s] segmented vs one segment: o rel L2 %.3e, state %.3e (> %.0e)", tag, e_o,
          e_s, BOUND);
    printf("  [%s] CP vs serial: o %.2e, state %.2e\n", tag, e_o, e_s);
    free(st_cp); free(work); free(o_ser); free(st_ser);
    free(init); free(ref_out); free(o_ref); free(o_cp);
    cudaFree(cu); cudaFree(sin.dev); cudaFree(s_cp.dev); cudaFree(s_ser.dev);
  }
  data_free(&d);
  plan_free(&p);
  plan_free(&q);
}

/* ---- gates past fp32: A_log = 88.5 (exp overflows), precomputed g = -inf on some tokens */
static void scenario_gate_overflow(gdn_rng *r, cudaStream_t st) {
  for (int pre = 0; pre < 2; ++pre) {
    const shape_case c = {2, 4, 128, 128, GDN_DTYPE_BF16, 1, 1, pre ? GDN_GATE_PRECOMPUTED : GDN_GATE_RAW};
    const int T = 640;
    plan_ws p = plan_make(&c, T, 4);
    fwd_data d;
    data_alloc(&d, &c, T);
    d.beta_dt = GDN_DTYPE_F32;
    gdn_test_hbatch b;
    int lens[3] = {300, 129, 200};
    gdn_test_hbatch_make(&b, lens, NULL, 3);
    data_fill(&d, r, pre ? 0 : 88.5);
    if (pre) { /* a reset every 37th token of head 1, the rest as drawn */
      for (int t = 0; t < T; t += 37) d.g[(size_t)t * c.Hv + 1] = -INFINITY;
      gdn_upload_into(GDN_DTYPE_F32, d.dg, d.g, d.nh);
    }
    state_buf sout = state_new(GDN_DTYPE_F32, 3, &c, 0);
    double *ref_out = gdn_dalloc(sout.elems), *o_ref = gdn_dalloc(d.nv), *o = gdn_dalloc(d.nv);
    void *cu = dev_cu(&b, 0);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(cu, GDN_DTYPE_I32, 4);
    a.state_out = state_tensor(&sout, &c);
    CHECK_OK(call(&p, &a, st));
    gdn_download(c.dt, d.d_o, d.nv, o);
    const char *tag = pre ? "precomputed g = -inf" : "A_log = 88.5";
    CHECK(gdn_count_nonfinite(o, (size_t)b.cu[3] * c.Hv * c.V) == 0, "[%s] o has NaN/Inf", tag);
    double *s = gdn_dalloc(sout.elems);
    state_get(&sout, &c, s);
    CHECK(gdn_count_nonfinite(s, sout.elems) == 0, "[%s] final states have NaN/Inf", tag);
    int32_t ident[3] = {0, 1, 2};
    gdn_ref_state_io io = {NULL, ident, ref_out, 0, NULL, NULL};
    ref_forward(&d, &b, NULL, &io, o_ref);
    CHECK(gdn_count_nonfinite(o_ref, d.nv) == 0, "[%s] the float64 reference itself is not finite", tag);
    check_o(tag, &d, &b, o_ref);
    char all[3] = {1, 1, 1};
    check_states(tag, "state_out", &sout, &c, all, ref_out, NULL);
    free(s); free(ref_out); free(o_ref); free(o);
    cudaFree(cu); cudaFree(sout.dev);
    data_free(&d);
    plan_free(&p);
  }
}

/* ---- an invalid batch writes nothing and is reported; the next one is right */
static void scenario_invalid(gdn_rng *r, cudaStream_t st) {
  const shape_case c = {2, 4, 64, 64, GDN_DTYPE_BF16, 1, 1, GDN_GATE_RAW};
  const int T = 512;
  plan_ws p = plan_make(&c, T, 4);
  fwd_data d;
  data_alloc(&d, &c, T);
  data_fill(&d, r, 0);
  state_buf pool = state_new(GDN_DTYPE_F32, 4, &c, 0);
  double *init = gdn_dalloc(pool.elems);
  gdn_fill_normal(r, init, pool.elems, 0.3);
  state_put(&pool, &c, init);
  int32_t bad_cu[3][4] = {{0, 200, 100, 300}, {5, 100, 200, 300}, {0, 100, 200, 600}};
  int32_t bad_slots[2][3] = {{0, 1, 1}, {0, 4, 1}};
  for (int i = 0; i < 5; ++i) {
    const int32_t *cuh = i < 3 ? bad_cu[i] : bad_cu[0];
    int32_t good[4] = {0, 100, 200, 300};
    int32_t *dcu = dev_i32(i < 3 ? cuh : good, 4);
    int32_t *ds = dev_i32(i < 3 ? bad_slots[0] + 0 : bad_slots[i - 3], 3);
    if (i < 3) {
      int32_t ok_slots[3] = {0, 1, 2};
      CUDA_OK(cudaMemcpy(ds, ok_slots, 12, cudaMemcpyHostToDevice));
    }
    gdn_poison(d.d_o, d.nv * 2);
    void *o_before = gdn_download_raw(d.d_o, d.nv * 2), *p_before = gdn_download_raw(pool.dev, pool.elems * 4);
    gdn_forward_args a;
    args_base(&d, &a);
    a.cu_seqlens = gdn_tensor_1d(dcu, GDN_DTYPE_I32, 4);
    a.state_in = a.state_out = state_tensor(&pool, &c);
    a.slots_in = a.slots_out = ds;
    CHECK_OK(call(&p, &a, st));
    CHECK_STATUS(gdn_forward_check_error(p.plan), GDN_ERROR_INVALID_BATCH);
    void *o_after = gdn_download_raw(d.d_o, d.nv * 2), *p_after = gdn_download_raw(pool.dev, pool.elems * 4);
    CHECK(memcmp(o_before, o_after, d.nv * 2) == 0, "[invalid batch %d] o was written", i);
    CHECK(memcmp(p_before, p_after, pool.elems * 4) == 0, "[invalid batch %d] the pool was written", i);
    free(o_before); free(p_before); free(o_after); free(p_after);
    cudaFree(dcu); cudaFree(ds);
  }
  free(init);
  cudaFree(pool.dev);
  data_free(&d);
  plan_free(&p);
}

int main(int argc, char **argv) {
  gdn_gpu_test_init("test_forward", 1);
  g_seed = gdn_test_seed("test_forward");
  g_small = gdn_test_small();
  const char *only = argc > 1 ? argv[1] : NULL;
  gdn_rng r;
  gdn_rng_seed(&r, g_seed);
  cudaStream_t st;
  CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
#define RUN(name, call)                                \
  do {                                                 \
    if (only == NULL || strstr(name, only) != NULL) {  \
      printf("  %s\n", name);                          \
      call;                                            \
    }                                                  \
  } while (0)
  RUN("states", scenario_states(&r, st));
  RUN("pool fp32", scenario_pool(&r, st, GDN_DTYPE_F32));
  RUN("pool bf16", scenario_pool(&r, st, GDN_DTYPE_BF16));
  RUN("pool fp16", scenario_pool(&r, st, GDN_DTYPE_F16));
  RUN("checkpoints", scenario_checkpoints(&r, st));
  RUN("capture", scenario_capture(&r, st));
  RUN("cp K=128", scenario_cp(&r, st, 128, g_small ? 2048 : 8192));
  RUN("cp K=64", scenario_cp(&r, st, 64, g_small ? 4096 : 65536));
  RUN("gates", scenario_gate_overflow(&r, st));
  RUN("invalid", scenario_invalid(&r, st));
  cudaStreamDestroy(st);
  return gdn_test_finish("test_forward");
}
