/* The prefill plan (graph/prefill.c) end to end against the float64 reference
 * gdn_ref_prefill (the recurrence), over caller buffers and a state pool:
 *
 *  - every case builds ONE plan with 3 buckets and replays the same instantiated graphs
 *    over many batches (fixed edge batches: lengths 0/1/63/64/65, N = 0, a full bucket,
 *    NULL slots; then random batches of random lengths and random distinct slots / -1).
 *    After each replay: o rows < T vs the reference per sequence; o rows in [T, bucket
 *    capacity) exactly 0 (o is poisoned first); rows past the bucket still poison; the
 *    pool slots named by the batch vs the reference pool, which is updated sequentially
 *    batch after batch (after N replays the GPU pool must equal N reference updates);
 *    every other pool byte (unnamed slots, slot padding) bit-identical.
 *  - the same batch through gdn_prefill_run_eager, gdn_prefill_run_device (descriptor
 *    uploaded by the test) and gdn_prefill_upload + launch_setup + launch_core, each from
 *    a copy of the same pool: o and pool bit-identical to the graph replay (tolerated: a
 *    relative difference <= 1e-6; they run the same kernels).
 *  - feature combinations: scalar gate with/without l2norm, no gate, per-key gate gk with
 *    and without the scalar gate, GVA ratio 1 and 2, K/V = 128/128, 64/128, 128/256,
 *    256/128, an explicit scale, a padded (strided) pool, fp16.
 *  - (first case) device-checked invalid batches written with gdn_prefill_run_device
 *    (bypassing the host): non-monotonic cu_seqlens, cu_seqlens[0] != 0, slot out of
 *    range, slot -2, slot used twice, tokens over the bucket: gdn_prefill_check_error
 *    returns GDN_ERROR_INVALID_BATCH naming the error, o and pool are bit-identical to
 *    before, and the next valid batch is correct. Batches over every bucket return
 *    GDN_ERROR_INVALID_ARGUMENT at once and launch nothing. gdn_prefill_add_to_graph and
 *    gdn_prefill_add_setup_node + gdn_prefill_add_core_nodes: bucket 0 in the test's own
 *    graph between a memset node and a memcpy node, descriptor written by the test.
 *
 * Tolerance: rel L2 <= 2e-2 for o per (sequence, value head) and for the pool per (named
 * slot, value head). Both sides see the SAME bf16/fp16-rounded inputs (q, k, v, a, b; fp32
 * A_log, dt_bias, gk and initial state), so the difference is only the GPU's internal
 * precision: 16-bit operands with fp32 accumulation on tensor cores, the intermediates
 * w, u (and qg, kg with gk) stored in 16 bits (relative rounding 2^-9 = 2e-3 each for
 * bf16), the fp32 triangular solve, o rounded to bf16 once (2^-9). A handful of independent
 * 2^-9 roundings, partially cancelling in the L2 norm, stays well inside 1e-2; the pool
 * carries fp32 state over replays (errors persist through the state but decay with the
 * gate / are contracted by the delta rule); 2e-2 leaves margin for that. Real bugs (decay
 * sign, chunk boundary, slot or head mapping, a dropped term) give errors of 5e-2 to O(1).
 *
 * Usage: test_prefill_graph [substring]  — runs only the cases whose name contains it.
 * GDN_TEST_SEED=<seed> replays a run (the seed is printed first). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "gdn/batch.h"
#include "gdn/prefill.h"
#include "gdn/reference.h"
#include "gpu_util.h"
#include "test_batch.h"

#define MAXS 32        /* descriptor arrays in the test */
#define NUM_SLOTS 12
#define BOUND 2e-2     /* rel L2 for o per (sequence, head) and for the pool per (named slot, head) */
#define SAME_BOUND 1e-6

static uint64_t g_seed;

typedef struct pcase {
  const char *name;
  gdn_dtype dt;
  int Hk, Hv, K, V;
  int use_g, use_gk, l2norm;
  float scale;     /* 0: default K^-1/2 */
  int slot_pad;    /* elements of padding between pool slots (a strided pool) */
  int random_batches;
  int full;        /* also: invalid batches, capacity errors, add_to_graph, bucket API */
  int column_split; /* 1: plan with GDN_CHUNK_H_COLUMN_SPLIT=1 (the folded WY form where there is no gk) */
  int out_norm;     /* the gated RMSNorm of o (io.norm_z, io.norm_weight) */
} pcase;

static const pcase kCases[] = {
    {"qwen3next: g + l2norm, Hk2/Hv4, K128/V128", GDN_DTYPE_BF16, 2, 4, 128, 128, 1, 0, 1, 0.f, 0, 8, 1, 0, 0},
    {"g, no l2norm, GVA1 Hk2/Hv2, K128/V128, scale 0.2, padded pool", GDN_DTYPE_BF16, 2, 2, 128, 128, 1, 0, 0, 0.2f,
     40, 3, 0, 0, 0},
    {"no gate, l2norm, Hk2/Hv4, K64/V128", GDN_DTYPE_BF16, 2, 4, 64, 128, 0, 0, 1, 0.f, 0, 3, 0, 0, 0},
    {"gk + g, l2norm, Hk2/Hv4, K128/V128", GDN_DTYPE_BF16, 2, 4, 128, 128, 1, 1, 1, 0.f, 0, 3, 0, 0, 0},
    {"gk only, no l2norm, GVA1 Hk2/Hv2, K64/V128, scale 0.15", GDN_DTYPE_BF16, 2, 2, 64, 128, 0, 1, 0, 0.15f, 0, 3, 0, 0, 0},
    {"g + l2norm, Hk2/Hv4, K128/V256", GDN_DTYPE_BF16, 2, 4, 128, 256, 1, 0, 1, 0.f, 0, 3, 0, 0, 0},
    {"g + l2norm, Hk1/Hv2, K256/V128", GDN_DTYPE_BF16, 1, 2, 256, 128, 1, 0, 1, 0.f, 0, 2, 0, 0, 0},
    {"fp16: g + l2norm, Hk1/Hv2, K128/V128", GDN_DTYPE_F16, 1, 2, 128, 128, 1, 0, 1, 0.f, 0, 2, 0, 0, 0},
    {"column split, folded WY: g + l2norm, Hk2/Hv4, K128/V128, padded pool", GDN_DTYPE_BF16, 2, 4, 128, 128, 1, 0, 1,
     0.f, 24, 4, 0, 1, 0},
    {"column split, folded WY: no gate, no l2norm, GVA1 Hk2/Hv2, K64/V64", GDN_DTYPE_BF16, 2, 2, 64, 64, 0, 0, 0, 0.f,
     0, 3, 0, 1, 0},
    {"column split, w/u: gk + g, l2norm, Hk2/Hv4, K128/V128", GDN_DTYPE_BF16, 2, 4, 128, 128, 1, 1, 1, 0.f, 0, 3, 0, 1, 0},
    {"column split, folded WY, fp16: g + l2norm, Hk1/Hv2, K128/V256", GDN_DTYPE_F16, 1, 2, 128, 256, 1, 0, 1, 0.f, 0,
     2, 0, 1, 0},
    /* 16 heads: the 16-sequence buckets have 256 (sequence, head) pairs, where Hopper's plan
     * fuses the norm into the scan; the 4-sequence bucket runs it after the scan */
    {"output norm: g + l2norm, Hk4/Hv16, K128/V128", GDN_DTYPE_BF16, 4, 16, 128, 128, 1, 0, 1, 0.f, 0, 2, 0, 0, 1},
    {"output norm, fp16: no gate, GVA1 Hk2/Hv2, K64/V64", GDN_DTYPE_F16, 2, 2, 64, 64, 0, 0, 0, 0.f, 0, 2, 0, 0, 1},
};
#define NORM_EPS 1e-5

/* Unsorted on purpose: the plan sorts them ({256,4}, {1024,16}, {1536,16}). */
static const gdn_prefill_bucket kBuckets[3] = {{1024, 16}, {256, 4}, {1536, 16}};
#define T_CAP 1536

typedef gdn_test_hbatch batch;

typedef struct ctx {
  const pcase *c;
  gdn_rng *rng;
  cudaStream_t stream;
  gdn_prefill_plan *plan;
  size_t es, nqk, nv, nab, ngk, HVK, pool_elems;
  int64_t st0; /* pool slot stride */
  void *q, *k, *v, *a, *b, *A_log, *dt_bias, *gk, *state, *state_backup, *o, *o_copy, *z, *nw;
  int32_t *cu_dev, *slots_dev;
  double *hq, *hk, *hv, *ha, *hb, *hA_log, *hdt, *hgk, *hz, *hnw;
  double *ref_state; /* contiguous [NUM_SLOTS, Hv, V, K] */
} ctx;

/* ---------------------------------------------------------------- helpers */


static void random_batch(ctx *x, batch *b) {
  gdn_rng *r = x->rng;
  gdn_prefill_bucket cap = gdn_prefill_bucket_at(x->plan, gdn_test_rand_int(r, gdn_prefill_num_buckets(x->plan)));
  static const int special[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 191, 193, 255};
  gdn_test_hbatch_random_lens(b, r, cap.max_tokens, cap.max_seqs, special, (int)(sizeof special / sizeof special[0]),
                              0.5);
  gdn_test_hbatch_random_slots(b, r, NUM_SLOTS);
}

/* Fresh random inputs in every row of the buffers (rows past the batch are junk the GPU
 * must ignore), rounded to what the device holds; the host copies feed the reference. */
static void fill_inputs(ctx *x) {
  const pcase *c = x->c;
  gdn_rng *r = x->rng;
  if (c->l2norm) {
    gdn_fill_normal(r, x->hq, x->nqk, 1.0);
    gdn_fill_normal(r, x->hk, x->nqk, 1.0);
  } else {
    /* no normalization inside: keep ||k|| <= 1 (the delta rule is stable for beta ||k||^2 < 2) */
    for (size_t row = 0; row < x->nqk / (size_t)c->K; ++row) {
      double *qr = x->hq + row * c->K, *kr = x->hk + row * c->K, nk = 0;
      gdn_fill_normal(r, qr, (size_t)c->K, 1.0 / sqrt((double)c->K));
      gdn_fill_normal(r, kr, (size_t)c->K, 1.0);
      for (int i = 0; i < c->K; ++i) nk += kr[i] * kr[i];
      double target = 0.6 + 0.4 * gdn_rng_uniform(r);
      for (int i = 0; i < c->K; ++i) kr[i] *= target / sqrt(nk);
    }
  }
  gdn_fill_normal(r, x->hv, x->nv, 1.0);
  gdn_fill_normal(r, x->ha, x->nab, 1.0);
  gdn_fill_normal(r, x->hb, x->nab, 1.0);
  gdn_round_to(c->dt, x->hq, x->nqk);
  gdn_round_to(c->dt, x->hk, x->nqk);
  gdn_round_to(c->dt, x->hv, x->nv);
  gdn_round_to(GDN_DTYPE_BF16, x->ha, x->nab);
  gdn_round_to(GDN_DTYPE_BF16, x->hb, x->nab);
  gdn_upload_into(c->dt, x->q, x->hq, x->nqk);
  gdn_upload_into(c->dt, x->k, x->hk, x->nqk);
  gdn_upload_into(c->dt, x->v, x->hv, x->nv);
  gdn_upload_into(GDN_DTYPE_BF16, x->a, x->ha, x->nab);
  gdn_upload_into(GDN_DTYPE_BF16, x->b, x->hb, x->nab);
  if (c->out_norm) {
    gdn_fill_normal(r, x->hz, x->nv, 2.0);
    gdn_round_to(c->dt, x->hz, x->nv);
    gdn_upload_into(c->dt, x->z, x->hz, x->nv);
  }
  if (c->use_gk) {
    /* per-key log gate, FLA-style logsigmoid(x) / 16 (mean ~ -0.05 per token) */
    for (size_t i = 0; i < x->ngk; ++i) {
      double z = gdn_rng_normal(r);
      x->hgk[i] = (z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z))) / 16.0;
    }
    gdn_round_to(GDN_DTYPE_F32, x->hgk, x->ngk);
    gdn_upload_into(GDN_DTYPE_F32, x->gk, x->hgk, x->ngk);
  }
}

static float *pool_download(const ctx *x) { return (float *)gdn_download_raw(x->state, x->pool_elems * 4); }
static uint16_t *o_download(const ctx *x, void *dev) {
  return (uint16_t *)gdn_download_raw(dev, (size_t)T_CAP * x->c->Hv * x->c->V * 2);
}

static void ref_run(ctx *x, const batch *b, double *o_ref) {
  const pcase *c = x->c;
  gdn_ref_shape s = {b->n, b->cu, c->Hk, c->Hv, c->K, c->V};
  gdn_ref_prefill_inputs in = {.q = x->hq, .k = x->hk, .v = x->hv, .a = x->ha, .b = x->hb, .A_log = x->hA_log,
                               .dt_bias = x->hdt, .gk = c->use_gk ? x->hgk : NULL, .use_g = c->use_g,
                               .l2norm_qk = c->l2norm, .scale = c->scale};
  gdn_ref_prefill(&s, &in, x->ref_state, b->null_slots ? NULL : b->slots, o_ref);
  const int T = b->cu[b->n];
  if (c->out_norm && T > 0) { /* the norm reads the 16-bit o */
    const size_t n = (size_t)T * c->Hv * c->V;
    double *o16 = gdn_dalloc(n);
    memcpy(o16, o_ref, n * sizeof(double));
    gdn_round_to(c->dt, o16, n);
    gdn_ref_gated_rmsnorm(T, c->Hv, c->V, o16, x->hz, x->hnw, NORM_EPS, o_ref);
    free(o16);
  }
}

/* Checks one replay's o and pool against the reference (already run into o_ref and
 * x->ref_state) and the pool before the replay. Returns the worst errors for the log. */
static void verify(ctx *x, const batch *b, const char *tag, const uint16_t *o_raw, const float *pool_after,
                   const float *pool_before, const double *o_ref, double *worst_o, double *worst_pool) {
  const pcase *c = x->c;
  const int T = b->cu[b->n], bucket = gdn_prefill_pick_bucket(x->plan, T, b->n);
  const int bcap = gdn_prefill_bucket_at(x->plan, bucket).max_tokens;
  const size_t row = (size_t)c->Hv * c->V;
  char desc[1024];
  gdn_test_hbatch_str(b, desc, sizeof desc);

  /* o per (sequence, value head) */
  double *got = gdn_dalloc(row * (size_t)(T > 0 ? T : 1));
  gdn_unpack(c->dt, o_raw, row * (size_t)T, got);
  double *gs = gdn_dalloc((size_t)(T > 0 ? T : 1) * c->V), *rs = gdn_dalloc((size_t)(T > 0 ? T : 1) * c->V);
  *worst_o = 0;
  for (int n = 0; n < b->n; ++n) {
    int t0 = b->cu[n], len = b->cu[n + 1] - t0;
    if (len <= 0) continue;
    for (int h = 0; h < c->Hv; ++h) {
      for (int t = 0; t < len; ++t) {
        memcpy(gs + (size_t)t * c->V, got + (size_t)(t0 + t) * row + (size_t)h * c->V, sizeof(double) * c->V);
        memcpy(rs + (size_t)t * c->V, o_ref + (size_t)(t0 + t) * row + (size_t)h * c->V, sizeof(double) * c->V);
      }
      double e = gdn_rel_l2(gs, rs, (size_t)len * c->V);
      if (!(e <= *worst_o)) *worst_o = e;
      CHECK(e <= BOUND, "[%s] %s: o of sequence %d (len %d, slot %d), value head %d: rel L2 %.3e > %.1e (seed %llu; %s)",
            c->name, tag, n, len, b->null_slots ? -1 : b->slots[n], h, e, BOUND, (unsigned long long)g_seed, desc);
    }
  }
  free(got);
  free(gs);
  free(rs);

  /* rows past the batch: zero up to the bucket, untouched (poison) past it */
  size_t nonzero = 0, written = 0, first_bad = (size_t)-1;
  for (size_t i = (size_t)T * row; i < (size_t)bcap * row; ++i)
    if (o_raw[i] != 0) {
      if (!nonzero) first_bad = i / row;
      ++nonzero;
    }
  for (size_t i = (size_t)bcap * row; i < (size_t)T_CAP * row; ++i) written += o_raw[i] != 0xFFFFu;
  CHECK(nonzero == 0, "[%s] %s: %zu elements of o rows [T=%d, bucket capacity %d) are not 0 (first row %zu; seed %llu)",
        c->name, tag, nonzero, T, bcap, first_bad, (unsigned long long)g_seed);
  CHECK(written == 0, "[%s] %s: %zu elements of o rows [%d, %d) past the bucket were written (seed %llu)", c->name, tag,
        written, bcap, T_CAP, (unsigned long long)g_seed);

  /* pool: named slots vs the reference, every other byte unchanged */
  char named[NUM_SLOTS] = {0};
  if (!b->null_slots)
    for (int n = 0; n < b->n; ++n)
      if (b->slots[n] >= 0 && b->slots[n] < NUM_SLOTS) named[b->slots[n]] = 1;
  *worst_pool = 0;
  double *slot = gdn_dalloc(x->HVK);
  for (int s = 0; s < NUM_SLOTS; ++s) {
    const size_t base = (size_t)s * (size_t)x->st0;
    if (named[s]) {
      for (size_t i = 0; i < x->HVK; ++i) slot[i] = pool_after[base + i];
      const size_t VK = x->HVK / (size_t)c->Hv;
      for (int h = 0; h < c->Hv; ++h) {
        double e = gdn_rel_l2(slot + (size_t)h * VK, x->ref_state + (size_t)s * x->HVK + (size_t)h * VK, VK);
        if (!(e <= *worst_pool)) *worst_pool = e;
        CHECK(e <= BOUND,
              "[%s] %s: pool slot %d, value head %d: rel L2 %.3e > %.1e vs the sequentially updated reference (seed "
              "%llu; %s)",
              c->name, tag, s, h, e, BOUND, (unsigned long long)g_seed, desc);
      }
      size_t pad = (size_t)x->st0 - x->HVK;
      CHECK(pad == 0 || memcmp(pool_after + base + x->HVK, pool_before + base + x->HVK, pad * 4) == 0,
            "[%s] %s: padding after pool slot %d was written (seed %llu)", c->name, tag, s, (unsigned long long)g_seed);
    } else {
      CHECK(memcmp(pool_after + base, pool_before + base, (size_t)x->st0 * 4) == 0,
            "[%s] %s: pool slot %d is not named by the batch but changed (seed %llu; %s)", c->name, tag, s,
            (unsigned long long)g_seed, desc);
    }
  }
  free(slot);
}

/* a must equal b bitwise; tolerated: max |a-b| <= 1e-6 max |b|. */
static void check_same16(const ctx *x, const char *what, const char *tag, const uint16_t *a, const uint16_t *b,
                         size_t n, int *identical) {
  size_t diff = 0;
  double maxd = 0, maxb = 0;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    ++diff;
    double va, vb;
    gdn_unpack(x->c->dt, a + i, 1, &va);
    gdn_unpack(x->c->dt, b + i, 1, &vb);
    double d = isfinite(va) && isfinite(vb) ? fabs(va - vb) : INFINITY;
    if (d > maxd) maxd = d;
  }
  if (diff) {
    double *wb = gdn_dalloc(n);
    gdn_unpack(x->c->dt, b, n, wb);
    for (size_t i = 0; i < n; ++i)
      if (isfinite(wb[i]) && fabs(wb[i]) > maxb) maxb = fabs(wb[i]);
    free(wb);
  }
  *identical &= diff == 0;
  CHECK(diff == 0 || maxd <= SAME_BOUND * maxb,
        "[%s] %s: %s differs from the graph replay in %zu of %zu elements, max |diff| %.3e (> %.0e x max %.3e; seed %llu)",
        x->c->name, tag, what, diff, n, maxd, SAME_BOUND, maxb, (unsigned long long)g_seed);
}

static void check_same32(const ctx *x, const char *what, const char *tag, const float *a, const float *b, size_t n,
                         int *identical) {
  size_t diff = 0;
  double maxd = 0, maxb = 0;
  for (size_t i = 0; i < n; ++i) {
    if (isfinite(b[i]) && fabs(b[i]) > maxb) maxb = fabs(b[i]);
    if (memcmp(a + i, b + i, 4) == 0) continue;
    ++diff;
    double d = isfinite(a[i]) && isfinite(b[i]) ? fabs((double)a[i] - b[i]) : INFINITY;
    if (d > maxd) maxd = d;
  }
  *identical &= diff == 0;
  CHECK(diff == 0 || maxd <= SAME_BOUND * maxb,
        "[%s] %s: %s differs from the graph replay in %zu of %zu elements, max |diff| %.3e (> %.0e x max %.3e; seed %llu)",
        x->c->name, tag, what, diff, n, maxd, SAME_BOUND, maxb, (unsigned long long)g_seed);
}

static void restore_pool(ctx *x) {
  CUDA_OK(cudaMemcpy(x->state, x->state_backup, x->pool_elems * 4, cudaMemcpyDeviceToDevice));
}

static void upload_desc(ctx *x, const batch *b) {
  CUDA_OK(cudaMemcpy(x->cu_dev, b->cu, (size_t)(b->n + 1) * 4, cudaMemcpyHostToDevice));
  if (b->n > 0) CUDA_OK(cudaMemcpy(x->slots_dev, b->slots, (size_t)b->n * 4, cudaMemcpyHostToDevice));
}

/* One batch: graph replay vs the reference, then eager and device-descriptor runs from
 * the same pool vs the graph replay. Leaves the pool updated (one reference update). */
static void run_batch(ctx *x, const batch *b, const char *tag) {
  const pcase *c = x->c;
  const int T = b->cu[b->n];
  const size_t o_elems = (size_t)T_CAP * c->Hv * c->V, o_bytes = o_elems * 2;
  const int32_t *slots = b->null_slots ? NULL : b->slots;
  fill_inputs(x);
  float *pool_before = pool_download(x);
  CUDA_OK(cudaMemcpy(x->state_backup, x->state, x->pool_elems * 4, cudaMemcpyDeviceToDevice));

  gdn_poison(x->o, o_bytes);
  CHECK_OK(gdn_prefill_run(x->plan, b->cu, slots, b->n, x->stream));
  CUDA_OK(cudaStreamSynchronize(x->stream));
  CHECK_OK(gdn_prefill_check_error(x->plan));
  uint16_t *o_g = o_download(x, x->o);
  float *pool_g = pool_download(x);

  double *o_ref = gdn_dalloc((size_t)(T > 0 ? T : 1) * c->Hv * c->V);
  ref_run(x, b, o_ref);
  double eo, ep;
  verify(x, b, tag, o_g, pool_g, pool_before, o_ref, &eo, &ep);

  /* eager launches of the same operators */
  int same_e = 1, same_d = 1;
  restore_pool(x);
  gdn_poison(x->o, o_bytes);
  CHECK_OK(gdn_prefill_run_eager(x->plan, b->cu, slots, b->n, x->stream));
  CUDA_OK(cudaStreamSynchronize(x->stream));
  CHECK_OK(gdn_prefill_check_error(x->plan));
  uint16_t *o_e = o_download(x, x->o);
  float *pool_e = pool_download(x);
  check_same16(x, "eager o", tag, o_e, o_g, o_elems, &same_e);
  check_same32(x, "eager pool", tag, pool_e, pool_g, x->pool_elems, &same_e);

  /* descriptor already on the device */
  restore_pool(x);
  gdn_poison(x->o, o_bytes);
  upload_desc(x, b);
  CHECK_OK(gdn_prefill_run_device(x->plan, x->cu_dev, b->null_slots ? NULL : x->slots_dev, b->n, T, x->stream));
  CUDA_OK(cudaStreamSynchronize(x->stream));
  CHECK_OK(gdn_prefill_check_error(x->plan));
  uint16_t *o_d = o_download(x, x->o);
  float *pool_d = pool_download(x);
  check_same16(x, "run_device o", tag, o_d, o_g, o_elems, &same_d);
  check_same32(x, "run_device pool", tag, pool_d, pool_g, x->pool_elems, &same_d);

  /* eager in pieces, as a layer runtime without graphs drives it: upload, setup, core */
  int same_s = 1, bk = -1;
  restore_pool(x);
  gdn_poison(x->o, o_bytes);
  CHECK_OK(gdn_prefill_upload(x->plan, b->cu, slots, b->n, x->stream, &bk));
  CHECK(bk == gdn_prefill_pick_bucket(x->plan, T, b->n), "[%s] %s: gdn_prefill_upload chose bucket %d, pick_bucket %d",
        c->name, tag, bk, gdn_prefill_pick_bucket(x->plan, T, b->n));
  CHECK_OK(gdn_prefill_launch_setup(x->plan, bk, x->stream));
  CHECK_OK(gdn_prefill_launch_core(x->plan, bk, x->stream));
  CUDA_OK(cudaStreamSynchronize(x->stream));
  CHECK_OK(gdn_prefill_check_error(x->plan));
  uint16_t *o_s = o_download(x, x->o);
  float *pool_s = pool_download(x);
  check_same16(x, "upload+launch_setup+launch_core o", tag, o_s, o_g, o_elems, &same_s);
  check_same32(x, "upload+launch_setup+launch_core pool", tag, pool_s, pool_g, x->pool_elems, &same_s);

  char desc[1024];
  printf("  %-10s bucket %d  %s\n             o err %.2e  pool err %.2e  vs graph: eager %s, run_device %s, pieces %s\n",
         tag, gdn_prefill_pick_bucket(x->plan, T, b->n), gdn_test_hbatch_str(b, desc, sizeof desc), eo, ep,
         same_e ? "bit-identical" : "DIFFERENT", same_d ? "bit-identical" : "DIFFERENT",
         same_s ? "bit-identical" : "DIFFERENT");
  fflush(stdout);
  free(pool_before);
  free(o_g);
  free(pool_g);
  free(o_e);
  free(pool_e);
  free(o_d);
  free(pool_d);
  free(o_s);
  free(pool_s);
  free(o_ref);
}

/* ------------------------------------------------------- the first case's extras */

static void bucket_api(ctx *x) {
  gdn_prefill_plan *p = x->plan;
  CHECK(gdn_prefill_num_buckets(p) == 3, "num_buckets = %d, expected 3", gdn_prefill_num_buckets(p));
  const int want[3][2] = {{256, 4}, {1024, 16}, {1536, 16}};
  for (int i = 0; i < 3; ++i) {
    gdn_prefill_bucket b = gdn_prefill_bucket_at(p, i);
    CHECK(b.max_tokens == want[i][0] && b.max_seqs == want[i][1], "bucket_at(%d) = {%d, %d}, expected {%d, %d} (sorted)",
          i, b.max_tokens, b.max_seqs, want[i][0], want[i][1]);
  }
  const int picks[][3] = {{0, 0, 0}, {256, 4, 0}, {257, 1, 1}, {10, 5, 1}, {1024, 16, 1}, {1025, 1, 2},
                          {1536, 16, 2}, {1537, 1, -1}, {10, 17, -1}};
  for (size_t i = 0; i < sizeof picks / sizeof picks[0]; ++i) {
    int got = gdn_prefill_pick_bucket(p, picks[i][0], picks[i][1]);
    CHECK(got == picks[i][2], "pick_bucket(%d tokens, %d seqs) = %d, expected %d", picks[i][0], picks[i][1], got,
          picks[i][2]);
  }
  CHECK(gdn_prefill_descriptor_seqs(p) == 16, "descriptor_seqs = %d, expected 16 (the largest max_seqs)",
        gdn_prefill_descriptor_seqs(p));
  CHECK(gdn_prefill_descriptor(p) != NULL, "descriptor pointer is NULL");
}

/* A descriptor the host would reject, written straight to the device. */
typedef struct bad_case {
  const char *what;
  int n, num_tokens;
  int32_t cu[5], slots[4];
  int code; /* gdn_batch_error expected in the message */
} bad_case;

static void invalid_batches(ctx *x) {
  const pcase *c = x->c;
  const size_t o_bytes = (size_t)T_CAP * c->Hv * c->V * 2;
  static const bad_case bad[] = {
      {"non-monotonic cu_seqlens", 3, 200, {0, 100, 50, 200}, {0, 1, 2}, GDN_BATCH_NOT_MONOTONIC},
      {"cu_seqlens[0] = 5", 2, 200, {5, 100, 200}, {0, 1}, GDN_BATCH_BAD_FIRST_OFFSET},
      {"slot 12 of 12", 2, 20, {0, 10, 20}, {0, 12}, GDN_BATCH_SLOT_OUT_OF_RANGE},
      {"slot -2", 2, 20, {0, 10, 20}, {-2, 1}, GDN_BATCH_SLOT_OUT_OF_RANGE},
      {"slot 4 used twice", 3, 30, {0, 10, 20, 30}, {4, -1, 4}, GDN_BATCH_SLOT_REUSED},
      {"300 tokens in the 256-token bucket (num_tokens said 100)", 1, 100, {0, 300}, {5}, GDN_BATCH_TOO_MANY_TOKENS},
  };
  printf("  invalid batches written to the device (each must leave o and the pool untouched):\n");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    const bad_case *bc = &bad[i];
    fill_inputs(x);
    gdn_poison(x->o, o_bytes);
    uint16_t *o_before = o_download(x, x->o);
    float *pool_before = pool_download(x);
    CUDA_OK(cudaMemcpy(x->cu_dev, bc->cu, (size_t)(bc->n + 1) * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x->slots_dev, bc->slots, (size_t)bc->n * 4, cudaMemcpyHostToDevice));
    CHECK_OK(gdn_prefill_run_device(x->plan, x->cu_dev, x->slots_dev, bc->n, bc->num_tokens, x->stream));
    CUDA_OK(cudaStreamSynchronize(x->stream));
    gdn_status st = gdn_prefill_check_error(x->plan);
    const char *msg = gdn_get_last_error();
    printf("    %-58s -> %s: %s\n", bc->what, gdn_status_string(st), st == GDN_SUCCESS ? "(no error reported)" : msg);
    CHECK(st == GDN_ERROR_INVALID_BATCH, "[%s] invalid batch '%s': check_error returned %s, expected invalid batch",
          c->name, bc->what, gdn_status_string(st));
    if (st == GDN_ERROR_INVALID_BATCH)
      CHECK(strstr(msg, gdn_batch_error_string(bc->code)) != NULL,
            "[%s] invalid batch '%s': message \"%s\" does not name \"%s\"", c->name, bc->what, msg,
            gdn_batch_error_string(bc->code));
    uint16_t *o_after = o_download(x, x->o);
    float *pool_after = pool_download(x);
    CHECK(memcmp(o_after, o_before, o_bytes) == 0, "[%s] invalid batch '%s': o was written", c->name, bc->what);
    CHECK(memcmp(pool_after, pool_before, x->pool_elems * 4) == 0, "[%s] invalid batch '%s': the state pool changed",
          c->name, bc->what);
    CHECK_OK(gdn_prefill_check_error(x->plan)); /* cleared */
    free(o_before);
    free(pool_before);
    free(o_after);
    free(pool_after);
  }

  /* two rejected batches, one check: reported once (count 2), then cleared */
  {
    const bad_case *b1 = &bad[0], *b2 = &bad[4];
    CUDA_OK(cudaMemcpy(x->cu_dev, b1->cu, (size_t)(b1->n + 1) * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x->slots_dev, b1->slots, (size_t)b1->n * 4, cudaMemcpyHostToDevice));
    CHECK_OK(gdn_prefill_run_device(x->plan, x->cu_dev, x->slots_dev, b1->n, b1->num_tokens, x->stream));
    CUDA_OK(cudaStreamSynchronize(x->stream));
    CUDA_OK(cudaMemcpy(x->cu_dev, b2->cu, (size_t)(b2->n + 1) * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(x->slots_dev, b2->slots, (size_t)b2->n * 4, cudaMemcpyHostToDevice));
    CHECK_OK(gdn_prefill_run_device(x->plan, x->cu_dev, x->slots_dev, b2->n, b2->num_tokens, x->stream));
    CUDA_OK(cudaStreamSynchronize(x->stream));
    gdn_status st = gdn_prefill_check_error(x->plan);
    printf("    two rejected batches, one check -> %s: %s\n", gdn_status_string(st), gdn_get_last_error());
    CHECK(st == GDN_ERROR_INVALID_BATCH, "[%s] two rejected batches: check_error returned %s", c->name,
          gdn_status_string(st));
    CHECK_OK(gdn_prefill_check_error(x->plan));
  }

  /* a valid batch right after works again */
  batch ok;
  const int lens[3] = {65, 1, 120};
  gdn_test_hbatch_make(&ok, lens, NULL, 3);
  ok.null_slots = 0;
  gdn_test_hbatch_random_slots(&ok, x->rng, NUM_SLOTS);
  run_batch(x, &ok, "after-bad");

  /* over every bucket: rejected on the host at once, nothing launched */
  {
    fill_inputs(x);
    gdn_poison(x->o, o_bytes);
    uint16_t *o_before = o_download(x, x->o);
    float *pool_before = pool_download(x);
    batch big;
    const int one[1] = {T_CAP + 1};
    gdn_test_hbatch_make(&big, one, NULL, 1);
    big.slots[0] = 0;
    big.null_slots = 0;
    gdn_status st = gdn_prefill_run(x->plan, big.cu, big.slots, 1, x->stream);
    printf("    %d tokens (over every bucket) -> %s: %s\n", T_CAP + 1, gdn_status_string(st), gdn_get_last_error());
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT, "[%s] %d tokens: gdn_prefill_run returned %s, expected invalid argument",
          c->name, T_CAP + 1, gdn_status_string(st));
    st = gdn_prefill_run_eager(x->plan, big.cu, big.slots, 1, x->stream);
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT, "[%s] %d tokens: gdn_prefill_run_eager returned %s, expected invalid argument",
          c->name, T_CAP + 1, gdn_status_string(st));
    upload_desc(x, &big);
    st = gdn_prefill_run_device(x->plan, x->cu_dev, x->slots_dev, 1, T_CAP + 1, x->stream);
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT, "[%s] %d tokens: gdn_prefill_run_device returned %s, expected invalid argument",
          c->name, T_CAP + 1, gdn_status_string(st));
    int ones[17];
    for (int i = 0; i < 17; ++i) ones[i] = 1;
    gdn_test_hbatch_make(&big, ones, NULL, 17);
    st = gdn_prefill_run(x->plan, big.cu, NULL, 17, x->stream);
    printf("    17 sequences (over every bucket) -> %s: %s\n", gdn_status_string(st), gdn_get_last_error());
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT, "[%s] 17 sequences: gdn_prefill_run returned %s, expected invalid argument",
          c->name, gdn_status_string(st));
    st = gdn_prefill_run(x->plan, big.cu, NULL, -1, x->stream);
    CHECK(st == GDN_ERROR_INVALID_ARGUMENT, "[%s] num_seqs -1: gdn_prefill_run returned %s, expected invalid argument",
          c->name, gdn_status_string(st));
    CUDA_OK(cudaStreamSynchronize(x->stream));
    CHECK_OK(gdn_prefill_check_error(x->plan));
    uint16_t *o_after = o_download(x, x->o);
    float *pool_after = pool_download(x);
    CHECK(memcmp(o_after, o_before, o_bytes) == 0, "[%s] rejected oversized batches: o was written", c->name);
    CHECK(memcmp(pool_after, pool_before, x->pool_elems * 4) == 0, "[%s] rejected oversized batches: the pool changed",
          c->name);
    free(o_before);
    free(pool_before);
    free(o_after);
    free(pool_after);
  }
}

/* Bucket 0 inside the test's own graph: memset(o, 0xFF) -> prefill nodes -> copy o to
 * o_copy after `last`. split = 0: gdn_prefill_add_to_graph; split = 1: the pieces a layer
 * graph uses, gdn_prefill_add_setup_node then gdn_prefill_add_core_nodes. The test writes
 * the descriptor itself before each launch. */
static void own_graph(ctx *x, int split) {
  const pcase *c = x->c;
  const size_t o_elems = (size_t)T_CAP * c->Hv * c->V, o_bytes = o_elems * 2;
  cudaGraph_t g;
  cudaGraphNode_t mset, setup, last, copy;
  CUDA_OK(cudaGraphCreate(&g, 0));
  struct cudaMemsetParams mp;
  memset(&mp, 0, sizeof mp);
  mp.dst = x->o;
  mp.value = 0xFFFFFFFFu;
  mp.elementSize = 4;
  mp.width = o_bytes / 4;
  mp.height = 1;
  CUDA_OK(cudaGraphAddMemsetNode(&mset, g, NULL, 0, &mp));
  gdn_status st;
  if (!split) {
    CHECK_STATUS(gdn_prefill_add_to_graph(x->plan, 3, g, &mset, 1, &last), GDN_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(gdn_prefill_add_to_graph(x->plan, -1, g, &mset, 1, &last), GDN_ERROR_INVALID_ARGUMENT);
    st = gdn_prefill_add_to_graph(x->plan, 0, g, &mset, 1, &last);
  } else {
    CHECK_STATUS(gdn_prefill_add_setup_node(x->plan, 3, g, &mset, 1, &setup), GDN_ERROR_INVALID_ARGUMENT);
    st = gdn_prefill_add_setup_node(x->plan, 0, g, &mset, 1, &setup);
    if (st == GDN_SUCCESS) {
      CHECK_STATUS(gdn_prefill_add_core_nodes(x->plan, 0, g, NULL, 0, &last), GDN_ERROR_INVALID_ARGUMENT);
      st = gdn_prefill_add_core_nodes(x->plan, 0, g, &setup, 1, &last);
    }
  }
  CHECK(st == GDN_SUCCESS, "[%s] adding bucket 0 to the test's graph (%s): %s (%s)", c->name,
        split ? "add_setup_node + add_core_nodes" : "add_to_graph", gdn_status_string(st), gdn_get_last_error());
  if (st != GDN_SUCCESS) {
    cudaGraphDestroy(g);
    return;
  }
  CUDA_OK(cudaGraphAddMemcpyNode1D(&copy, g, &last, 1, x->o_copy, x->o, o_bytes, cudaMemcpyDeviceToDevice));
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, g, 0));

  const gdn_prefill_bucket cap = gdn_prefill_bucket_at(x->plan, 0);
  const int ds = gdn_prefill_descriptor_seqs(x->plan);
  int32_t *desc = (int32_t *)gdn_xmalloc((size_t)(2 * ds + 2) * 4);
  printf("  own graph: memset -> bucket 0 {%d tokens, %d seqs} via %s -> memcpy, descriptor written by the test\n",
         cap.max_tokens, cap.max_seqs, split ? "add_setup_node + add_core_nodes" : "add_to_graph");
  for (int rep = 0; rep < 3; ++rep) {
    batch b;
    if (rep == 0) {
      const int lens[4] = {100, 1, 64, 91}; /* exactly the bucket's capacity */
      gdn_test_hbatch_make(&b, lens, NULL, 4);
    } else if (rep == 1) {
      const int lens[2] = {0, 65};
      gdn_test_hbatch_make(&b, lens, NULL, 2);
    } else {
      const int lens[3] = {63, 7, 129};
      gdn_test_hbatch_make(&b, lens, NULL, 3);
    }
    b.null_slots = 0;
    gdn_test_hbatch_random_slots(&b, x->rng, NUM_SLOTS);
    fill_inputs(x);
    gdn_poison(x->o, o_bytes);
    gdn_poison(x->o_copy, o_bytes);
    float *pool_before = pool_download(x);
    /* [0] = N, [1 .. ds+1] = cu_seqlens (padded with the last offset), [ds+2 ..] = slots */
    for (int i = 0; i < 2 * ds + 2; ++i) desc[i] = 0;
    desc[0] = b.n;
    for (int i = 0; i <= ds; ++i) desc[1 + i] = b.cu[i <= b.n ? i : b.n];
    for (int i = 0; i < ds; ++i) desc[1 + ds + 1 + i] = i < b.n ? b.slots[i] : GDN_PAD_SLOT;
    CUDA_OK(cudaMemcpy(gdn_prefill_descriptor(x->plan), desc, (size_t)(2 * ds + 2) * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaGraphLaunch(exec, x->stream));
    CUDA_OK(cudaStreamSynchronize(x->stream));
    CHECK_OK(gdn_prefill_check_error(x->plan));
    uint16_t *o_got = o_download(x, x->o), *o_cp = o_download(x, x->o_copy);
    float *pool_after = pool_download(x);
    const int T = b.cu[b.n];
    double *o_ref = gdn_dalloc((size_t)(T > 0 ? T : 1) * c->Hv * c->V);
    ref_run(x, &b, o_ref);
    char tag[32], d[1024];
    snprintf(tag, sizeof tag, "%s#%d", split ? "own-split" : "own-graph", rep);
    double eo, ep;
    verify(x, &b, tag, o_got, pool_after, pool_before, o_ref, &eo, &ep);
    CHECK(memcmp(o_cp, o_got, o_bytes) == 0,
          "[%s] %s: the memcpy node after `last` saw a different o (last does not join every prefill node)", c->name, tag);
    printf("  %-10s %s\n             o err %.2e  pool err %.2e\n", tag, gdn_test_hbatch_str(&b, d, sizeof d), eo, ep);
    free(o_got);
    free(o_cp);
    free(pool_after);
    free(pool_before);
    free(o_ref);
  }
  free(desc);
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(g));
}

/* ---------------------------------------------------------------- one case */

static void run_case(const pcase *c, gdn_rng *rng, cudaStream_t stream) {
  printf("case: %s\n", c->name);
  fflush(stdout);
  ctx x;
  memset(&x, 0, sizeof x);
  x.c = c;
  x.rng = rng;
  x.stream = stream;
  x.es = gdn_dtype_size(c->dt);
  x.nqk = (size_t)T_CAP * c->Hk * c->K;
  x.nv = (size_t)T_CAP * c->Hv * c->V;
  x.nab = (size_t)T_CAP * c->Hv;
  x.ngk = (size_t)T_CAP * c->Hv * c->K;
  x.HVK = (size_t)c->Hv * c->V * c->K;
  x.st0 = (int64_t)x.HVK + c->slot_pad;
  x.pool_elems = (size_t)NUM_SLOTS * (size_t)x.st0;

  x.q = gdn_dmalloc(x.nqk * x.es);
  x.k = gdn_dmalloc(x.nqk * x.es);
  x.v = gdn_dmalloc(x.nv * x.es);
  x.a = gdn_dmalloc(x.nab * 2);
  x.b = gdn_dmalloc(x.nab * 2);
  x.A_log = gdn_dmalloc((size_t)c->Hv * 4);
  x.dt_bias = gdn_dmalloc((size_t)c->Hv * 4);
  if (c->use_gk) x.gk = gdn_dmalloc(x.ngk * 4);
  x.state = gdn_dmalloc(x.pool_elems * 4);
  x.state_backup = gdn_dmalloc(x.pool_elems * 4);
  x.o = gdn_dmalloc(x.nv * x.es);
  x.o_copy = gdn_dmalloc(x.nv * x.es);
  x.cu_dev = (int32_t *)gdn_dmalloc((MAXS + 1) * 4);
  x.slots_dev = (int32_t *)gdn_dmalloc(MAXS * 4);
  x.hq = gdn_dalloc(x.nqk);
  x.hk = gdn_dalloc(x.nqk);
  x.hv = gdn_dalloc(x.nv);
  x.ha = gdn_dalloc(x.nab);
  x.hb = gdn_dalloc(x.nab);
  x.hA_log = gdn_dalloc((size_t)c->Hv);
  x.hdt = gdn_dalloc((size_t)c->Hv);
  x.hgk = gdn_dalloc(c->use_gk ? x.ngk : 1);
  x.hz = gdn_dalloc(c->out_norm ? x.nv : 1);
  x.hnw = gdn_dalloc((size_t)c->V);
  if (c->out_norm) {
    x.z = gdn_dmalloc(x.nv * x.es);
    x.nw = gdn_dmalloc((size_t)c->V * 4);
    gdn_fill_uniform(rng, x.hnw, (size_t)c->V, 0.5, 1.5);
    gdn_round_to(GDN_DTYPE_F32, x.hnw, (size_t)c->V);
    gdn_upload_into(GDN_DTYPE_F32, x.nw, x.hnw, (size_t)c->V);
  }
  x.ref_state = gdn_dalloc((size_t)NUM_SLOTS * x.HVK);

  /* Qwen3-Next-like gates: A = exp(A_log) in [1, 16], dt = softplus(dt_bias) log-uniform in
   * [1e-3, 1e-1] (dt_bias = its inverse softplus) */
  for (int h = 0; h < c->Hv; ++h) {
    x.hA_log[h] = log(1.0 + 15.0 * gdn_rng_uniform(rng));
    double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * gdn_rng_uniform(rng));
    x.hdt[h] = dt + log(-expm1(-dt));
  }
  gdn_round_to(GDN_DTYPE_F32, x.hA_log, (size_t)c->Hv);
  gdn_round_to(GDN_DTYPE_F32, x.hdt, (size_t)c->Hv);
  gdn_upload_into(GDN_DTYPE_F32, x.A_log, x.hA_log, (size_t)c->Hv);
  gdn_upload_into(GDN_DTYPE_F32, x.dt_bias, x.hdt, (size_t)c->Hv);

  /* random initial pool (padding too: it must survive untouched) */
  {
    double *pool = gdn_dalloc(x.pool_elems);
    gdn_fill_normal(rng, pool, x.pool_elems, 0.05);
    gdn_round_to(GDN_DTYPE_F32, pool, x.pool_elems);
    gdn_upload_into(GDN_DTYPE_F32, x.state, pool, x.pool_elems);
    for (int s = 0; s < NUM_SLOTS; ++s)
      memcpy(x.ref_state + (size_t)s * x.HVK, pool + (size_t)s * (size_t)x.st0, x.HVK * sizeof(double));
    free(pool);
  }

  gdn_prefill_shape shape = {c->Hk, c->Hv, c->K, c->V, c->dt, c->use_g, c->use_gk, c->l2norm, c->scale, GDN_GATE_RAW};
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(x.q, c->dt, T_CAP, c->Hk, c->K);
  io.k = gdn_tensor_3d(x.k, c->dt, T_CAP, c->Hk, c->K);
  io.v = gdn_tensor_3d(x.v, c->dt, T_CAP, c->Hv, c->V);
  io.b = gdn_tensor_2d(x.b, GDN_DTYPE_BF16, T_CAP, c->Hv);
  if (c->use_g) { /* without the scalar gate a, A_log and dt_bias are absent (optional) */
    io.a = gdn_tensor_2d(x.a, GDN_DTYPE_BF16, T_CAP, c->Hv);
    io.A_log = gdn_tensor_1d(x.A_log, GDN_DTYPE_F32, c->Hv);
    io.dt_bias = gdn_tensor_1d(x.dt_bias, GDN_DTYPE_F32, c->Hv);
  } else {
    io.a = io.A_log = io.dt_bias = gdn_tensor_none();
  }
  io.gk = c->use_gk ? gdn_tensor_3d(x.gk, GDN_DTYPE_F32, T_CAP, c->Hv, c->K) : gdn_tensor_none();
  io.state = gdn_tensor_4d(x.state, GDN_DTYPE_F32, NUM_SLOTS, c->Hv, c->V, c->K);
  io.state.strides[0] = x.st0;
  io.o = gdn_tensor_3d(x.o, c->dt, T_CAP, c->Hv, c->V);
  if (c->out_norm) {
    io.norm_z = gdn_tensor_3d(x.z, c->dt, T_CAP, c->Hv, c->V);
    io.norm_weight = gdn_tensor_1d(x.nw, GDN_DTYPE_F32, c->V);
    io.norm_eps = NORM_EPS;
    /* refused: a weight without its gate, an o overlapping z */
    gdn_prefill_io bad = io;
    bad.norm_z = gdn_tensor_none();
    CHECK_FAIL_NAMES(gdn_prefill_validate(&shape, &bad, kBuckets, 3), GDN_ERROR_INVALID_ARGUMENT, "io.norm_z");
    bad = io;
    bad.o = io.norm_z;
    CHECK_FAIL_NAMES(gdn_prefill_validate(&shape, &bad, kBuckets, 3), GDN_ERROR_INVALID_ARGUMENT, "io.norm_z");
  }

  if (c->column_split) setenv("GDN_CHUNK_H_COLUMN_SPLIT", "1", 1);
  gdn_status st = gdn_prefill_plan_create(&x.plan, &shape, &io, kBuckets, 3, 0);
  unsetenv("GDN_CHUNK_H_COLUMN_SPLIT");
  CHECK(st == GDN_SUCCESS, "[%s] gdn_prefill_plan_create: %s (%s)", c->name, gdn_status_string(st), gdn_get_last_error());
  if (st == GDN_SUCCESS) {
    if (c->full) bucket_api(&x);
    batch b;
    char tag[32];
    { /* edge lengths around the chunk size, an empty sequence, a 2-chunk tail */
      const int lens[6] = {1, 63, 64, 65, 0, 130};
      gdn_test_hbatch_make(&b, lens, NULL, 6);
      b.null_slots = 0;
      gdn_test_hbatch_random_slots(&b, rng, NUM_SLOTS);
      run_batch(&x, &b, "edges");
    }
    { /* no sequences at all: every row of the bucket zeroed, nothing else */
      gdn_test_hbatch_make(&b, NULL, NULL, 0);
      b.null_slots = 0;
      run_batch(&x, &b, "empty");
    }
    { /* only empty sequences, one with a slot: that slot's state is written unchanged */
      const int lens[2] = {0, 0}, slots[2] = {7, -1};
      gdn_test_hbatch_make(&b, lens, slots, 2);
      run_batch(&x, &b, "zero-lens");
    }
    { /* one sequence filling the largest bucket */
      const int lens[1] = {T_CAP}, slots[1] = {3};
      gdn_test_hbatch_make(&b, lens, slots, 1);
      run_batch(&x, &b, "full-cap");
    }
    { /* the smallest bucket exactly full, slot 3 carried over from the previous batch */
      const int lens[2] = {200, 56}, slots[2] = {3, 11};
      gdn_test_hbatch_make(&b, lens, slots, 2);
      run_batch(&x, &b, "carry");
    }
    { /* slots = NULL: zero initial states, nothing written to the pool */
      const int lens[3] = {100, 37, 64};
      gdn_test_hbatch_make(&b, lens, NULL, 3);
      run_batch(&x, &b, "null-slots");
    }
    for (int i = 0; i < (gdn_test_small() ? 1 : c->random_batches); ++i) {
      random_batch(&x, &b);
      snprintf(tag, sizeof tag, "random#%d", i);
      run_batch(&x, &b, tag);
    }
    if (c->full) {
      invalid_batches(&x);
      own_graph(&x, 0);
      own_graph(&x, 1);
    }
    gdn_prefill_plan_destroy(x.plan);
  }

  void *dev[] = {x.q, x.k, x.v, x.a, x.b, x.A_log, x.dt_bias, x.gk, x.state, x.state_backup, x.o, x.o_copy,
                 x.cu_dev, x.slots_dev, x.z, x.nw};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; ++i)
    if (dev[i]) CUDA_OK(cudaFree(dev[i]));
  double *host[] = {x.hq, x.hk, x.hv, x.ha, x.hb, x.hA_log, x.hdt, x.hgk, x.ref_state, x.hz, x.hnw};
  for (size_t i = 0; i < sizeof host / sizeof host[0]; ++i) free(host[i]);
}

int main(int argc, char **argv) {
  gdn_gpu_test_init("test_prefill_graph", 1);
  g_seed = gdn_test_seed("test_prefill_graph");
  gdn_rng rng;
  gdn_rng_seed(&rng, g_seed);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  const char *filter = argc > 1 ? argv[1] : NULL;
  int ran = 0;
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    if (filter && !strstr(kCases[i].name, filter)) continue;
    /* each case draws from its own stream of the seed, so a filtered run replays it */
    gdn_rng_seed(&rng, g_seed * 1000003u + i);
    run_case(&kCases[i], &rng, stream);
    ++ran;
  }
  CHECK(ran > 0, "no case matches the filter '%s'", filter ? filter : "");
  CUDA_OK(cudaStreamDestroy(stream));
  return gdn_test_finish("test_prefill_graph");
}
