/* Core operators against the CPU float64 reference, stage by stage:
 * batch_setup + prologue, chunk_intra (KKT_SOLVE, WY, FUSED), chunk_delta_h (h, v_new,
 * state pool updated exactly once per launch, untouched slots bit-identical, every
 * launch configuration), chunk_scan_o.
 *
 * Tolerances: the GPU takes 16-bit operands, accumulates in fp32 and rounds w, u, v_new
 * and the state to 16-bit for the tensor-core products (as FLA does), so results
 * derived from bf16 operands carry ~2^-8 relative rounding per step: rel L2 bound 1.5e-2
 * (fp16: 8e-3). Purely fp32 stages (gates, cumsums, A_inv) are bounded at 1e-4 / 2e-3. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/gated_rmsnorm.h"
#include "gdn/chunk_intra.h"
#include "gdn/prologue.h"
#include "gpu_util.h"

typedef struct {
  const char *name;
  int N;
  int lens[8];
  int Hk, Hv, K, V;
  gdn_dtype dt;
  int use_g, use_gk, l2norm;
} tcase;

static gdn_rng rng;

static double bound16(gdn_dtype dt) { return dt == GDN_DTYPE_BF16 ? 1.5e-2 : 8e-3; }

static void check_rel(const char *what, const tcase *c, const double *got, const double *want, size_t n, double bound) {
  double e = gdn_rel_l2(got, want, n);
  CHECK(e <= bound, "[%s] %s: rel L2 error %.3e > %.1e", c->name, what, e, bound);
  if (getenv("GDN_TEST_VERBOSE")) printf("  [%s] %s: rel %.3e (bound %.1e)\n", c->name, what, e, bound);
}

/* aqk[t][h][j] = scale * sum_k q_i[k] k_j[k] e^{G_i[k] - G_j[k]} for j <= i in the chunk
 * (q, k normalized already; G = g_cum per row or gk_cum per key), 0 elsewhere. */
static void ref_aqk(const gdn_ref_shape *sh, const double *q, const double *k, const double *g_cum,
                    const double *gk_cum, double scale, double *aqk) {
  const int Hk = sh->Hk, Hv = sh->Hv, K = sh->K, grp = Hv / Hk;
  memset(aqk, 0, sizeof(double) * (size_t)sh->cu_seqlens[sh->num_seqs] * Hv * 64);
  for (int n = 0; n < sh->num_seqs; ++n)
    for (int c0 = sh->cu_seqlens[n]; c0 < sh->cu_seqlens[n + 1]; c0 += 64) {
      int L = sh->cu_seqlens[n + 1] - c0 < 64 ? sh->cu_seqlens[n + 1] - c0 : 64;
      for (int h = 0; h < Hv; ++h)
        for (int i = 0; i < L; ++i)
          for (int j = 0; j <= i; ++j) {
            const double *qi = q + ((size_t)(c0 + i) * Hk + h / grp) * K, *kj = k + ((size_t)(c0 + j) * Hk + h / grp) * K;
            double acc = 0;
            for (int x = 0; x < K; ++x) {
              double d = gk_cum ? gk_cum[((size_t)(c0 + i) * Hv + h) * K + x] - gk_cum[((size_t)(c0 + j) * Hv + h) * K + x]
                                : (g_cum ? g_cum[(size_t)(c0 + i) * Hv + h] - g_cum[(size_t)(c0 + j) * Hv + h] : 0.0);
              acc += qi[x] * kj[x] * exp(d);
            }
            aqk[((size_t)(c0 + i) * Hv + h) * 64 + j] = scale * acc;
          }
    }
}

/* 1 / sqrt(sum x^2 + 1e-6) per (token, key head), expanded to value heads [T, Hv]. */
static void ref_rnorm(int T, int Hk, int Hv, int K, const double *x, int l2norm, double *out) {
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < Hv; ++h) {
      const double *r = x + ((size_t)t * Hk + h / (Hv / Hk)) * K;
      double ss = 0;
      for (int i = 0; i < K; ++i) ss += r[i] * r[i];
      out[(size_t)t * Hv + h] = l2norm ? 1.0 / sqrt(ss + 1e-6) : 1.0;
    }
}

/* Device copy of a double array packed as dtype; freed by the caller. */
static void *up(gdn_dtype dt, const double *x, size_t n) { return gdn_upload(dt, x, n); }

static void run_case(const tcase *c) {
  const int N = c->N, Hk = c->Hk, Hv = c->Hv, K = c->K, V = c->V;
  int32_t cu[9];
  cu[0] = 0;
  for (int i = 0; i < N; ++i) cu[i + 1] = cu[i] + c->lens[i];
  const int T = cu[N];
  const int NSLOT = N + 3;
  int32_t slots[8];
  /* distinct slots in reverse order (slots 0 and 1 never named), every third sequence without state */
  for (int i = 0; i < N; ++i) slots[i] = (i % 3 == 2) ? -1 : (int32_t)(NSLOT - 1 - i);
  gdn_ref_shape sh = {N, cu, Hk, Hv, K, V};
  const int NT = gdn_ref_num_chunks(&sh);
  const size_t nq = (size_t)T * Hk * K, nv = (size_t)T * Hv * V, nh = (size_t)T * Hv, nhk = (size_t)T * Hv * K;
  const size_t npool = (size_t)NSLOT * Hv * V * K;

  double *q = gdn_dalloc(nq), *k = gdn_dalloc(nq), *v = gdn_dalloc(nv), *a = gdn_dalloc(nh), *b = gdn_dalloc(nh);
  double A_log[64], dt_bias[64];
  double *gk = gdn_dalloc(nhk);
  gdn_fill_normal(&rng, q, nq, 1.0);
  gdn_fill_normal(&rng, k, nq, c->l2norm ? 1.0 : 0.8 / sqrt((double)K));
  gdn_fill_normal(&rng, v, nv, 1.0);
  gdn_fill_normal(&rng, a, nh, 1.0);
  gdn_fill_normal(&rng, b, nh, 1.0);
  gdn_fill_uniform(&rng, A_log, (size_t)Hv, -1.5, 0.5);
  gdn_fill_uniform(&rng, dt_bias, (size_t)Hv, -0.5, 0.5);
  gdn_fill_uniform(&rng, gk, nhk, -0.15, 0.0);
  gdn_round_to(c->dt, q, nq);
  gdn_round_to(c->dt, k, nq);
  gdn_round_to(c->dt, v, nv);
  gdn_round_to(GDN_DTYPE_F32, a, nh);
  gdn_round_to(GDN_DTYPE_F32, b, nh);
  gdn_round_to(GDN_DTYPE_F32, A_log, (size_t)Hv);
  gdn_round_to(GDN_DTYPE_F32, dt_bias, (size_t)Hv);
  gdn_round_to(GDN_DTYPE_F32, gk, nhk);

  /* ---- reference stages */
  double *g = gdn_dalloc(nh), *beta = gdn_dalloc(nh), *g_cum = gdn_dalloc(nh), *gk_tot = gdn_dalloc(nhk),
         *gk_cum = gdn_dalloc(nhk);
  gdn_ref_gating(T, Hv, a, b, A_log, dt_bias, g, beta);
  if (!c->use_g) memset(g, 0, nh * sizeof(double));
  gdn_ref_chunk_cumsum(&sh, 1, g, g_cum);
  for (size_t i = 0; i < nhk; ++i) gk_tot[i] = gk[i] + g[i / K];
  gdn_ref_chunk_cumsum(&sh, K, gk_tot, gk_cum);
  double *qn = gdn_dalloc(nq), *kn = gdn_dalloc(nq);
  memcpy(qn, q, nq * sizeof(double));
  memcpy(kn, k, nq * sizeof(double));
  if (c->l2norm) {
    gdn_ref_l2norm(T, Hk, K, qn);
    gdn_ref_l2norm(T, Hk, K, kn);
  }
  const double *Gs = c->use_gk ? NULL : (c->use_g ? g_cum : NULL);
  const double *Gk = c->use_gk ? gk_cum : NULL;
  double *A_inv = gdn_dalloc((size_t)T * Hv * 64), *w = gdn_dalloc(nhk), *u = gdn_dalloc(nv);
  gdn_ref_kkt_solve(&sh, kn, beta, Gs, Gk, A_inv);
  gdn_ref_wy(&sh, kn, v, beta, A_inv, Gs, Gk, w, u);

  /* ---- device inputs */
  void *d_q = up(c->dt, q, nq), *d_k = up(c->dt, k, nq), *d_v = up(c->dt, v, nv);
  void *d_a = up(GDN_DTYPE_F32, a, nh), *d_b = up(GDN_DTYPE_F32, b, nh);
  void *d_Alog = up(GDN_DTYPE_F32, A_log, (size_t)Hv), *d_dtb = up(GDN_DTYPE_F32, dt_bias, (size_t)Hv);
  void *d_gk = up(GDN_DTYPE_F32, gk, nhk);
  double cu_d[9], slots_d[8];
  for (int i = 0; i <= N; ++i) cu_d[i] = cu[i];
  for (int i = 0; i < N; ++i) slots_d[i] = slots[i];
  int32_t *d_cu = (int32_t *)up(GDN_DTYPE_I32, cu_d, (size_t)N + 1);
  int32_t *d_slots = (int32_t *)up(GDN_DTYPE_I32, slots_d, (size_t)N);

  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  gdn_batch_setup_args sa;
  memset(&sa, 0, sizeof sa);
  sa.cu_seqlens = d_cu;
  sa.slots = d_slots;
  sa.num_seqs = N;
  sa.max_seqs = N;
  sa.max_tokens = T;
  sa.num_slots = NSLOT;
  sa.workspace_bytes = gdn_batch_workspace_bytes(N, T, NSLOT);
  sa.workspace = gdn_dmalloc(sa.workspace_bytes);
  gdn_batch batch;
  CHECK_OK(gdn_batch_setup_view(&sa, &batch));
  CHECK_OK(gdn_batch_setup_launch(&sa, 0));
  gdn_batch_header hdr;
  CUDA_OK(cudaMemcpy(&hdr, batch.header, sizeof hdr, cudaMemcpyDeviceToHost));
  CHECK(hdr.status == 0 && hdr.num_seqs == N && hdr.num_tokens == T && hdr.num_chunks == NT,
        "[%s] batch header {status %d, N %d, T %d, NT %d}, expected {0, %d, %d, %d}", c->name, hdr.status, hdr.num_seqs,
        hdr.num_tokens, hdr.num_chunks, N, T, NT);

  /* ---- prologue */
  float *d_gcum = (float *)gdn_dmalloc(nh * 4), *d_beta = (float *)gdn_dmalloc(nh * 4),
        *d_gkcum = (float *)gdn_dmalloc(nhk * 4);
  gdn_prologue_args pa;
  memset(&pa, 0, sizeof pa);
  pa.batch = batch;
  pa.a = gdn_tensor_2d(d_a, GDN_DTYPE_F32, T, Hv);
  pa.b = gdn_tensor_2d(d_b, GDN_DTYPE_F32, T, Hv);
  pa.A_log = gdn_tensor_1d(d_Alog, GDN_DTYPE_F32, Hv);
  pa.dt_bias = gdn_tensor_1d(d_dtb, GDN_DTYPE_F32, Hv);
  pa.use_g = c->use_g;
  pa.beta = gdn_tensor_2d(d_beta, GDN_DTYPE_F32, T, Hv);
  if (c->use_g) pa.g_cum = gdn_tensor_2d(d_gcum, GDN_DTYPE_F32, T, Hv);
  if (c->use_gk) {
    pa.gk = gdn_tensor_3d(d_gk, GDN_DTYPE_F32, T, Hv, K);
    pa.gk_cum = gdn_tensor_3d(d_gkcum, GDN_DTYPE_F32, T, Hv, K);
  }
  gdn_prologue_config pcfg;
  gdn_poison(d_gcum, nh * 4);
  gdn_poison(d_beta, nh * 4);
  gdn_poison(d_gkcum, nhk * 4);
  CHECK_OK(gdn_prologue_plan(&pa, &dev, &pcfg));
  CHECK_OK(gdn_prologue_launch(&pa, &pcfg, 0));
  double *tmp = gdn_dalloc(nhk > nv ? (nhk > (size_t)T * Hv * 64 ? nhk : (size_t)T * Hv * 64) : nv);
  gdn_download(GDN_DTYPE_F32, d_beta, nh, tmp);
  check_rel("prologue beta", c, tmp, beta, nh, 1e-5);
  if (c->use_g) {
    gdn_download(GDN_DTYPE_F32, d_gcum, nh, tmp);
    check_rel("prologue g_cum", c, tmp, g_cum, nh, 1e-4);
  }
  if (c->use_gk) {
    gdn_download(GDN_DTYPE_F32, d_gkcum, nhk, tmp);
    check_rel("prologue gk_cum", c, tmp, gk_cum, nhk, 1e-4);
  }
  /* Later stages take the reference's gates (rounded to fp32) so each stage is checked
   * on its own. */
  float *d_gin = (float *)up(GDN_DTYPE_F32, g_cum, nh), *d_bin = (float *)up(GDN_DTYPE_F32, beta, nh);
  float *d_gkin = (float *)up(GDN_DTYPE_F32, gk_cum, nhk);

  /* ---- chunk_intra: KKT_SOLVE */
  const size_t na = (size_t)T * Hv * 64;
  float *d_Ainv = (float *)gdn_dmalloc(na * 4);
  void *d_w = gdn_dmalloc(nhk * 2), *d_u = gdn_dmalloc(nv * 2);
  gdn_chunk_intra_args ia;
  memset(&ia, 0, sizeof ia);
  ia.mode = GDN_INTRA_KKT_SOLVE;
  ia.batch = batch;
  ia.k = gdn_tensor_3d(d_k, c->dt, T, Hk, K);
  ia.beta = gdn_tensor_2d(d_bin, GDN_DTYPE_F32, T, Hv);
  if (Gs) ia.g = gdn_tensor_2d(d_gin, GDN_DTYPE_F32, T, Hv);
  if (Gk) ia.gk = gdn_tensor_3d(d_gkin, GDN_DTYPE_F32, T, Hv, K);
  ia.l2norm = c->l2norm;
  ia.A_inv = gdn_tensor_3d(d_Ainv, GDN_DTYPE_F32, T, Hv, 64);
  gdn_chunk_intra_config icfg;
  gdn_poison(d_Ainv, na * 4);
  CHECK_OK(gdn_chunk_intra_plan(&ia, &dev, &icfg));
  CHECK_OK(gdn_chunk_intra_launch(&ia, &icfg, 0));
  gdn_download(GDN_DTYPE_F32, d_Ainv, na, tmp);
  check_rel("kkt_solve A_inv", c, tmp, A_inv, na, 2e-3);

  /* ---- chunk_intra: WY from the reference A_inv */
  float *d_Aref = (float *)up(GDN_DTYPE_F32, A_inv, na);
  ia.mode = GDN_INTRA_WY;
  ia.A_inv = gdn_tensor_3d(d_Aref, GDN_DTYPE_F32, T, Hv, 64);
  ia.v = gdn_tensor_3d(d_v, c->dt, T, Hv, V);
  ia.w = gdn_tensor_3d(d_w, c->dt, T, Hv, K);
  ia.u = gdn_tensor_3d(d_u, c->dt, T, Hv, V);
  gdn_poison(d_w, nhk * 2);
  gdn_poison(d_u, nv * 2);
  CHECK_OK(gdn_chunk_intra_plan(&ia, &dev, &icfg));
  CHECK_OK(gdn_chunk_intra_launch(&ia, &icfg, 0));
  gdn_download(c->dt, d_w, nhk, tmp);
  check_rel("wy w", c, tmp, w, nhk, bound16(c->dt));
  gdn_download(c->dt, d_u, nv, tmp);
  check_rel("wy u", c, tmp, u, nv, bound16(c->dt));

  /* ---- chunk_intra: FUSED, with the scan's inputs aqk (and qf, kf for the scalar gate) */
  const double scale = 1.0 / sqrt((double)K);
  const size_t nrow = (size_t)T * Hv;
  double *aqk_ref = gdn_dalloc(na), *qf_ref = gdn_dalloc(nrow), *kf_ref = gdn_dalloc(nrow);
  ref_aqk(&sh, qn, kn, Gs, Gk, scale, aqk_ref);
  ref_rnorm(T, Hk, Hv, K, q, c->l2norm, qf_ref);
  ref_rnorm(T, Hk, Hv, K, k, c->l2norm, kf_ref);
  void *d_aqk = gdn_dmalloc(na * 2);
  float *d_qf = (float *)gdn_dmalloc(nrow * 4), *d_kf = (float *)gdn_dmalloc(nrow * 4);
  ia.mode = GDN_INTRA_FUSED;
  ia.A_inv = gdn_tensor_none();
  ia.q = gdn_tensor_3d(d_q, c->dt, T, Hk, K);
  ia.scale = (float)scale;
  ia.aqk = gdn_tensor_3d(d_aqk, c->dt, T, Hv, 64);
  if (!c->use_gk) {
    ia.qf = gdn_tensor_2d(d_qf, GDN_DTYPE_F32, T, Hv);
    ia.kf = gdn_tensor_2d(d_kf, GDN_DTYPE_F32, T, Hv);
  }
  gdn_poison(d_w, nhk * 2);
  gdn_poison(d_u, nv * 2);
  gdn_poison(d_aqk, na * 2);
  gdn_poison(d_qf, nrow * 4);
  gdn_poison(d_kf, nrow * 4);
  CHECK_OK(gdn_chunk_intra_plan(&ia, &dev, &icfg));
  CHECK_OK(gdn_chunk_intra_launch(&ia, &icfg, 0));
  gdn_download(c->dt, d_w, nhk, tmp);
  check_rel("fused w", c, tmp, w, nhk, bound16(c->dt));
  gdn_download(c->dt, d_u, nv, tmp);
  check_rel("fused u", c, tmp, u, nv, bound16(c->dt));
  gdn_download(c->dt, d_aqk, na, tmp);
  check_rel("fused aqk", c, tmp, aqk_ref, na, bound16(c->dt));
  if (!c->use_gk) {
    gdn_download(GDN_DTYPE_F32, d_qf, nrow, tmp);
    check_rel("fused qf", c, tmp, qf_ref, nrow, 1e-5);
    gdn_download(GDN_DTYPE_F32, d_kf, nrow, tmp);
    check_rel("fused kf", c, tmp, kf_ref, nrow, 1e-5);
  }

  /* ---- chunk_intra FUSED with only tu (the folded WY form): Tu = A_inv diag(beta), no w / u */
  double *tu_ref = gdn_dalloc(na);
  for (int sq = 0; sq < N; ++sq)
    for (int t = cu[sq]; t < cu[sq + 1]; ++t) {
      const int c0 = cu[sq] + (t - cu[sq]) / 64 * 64;
      for (int h = 0; h < Hv; ++h)
        for (int j = 0; j < 64; ++j) {
          const size_t at = ((size_t)t * Hv + h) * 64 + j;
          tu_ref[at] = c0 + j <= t ? A_inv[at] * beta[(size_t)(c0 + j) * Hv + h] : 0.0;
        }
    }
  void *d_tu = gdn_dmalloc(na * 2);
  if (!c->use_gk) {
    gdn_chunk_intra_args ta = ia;
    ta.w = gdn_tensor_none();
    ta.u = gdn_tensor_none();
    ta.v = gdn_tensor_none(); /* not read without w and u */
    ta.tu = gdn_tensor_3d(d_tu, c->dt, T, Hv, 64);
    gdn_chunk_intra_config tcfg;
    gdn_poison(d_tu, na * 2);
    gdn_poison(d_aqk, na * 2);
    CHECK_OK(gdn_chunk_intra_plan(&ta, &dev, &tcfg));
    CHECK(tcfg.smem_bytes < icfg.smem_bytes, "[%s] tu-only intra should not stage v: %zu vs %zu bytes", c->name,
          tcfg.smem_bytes, icfg.smem_bytes);
    CHECK_OK(gdn_chunk_intra_launch(&ta, &tcfg, 0));
    gdn_download(c->dt, d_tu, na, tmp);
    check_rel("fused tu", c, tmp, tu_ref, na, bound16(c->dt));
    gdn_download(c->dt, d_aqk, na, tmp);
    check_rel("fused aqk (tu mode)", c, tmp, aqk_ref, na, bound16(c->dt));
  } else {
    gdn_chunk_intra_args ta = ia;
    ta.tu = gdn_tensor_3d(d_tu, c->dt, T, Hv, 64);
    gdn_chunk_intra_config tcfg;
    CHECK_FAIL_NAMES(gdn_chunk_intra_plan(&ta, &dev, &tcfg), GDN_ERROR_UNSUPPORTED, "tu");
  }

  /* ---- chunk_delta_h on the reference's (rounded) w, u and key */
  const int Hkk = c->use_gk ? Hv : Hk;
  double *kk = gdn_dalloc((size_t)T * Hkk * K);
  if (c->use_gk) gdn_ref_gate_qk(&sh, qn, kn, NULL, gk_cum, NULL, kk);
  else memcpy(kk, kn, nq * sizeof(double));
  gdn_round_to(c->dt, kk, (size_t)T * Hkk * K);
  gdn_round_to(c->dt, w, nhk);
  gdn_round_to(c->dt, u, nv);
  double *pool0 = gdn_dalloc(npool);
  gdn_fill_normal(&rng, pool0, npool, 0.1);
  gdn_round_to(GDN_DTYPE_F32, pool0, npool);
  double *pool_ref = gdn_dalloc(npool), *h_ref = gdn_dalloc((size_t)NT * Hv * K * V), *vn_ref = gdn_dalloc(nv);
  memcpy(pool_ref, pool0, npool * sizeof(double));
  gdn_ref_chunk_delta_h(&sh, Hkk, kk, w, u, c->use_gk ? NULL : Gs, Gk, pool_ref, slots, h_ref, vn_ref);

  void *d_kk = up(c->dt, kk, (size_t)T * Hkk * K), *d_wr = up(c->dt, w, nhk), *d_ur = up(c->dt, u, nv);
  float *d_pool = (float *)up(GDN_DTYPE_F32, pool0, npool);
  const size_t nhout = (size_t)NT * Hv * K * V;
  /* h covers the batch's chunk capacity (a bound >= NT); only the first NT are compared */
  const size_t nhcap = (size_t)batch.max_chunks * Hv * K * V;
  float *d_h = (float *)gdn_dmalloc(nhcap * 4);
  void *d_vn = gdn_dmalloc(nv * 2);
  gdn_chunk_delta_h_args da;
  memset(&da, 0, sizeof da);
  da.batch = batch;
  da.k = gdn_tensor_3d(d_kk, c->dt, T, Hkk, K);
  da.w = gdn_tensor_3d(d_wr, c->dt, T, Hv, K);
  da.u = gdn_tensor_3d(d_ur, c->dt, T, Hv, V);
  if (Gs) da.g = gdn_tensor_2d(d_gin, GDN_DTYPE_F32, T, Hv);
  if (Gk) da.gk = gdn_tensor_3d(d_gkin, GDN_DTYPE_F32, T, Hv, K);
  da.state = gdn_tensor_4d(d_pool, GDN_DTYPE_F32, NSLOT, Hv, V, K);
  da.h = gdn_tensor_4d(d_h, GDN_DTYPE_F32, batch.max_chunks, Hv, K, V);
  da.v_new = gdn_tensor_3d(d_vn, c->dt, T, Hv, V);

  /* every buildable configuration gives the same answer */
  /* column-split (BV = 16 x warps, K <= 128; 2: on warpgroup tensor cores, K = 128) and
   * row-group kernels */
  /* 3: the key-row warpgroup scan (chunk_delta_h on compute capability 9.0, K = 128) */
  static const int some[][4] = {{0, 0, 0, 0},  {32, 2, 2, 1}, {64, 4, 3, 1}, {128, 8, 2, 1}, {64, 4, 3, 2},
                                {128, 8, 2, 2}, {128, 8, 1, 2}, {32, 4, 1, 0}, {32, 4, 2, 0}, {32, 8, 3, 0},
                                {64, 4, 3, 0},  {64, 8, 2, 0},  {32, 4, 2, 3}, {32, 4, 3, 3}, {64, 8, 2, 3},
                                {128, 16, 2, 3}};
  /* GDN_TEST_ALL_CONFIGS: every override combination the planner admits (BV x warps x stages x kernel) */
  int all[1 + 3 * 4 * 4 * 4][4] = {{0, 0, 0, 0}}, nall = 1;
  for (int bv = 32; bv <= 128; bv *= 2)
    for (int wp = 2; wp <= 16; wp *= 2)
      for (int sg = 1; sg <= 4; ++sg)
        for (int col = 0; col < 4; ++col) {
          int *e = all[nall++];
          e[0] = bv; e[1] = wp; e[2] = sg; e[3] = col;
        }
  const int every = getenv("GDN_TEST_ALL_CONFIGS") != NULL;
  const int (*configs)[4] = every ? (const int (*)[4])all : some;
  const size_t nconfigs = every ? (size_t)nall : sizeof some / sizeof some[0];
  float *pool_host = (float *)gdn_xmalloc(npool * 4), *pool0_f = (float *)gdn_xmalloc(npool * 4);
  gdn_pack(GDN_DTYPE_F32, pool0, npool, pool0_f);
  int ran_wg = 0, ran_kr = 0; /* runs of the warpgroup kernels: exercised on compute capability 9.0 */
  for (size_t ci = 0; ci < nconfigs; ++ci) {
    if (configs[ci][0] && V % configs[ci][0] != 0) continue;
    gdn_test_scan_env(configs[ci][0], configs[ci][1], configs[ci][2], configs[ci][3]);
    gdn_scan_config scfg;
    gdn_status ps = gdn_chunk_delta_h_plan(&da, &dev, &scfg);
    gdn_test_scan_env(0, 0, 0, -1);
    if (ps == GDN_ERROR_UNSUPPORTED) continue; /* does not fit this device's shared memory */
    CHECK(ps == GDN_SUCCESS, "[%s] plan config %zu: %s", c->name, ci, gdn_get_last_error());
    ran_wg += scfg.column_split == 2;
    ran_kr += scfg.column_split == 3;
    CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
    gdn_poison(d_h, nhcap * 4);
    gdn_poison(d_vn, nv * 2);
    CHECK_OK(gdn_chunk_delta_h_launch(&da, &scfg, 0));
    CUDA_OK(cudaDeviceSynchronize());
    char what[96];
    double *hh = gdn_dalloc(nhout);
    gdn_download(GDN_DTYPE_F32, d_h, nhout, hh);
    snprintf(what, sizeof what, "delta_h h (BV %d, %d warps, %d stages)", scfg.bv, scfg.num_warps, scfg.num_stages);
    check_rel(what, c, hh, h_ref, nhout, bound16(c->dt));
    free(hh);
    gdn_download(c->dt, d_vn, nv, tmp);
    snprintf(what, sizeof what, "delta_h v_new (BV %d)", scfg.bv);
    check_rel(what, c, tmp, vn_ref, nv, bound16(c->dt));
    double *pp = gdn_dalloc(npool);
    gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
    snprintf(what, sizeof what, "delta_h final state (BV %d)", scfg.bv);
    check_rel(what, c, pp, pool_ref, npool, bound16(c->dt));
    free(pp);
    /* slots not named by any sequence stay bit-identical */
    CUDA_OK(cudaMemcpy(pool_host, d_pool, npool * 4, cudaMemcpyDeviceToHost));
    for (int s = 0; s < NSLOT; ++s) {
      int used = 0;
      for (int i = 0; i < N; ++i) used |= slots[i] == s;
      if (used) continue;
      size_t off = (size_t)s * Hv * V * K;
      CHECK(memcmp(pool_host + off, pool0_f + off, (size_t)Hv * V * K * 4) == 0, "[%s] untouched slot %d changed",
            c->name, s);
    }
  }

  if (dev.cc_major == 9 && dev.cc_minor == 0 && K == 128 && V % 64 == 0)
    CHECK(ran_wg > 0, "[%s] the warpgroup scan kernel never ran on compute capability 9.0", c->name);
  if (dev.cc_major == 9 && dev.cc_minor == 0 && K == 128)
    CHECK(ran_kr > 0, "[%s] the key-row warpgroup scan never ran on compute capability 9.0", c->name);

  /* context parallelism: the same batch cut into segments of L chunks on the device (L = 1
   * and 2: every chunk boundary a segment boundary), transition + combine + scan, on the
   * row-group and the column-split kernel; h, v_new and the final state as without */
  for (int seg = 1; seg <= 2; ++seg) {
    gdn_batch_setup_args sc = sa;
    sc.cp_min_chunks = seg;
    sc.cp_heads = Hv;
    sc.cp_units = NT * Hv;      /* L = max(seg, ceil(chunks Hv / units)) = seg */
    sc.cp_max_pairs = 1 << 20;  /* always segment */
    sc.workspace_bytes = gdn_batch_workspace_bytes_for(&sc);
    sc.workspace = gdn_dmalloc(sc.workspace_bytes);
    gdn_batch sb;
    CHECK_OK(gdn_batch_setup_view(&sc, &sb));
    CHECK_OK(gdn_batch_setup_launch(&sc, 0));
    gdn_batch_header sh2;
    CUDA_OK(cudaMemcpy(&sh2, sb.header, sizeof sh2, cudaMemcpyDeviceToHost));
    int want_segs = 0;
    for (int i = 0; i < N; ++i) want_segs += c->lens[i] <= 64 * seg ? 1 : (c->lens[i] + 64 * seg - 1) / (64 * seg);
    CHECK(sh2.status == 0 && sh2.num_segments == want_segs, "[%s] L=%d: %d segments (status %d), expected %d", c->name,
          seg, sh2.num_segments, sh2.status, want_segs);
    gdn_chunk_delta_h_args ds = da;
    ds.batch = sb;
    ds.h = gdn_tensor_4d(d_h, GDN_DTYPE_F32, sb.max_chunks, Hv, K, V);
    ds.cp_workspace_bytes = gdn_scan_cp_workspace_bytes(&sb, Hv, V, K);
    ds.cp_workspace = gdn_dmalloc(ds.cp_workspace_bytes);
    static const char *kname[] = {"row groups", "column split", "warpgroup column split", "key rows",
                                  "key rows BV 128"};
    for (int ki = 0; ki < 5; ++ki) {
      const int kernel = ki < 4 ? ki : 3;
      if (kernel >= 1 && K > 128) continue;
      if (ki == 4) gdn_test_scan_env(128, 16, 2, 3); /* two identity blocks' worth of rows in one CTA */
      else gdn_test_scan_env(kernel == 3 ? 32 : kernel ? 64 : 32, 4, 2, kernel);
      gdn_scan_config scfg;
      gdn_status ps = gdn_chunk_delta_h_plan(&ds, &dev, &scfg);
      gdn_test_scan_env(0, 0, 0, -1);
      if (ps == GDN_ERROR_UNSUPPORTED || (kernel && kernel < 3 && V % 64 != 0)) continue;
      CHECK(ps == GDN_SUCCESS && scfg.cp_stages > 0, "[%s] segmented plan: %s", c->name, gdn_get_last_error());
      CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
      gdn_poison(d_h, nhcap * 4);
      gdn_poison(d_vn, nv * 2);
      gdn_poison(ds.cp_workspace, ds.cp_workspace_bytes);
      CHECK_OK(gdn_chunk_delta_h_launch(&ds, &scfg, 0));
      CUDA_OK(cudaDeviceSynchronize());
      char what[96];
      double *hh = gdn_dalloc(nhout), *pp = gdn_dalloc(npool);
      gdn_download(GDN_DTYPE_F32, d_h, nhout, hh);
      snprintf(what, sizeof what, "delta_h segmented L=%d %s: h", seg, kname[ki]);
      check_rel(what, c, hh, h_ref, nhout, bound16(c->dt));
      gdn_download(c->dt, d_vn, nv, tmp);
      snprintf(what, sizeof what, "delta_h segmented L=%d %s: v_new", seg, kname[ki]);
      check_rel(what, c, tmp, vn_ref, nv, bound16(c->dt));
      gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
      snprintf(what, sizeof what, "delta_h segmented L=%d %s: final state", seg, kname[ki]);
      check_rel(what, c, pp, pool_ref, npool, bound16(c->dt));
      free(hh);
      free(pp);
    }
    cudaFree(ds.cp_workspace);
    cudaFree(sc.workspace);
  }

  /* the pool is updated exactly once per launch: a second launch == a second reference step */
  {
    gdn_scan_config scfg;
    CHECK_OK(gdn_chunk_delta_h_plan(&da, &dev, &scfg));
    CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
    CHECK_OK(gdn_chunk_delta_h_launch(&da, &scfg, 0));
    CHECK_OK(gdn_chunk_delta_h_launch(&da, &scfg, 0));
    double *pool_ref2 = gdn_dalloc(npool);
    memcpy(pool_ref2, pool0, npool * sizeof(double));
    gdn_ref_chunk_delta_h(&sh, Hkk, kk, w, u, c->use_gk ? NULL : Gs, Gk, pool_ref2, slots, NULL, NULL);
    gdn_ref_chunk_delta_h(&sh, Hkk, kk, w, u, c->use_gk ? NULL : Gs, Gk, pool_ref2, slots, NULL, NULL);
    double *pp = gdn_dalloc(npool);
    gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
    check_rel("delta_h state after 2 launches", c, pp, pool_ref2, npool, bound16(c->dt));
    free(pp);
    free(pool_ref2);
  }

  /* ---- the state-pool forms on chunk_delta_h, on the planned kernel and each one by override:
   * a bf16 pool read from slots and written to a copy-on-write row (slots_out: sequence 0 to
   * row 0, the others in place or nowhere), checkpoints after every chunk, a bf16 h (the
   * 16-byte staged store). Oracle: the float64 recurrence from the bf16-rounded pool; every
   * pool and checkpoint row not written keeps its bits. */
  {
    int32_t sout[8], ckoff[8];
    int ck_rows = 1; /* row 0 never named */
    for (int i = 0; i < N; ++i) {
      sout[i] = i == 0 ? 0 : slots[i];
      ckoff[i] = c->lens[i] >= 64 ? ck_rows : -1; /* full chunks end a checkpoint each */
      ck_rows += c->lens[i] / 64;
    }
    /* reference: every sequence's final state from its own row (zero rows for slot -1) */
    const size_t srow = (size_t)Hv * V * K;
    double *pool_b = gdn_dalloc(npool), *scratch = gdn_dalloc(srow * (NSLOT + N)), *h_s = gdn_dalloc(nhout);
    memcpy(pool_b, pool0, npool * sizeof(double));
    gdn_round_to(GDN_DTYPE_BF16, pool_b, npool);
    memcpy(scratch, pool_b, npool * sizeof(double));
    int32_t sref[8];
    for (int i = 0; i < N; ++i) sref[i] = slots[i] >= 0 ? slots[i] : NSLOT + i;
    gdn_ref_shape sh2 = sh;
    gdn_ref_chunk_delta_h(&sh2, Hkk, kk, w, u, c->use_gk ? NULL : Gs, Gk, scratch, sref, h_s, NULL);
    double *want_pool = gdn_dalloc(npool), *want_ck = gdn_dalloc(srow * (size_t)ck_rows);
    char *pool_written = (char *)calloc((size_t)NSLOT, 1), *ck_written = (char *)calloc((size_t)ck_rows, 1);
    memcpy(want_pool, pool_b, npool * sizeof(double));
    for (int i = 0; i < N; ++i) {
      if (sout[i] >= 0) {
        memcpy(want_pool + srow * sout[i], scratch + srow * sref[i], srow * sizeof(double));
        pool_written[sout[i]] = 1;
      }
      const int nch = (c->lens[i] + 63) / 64;
      int32_t c0 = 0;
      for (int j = 0; j < i; ++j) c0 += (c->lens[j] + 63) / 64;
      for (int m = 1; m <= c->lens[i] / 64; ++m) {
        double *dst = want_ck + srow * (size_t)(ckoff[i] + m - 1);
        ck_written[ckoff[i] + m - 1] = 1;
        if (m < nch) { /* the state entering chunk m: h [K][V] -> [V][K] */
          for (int hh = 0; hh < Hv; ++hh)
            for (int kx = 0; kx < K; ++kx)
              for (int vx = 0; vx < V; ++vx)
                dst[((size_t)hh * V + vx) * K + kx] = h_s[(((size_t)(c0 + m) * Hv + hh) * K + kx) * V + vx];
        } else {
          memcpy(dst, scratch + srow * sref[i], srow * sizeof(double));
        }
      }
    }
    int32_t *d_sout = (int32_t *)gdn_dmalloc(sizeof(int32_t) * 8), *d_ckoff = (int32_t *)gdn_dmalloc(sizeof(int32_t) * 8);
    CUDA_OK(cudaMemcpy(d_sout, sout, sizeof(int32_t) * (size_t)N, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_ckoff, ckoff, sizeof(int32_t) * (size_t)N, cudaMemcpyHostToDevice));
    gdn_batch_setup_args sp = sa;
    sp.slots_out = d_sout;
    sp.state_aliased = 1;
    sp.checkpoint_offsets = d_ckoff;
    sp.checkpoint_every = 64;
    sp.num_checkpoints = ck_rows;
    sp.workspace_bytes = gdn_batch_workspace_bytes_for(&sp);
    sp.workspace = gdn_dmalloc(sp.workspace_bytes);
    gdn_batch bp;
    CHECK_OK(gdn_batch_setup_view(&sp, &bp));
    CHECK_OK(gdn_batch_setup_launch(&sp, 0));
    void *d_pb = up(GDN_DTYPE_BF16, pool_b, npool), *d_ck = gdn_dmalloc(srow * (size_t)ck_rows * 4);
    void *pb_host = gdn_download_raw(d_pb, npool * 2);
    gdn_chunk_delta_h_args dp = da;
    dp.batch = bp;
    dp.state = gdn_tensor_4d(d_pb, GDN_DTYPE_BF16, NSLOT, Hv, V, K);
    dp.checkpoints = gdn_tensor_4d(d_ck, GDN_DTYPE_F32, ck_rows, Hv, V, K);
    dp.checkpoint_every = 64;
    dp.h = gdn_tensor_4d(d_h, c->dt, batch.max_chunks, Hv, K, V); /* 16-bit h: the staged 16-byte stores */
    static const int pcfgs[][4] = {{0, 0, 0, -1}, {32, 4, 2, 3}, {64, 8, 2, 3}, {64, 4, 2, 2}, {64, 4, 2, 1}, {32, 4, 2, 0}};
    int ran_kr_pool = 0;
    for (size_t ci = 0; ci < sizeof pcfgs / sizeof pcfgs[0]; ++ci) {
      if (pcfgs[ci][0] && V % pcfgs[ci][0] != 0) continue;
      gdn_test_scan_env(pcfgs[ci][0], pcfgs[ci][1], pcfgs[ci][2], pcfgs[ci][3]);
      gdn_scan_config scfg;
      gdn_status ps = gdn_chunk_delta_h_plan(&dp, &dev, &scfg);
      gdn_test_scan_env(0, 0, 0, -1);
      if (ps == GDN_ERROR_UNSUPPORTED) continue;
      CHECK(ps == GDN_SUCCESS, "[%s] pool-forms plan %zu: %s", c->name, ci, gdn_get_last_error());
      ran_kr_pool += scfg.column_split == 3;
      CUDA_OK(cudaMemcpy(d_pb, pb_host, npool * 2, cudaMemcpyHostToDevice));
      gdn_poison(d_ck, srow * (size_t)ck_rows * 4);
      void *ck_before = gdn_download_raw(d_ck, srow * (size_t)ck_rows * 4);
      gdn_poison(d_h, nhcap * 4);
      CHECK_OK(gdn_chunk_delta_h_launch(&dp, &scfg, 0));
      CUDA_OK(cudaDeviceSynchronize());
      char what[128];
      double *hh = gdn_dalloc(nhout);
      gdn_download(c->dt, d_h, nhout, hh);
      snprintf(what, sizeof what, "pool forms (kernel %d, BV %d): 16-bit h", scfg.column_split, scfg.bv);
      check_rel(what, c, hh, h_s, nhout, bound16(c->dt));
      free(hh);
      uint16_t *pool_got = (uint16_t *)gdn_download_raw(d_pb, npool * 2);
      double *pg = gdn_dalloc(srow), *wg = gdn_dalloc(srow);
      for (int r = 0; r < NSLOT; ++r) {
        if (!pool_written[r]) {
          CHECK(memcmp(pool_got + srow * r, (uint16_t *)pb_host + srow * r, srow * 2) == 0,
                "[%s] pool forms (kernel %d): row %d not written changed", c->name, scfg.column_split, r);
          continue;
        }
        gdn_unpack(GDN_DTYPE_BF16, pool_got + srow * r, srow, pg);
        memcpy(wg, want_pool + srow * r, srow * sizeof(double));
        snprintf(what, sizeof what, "pool forms (kernel %d, BV %d): bf16 row %d", scfg.column_split, scfg.bv, r);
        check_rel(what, c, pg, wg, srow, bound16(c->dt));
      }
      float *ck_got = (float *)gdn_download_raw(d_ck, srow * (size_t)ck_rows * 4);
      for (int r = 0; r < ck_rows; ++r) {
        if (!ck_written[r]) {
          CHECK(memcmp(ck_got + srow * r, (float *)ck_before + srow * r, srow * 4) == 0,
                "[%s] pool forms (kernel %d): checkpoint row %d not written changed", c->name, scfg.column_split, r);
          continue;
        }
        for (size_t e = 0; e < srow; ++e) pg[e] = ck_got[srow * r + e];
        snprintf(what, sizeof what, "pool forms (kernel %d, BV %d): checkpoint %d", scfg.column_split, scfg.bv, r);
        check_rel(what, c, pg, want_ck + srow * r, srow, bound16(c->dt));
      }
      free(pool_got); free(ck_got); free(ck_before); free(pg); free(wg);
    }
    if (dev.cc_major == 9 && dev.cc_minor == 0 && K == 128)
      CHECK(ran_kr_pool > 0, "[%s] pool forms: the key-row warpgroup scan never ran on compute capability 9.0", c->name);
    cudaFree(d_pb); cudaFree(d_ck); cudaFree(d_sout); cudaFree(d_ckoff); cudaFree(sp.workspace);
    free(pb_host); free(pool_b); free(scratch); free(h_s); free(want_pool); free(want_ck);
    free(pool_written); free(ck_written);
  }

  /* ---- chunk_delta_h with BOTH gates as FLA passes them: g scalar (scales v_new, S) and
   * gk per key (S rows), with the key gated by gk alone */
  if (c->use_g && c->use_gk) {
    double *gko = gdn_dalloc(nhk), *kk2 = gdn_dalloc(nhk);
    gdn_ref_chunk_cumsum(&sh, K, gk, gko);
    gdn_ref_gate_qk(&sh, qn, kn, NULL, gko, NULL, kk2);
    gdn_round_to(c->dt, kk2, nhk);
    double *pool_b = gdn_dalloc(npool), *h_b = gdn_dalloc(nhout), *vn_b = gdn_dalloc(nv);
    memcpy(pool_b, pool0, npool * sizeof(double));
    gdn_ref_chunk_delta_h(&sh, Hv, kk2, w, u, g_cum, gko, pool_b, slots, h_b, vn_b);
    void *d_kk2 = up(c->dt, kk2, nhk);
    float *d_gko = (float *)up(GDN_DTYPE_F32, gko, nhk);
    gdn_chunk_delta_h_args db = da;
    db.k = gdn_tensor_3d(d_kk2, c->dt, T, Hv, K);
    db.g = gdn_tensor_2d(d_gin, GDN_DTYPE_F32, T, Hv);
    db.gk = gdn_tensor_3d(d_gko, GDN_DTYPE_F32, T, Hv, K);
    gdn_scan_config scfg;
    CHECK_OK(gdn_chunk_delta_h_plan(&db, &dev, &scfg));
    CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
    gdn_poison(d_h, nhcap * 4);
    gdn_poison(d_vn, nv * 2);
    CHECK_OK(gdn_chunk_delta_h_launch(&db, &scfg, 0));
    double *hh = gdn_dalloc(nhout), *pp = gdn_dalloc(npool);
    gdn_download(GDN_DTYPE_F32, d_h, nhout, hh);
    check_rel("delta_h g+gk h", c, hh, h_b, nhout, bound16(c->dt));
    gdn_download(c->dt, d_vn, nv, tmp);
    check_rel("delta_h g+gk v_new", c, tmp, vn_b, nv, bound16(c->dt));
    gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
    check_rel("delta_h g+gk final state", c, pp, pool_b, npool, bound16(c->dt));
    cudaFree(d_kk2); cudaFree(d_gko);
    free(gko); free(kk2); free(pool_b); free(h_b); free(vn_b); free(hh); free(pp);
  }

  /* ---- chunk_scan_o (scalar-gate path) on reference inputs: o and state */
  if (!c->use_gk) {
    double *o_ref = gdn_dalloc(nv);
    double *h_fresh = gdn_dalloc(nhout), *vn_fresh = gdn_dalloc(nv), *pool_r = gdn_dalloc(npool);
    memcpy(pool_r, pool0, npool * sizeof(double));
    gdn_ref_chunk_delta_h(&sh, Hk, kn, w, u, Gs, NULL, pool_r, slots, h_fresh, vn_fresh);
    gdn_ref_chunk_o(&sh, qn, kn, vn_fresh, h_fresh, Gs, scale, o_ref);
    void *d_o = gdn_dmalloc(nv * 2);
    void *d_aqk_ref = up(c->dt, aqk_ref, na);
    float *d_qf_ref = (float *)up(GDN_DTYPE_F32, qf_ref, nrow), *d_kf_ref = (float *)up(GDN_DTYPE_F32, kf_ref, nrow);
    CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
    gdn_chunk_scan_o_args oa;
    memset(&oa, 0, sizeof oa);
    oa.batch = batch;
    oa.q = gdn_tensor_3d(d_q, c->dt, T, Hk, K);
    oa.k = gdn_tensor_3d(d_k, c->dt, T, Hk, K);
    oa.w = da.w;
    oa.u = da.u;
    oa.g = da.g;
    oa.aqk = gdn_tensor_3d(d_aqk_ref, c->dt, T, Hv, 64);
    if (c->l2norm) {
      oa.qf = gdn_tensor_2d(d_qf_ref, GDN_DTYPE_F32, T, Hv);
      oa.kf = gdn_tensor_2d(d_kf_ref, GDN_DTYPE_F32, T, Hv);
    }
    oa.state = da.state;
    oa.o = gdn_tensor_3d(d_o, c->dt, T, Hv, V);
    oa.scale = (float)scale;
    /* the planned default, then both kernels by override (unbuildable ones are skipped) */
    static const int ocfgs[][4] = {{0, 0, 0, -1}, {32, 2, 1, -1}, {128, 8, 2, 1}, {128, 8, 2, 2},
                                   {64, 4, 3, 2}, {64, 4, 1, 2},  {32, 8, 3, -1}};
    double *pp = gdn_dalloc(npool);
    for (size_t ci = 0; ci < sizeof ocfgs / sizeof ocfgs[0]; ++ci) {
      if (ocfgs[ci][0] && V % ocfgs[ci][0] != 0) continue;
      gdn_test_scan_env(ocfgs[ci][0], ocfgs[ci][1], ocfgs[ci][2], ocfgs[ci][3]);
      gdn_scan_config scfg;
      gdn_status ps = gdn_chunk_scan_o_plan(&oa, &dev, &scfg);
      gdn_test_scan_env(0, 0, 0, -1);
      if (ps == GDN_ERROR_UNSUPPORTED && ocfgs[ci][0]) continue;
      CHECK(ps == GDN_SUCCESS, "[%s] scan_o plan config %zu: %s", c->name, ci, gdn_get_last_error());
      CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
      gdn_poison(d_o, nv * 2);
      CHECK_OK(gdn_chunk_scan_o_launch(&oa, &scfg, 0));
      char what[96];
      gdn_download(c->dt, d_o, nv, tmp);
      snprintf(what, sizeof what, "scan_o o (BV %d, %d warps, %d stages)", scfg.bv, scfg.num_warps, scfg.num_stages);
      check_rel(what, c, tmp, o_ref, nv, 2 * bound16(c->dt));
      gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
      snprintf(what, sizeof what, "scan_o final state (BV %d, %d warps, %d stages)", scfg.bv, scfg.num_warps,
               scfg.num_stages);
      check_rel(what, c, pp, pool_r, npool, bound16(c->dt));
    }
    /* the folded WY form: raw v and the reference Tu instead of w and u */
    gdn_round_to(c->dt, tu_ref, na);
    void *d_tur = up(c->dt, tu_ref, na);
    gdn_chunk_scan_o_args fa = oa;
    fa.w = gdn_tensor_none();
    fa.u = gdn_tensor_none();
    fa.v = gdn_tensor_3d(d_v, c->dt, T, Hv, V);
    fa.tu = gdn_tensor_3d(d_tur, c->dt, T, Hv, 64);
    static const int fcfgs[][4] = {{0, 0, 0, -1},  {32, 2, 2, -1}, {64, 4, 1, 1}, {128, 8, 3, 1},
                                   {64, 4, 1, 2},  {128, 8, 3, 2}, {128, 8, 2, 2}};
    for (size_t ci = 0; ci < sizeof fcfgs / sizeof fcfgs[0]; ++ci) {
      if (fcfgs[ci][0] && V % fcfgs[ci][0] != 0) continue;
      gdn_test_scan_env(fcfgs[ci][0], fcfgs[ci][1], fcfgs[ci][2], fcfgs[ci][3]);
      gdn_scan_config scfg;
      gdn_status ps = gdn_chunk_scan_o_plan(&fa, &dev, &scfg);
      gdn_test_scan_env(0, 0, 0, -1);
      if (K > 128) {
        CHECK(ps == GDN_ERROR_UNSUPPORTED, "[%s] folded form accepted for K = %d", c->name, K);
        break;
      }
      if (ps == GDN_ERROR_UNSUPPORTED && fcfgs[ci][0]) continue;
      CHECK(ps == GDN_SUCCESS, "[%s] folded scan_o plan config %zu: %s", c->name, ci, gdn_get_last_error());
      CHECK(scfg.column_split && scfg.o_mode == 2, "[%s] folded plan: column_split %d o_mode %d", c->name,
            scfg.column_split, scfg.o_mode);
      CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
      gdn_poison(d_o, nv * 2);
      CHECK_OK(gdn_chunk_scan_o_launch(&fa, &scfg, 0));
      char what[96];
      gdn_download(c->dt, d_o, nv, tmp);
      snprintf(what, sizeof what, "folded scan_o o (BV %d, %d stages)", scfg.bv, scfg.num_stages);
      check_rel(what, c, tmp, o_ref, nv, 2 * bound16(c->dt));
      gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
      snprintf(what, sizeof what, "folded scan_o final state (BV %d, %d stages)", scfg.bv, scfg.num_stages);
      check_rel(what, c, pp, pool_r, npool, bound16(c->dt));
    }
    /* the output norm, o <- gated_rmsnorm(o, z), applied as the folded scan writes o: on the
     * warpgroup kernel over whole rows (cc 9.0, K = V = 128), refused elsewhere. Against the
     * float64 reference on the 16-bit o, and against the scan followed by gdn_gated_rmsnorm on
     * the GPU (the same math on the same o: equal up to the sum's order) */
    if (K <= 128) {
      double *z = gdn_dalloc(nv), *nwt = gdn_dalloc((size_t)V), *o16 = gdn_dalloc(nv), *on_ref = gdn_dalloc(nv);
      double *sep = gdn_dalloc(nv);
      gdn_fill_normal(&rng, z, nv, 2.0);
      gdn_round_to(c->dt, z, nv);
      gdn_fill_uniform(&rng, nwt, (size_t)V, 0.5, 1.5);
      gdn_round_to(GDN_DTYPE_BF16, nwt, (size_t)V);
      memcpy(o16, o_ref, nv * sizeof(double));
      gdn_round_to(c->dt, o16, nv);
      const double eps = 1e-5;
      gdn_ref_gated_rmsnorm(T, Hv, V, o16, z, nwt, eps, on_ref);
      void *d_z = up(c->dt, z, nv), *d_nw = up(GDN_DTYPE_BF16, nwt, (size_t)V), *d_on = gdn_dmalloc(nv * 2);
      gdn_chunk_scan_o_args na = fa;
      na.norm_z = gdn_tensor_3d(d_z, c->dt, T, Hv, V);
      na.norm_weight = gdn_tensor_1d(d_nw, GDN_DTYPE_BF16, V);
      na.norm_eps = eps;
      na.o = gdn_tensor_3d(d_on, c->dt, T, Hv, V);
      gdn_scan_config ncfg;
      const gdn_status ps = gdn_chunk_scan_o_plan(&na, &dev, &ncfg);
      /* the planned depth, then two stages */
      const int fusable = dev.cc_major == 9 && dev.cc_minor == 0 && K == 128 && V == 128;
      for (int stages = 0; stages <= (fusable ? 2 : 0); stages += 2) {
        if (fusable) {
          if (stages) {
            setenv("GDN_CHUNK_H_NUM_STAGES", "2", 1);
            CHECK_OK(gdn_chunk_scan_o_plan(&na, &dev, &ncfg));
            unsetenv("GDN_CHUNK_H_NUM_STAGES");
            CHECK(ncfg.num_stages == stages, "[%s] output-norm plan: %d stages", c->name, ncfg.num_stages);
          }
          CHECK(ps == GDN_SUCCESS, "[%s] output-norm plan: %s", c->name, gdn_get_last_error());
          CHECK(ncfg.o_mode == 4 && ncfg.column_split == 2 && ncfg.bv == V, "[%s] output-norm plan: o_mode %d col %d BV %d",
                c->name, ncfg.o_mode, ncfg.column_split, ncfg.bv);
          /* the scan then the separate norm, in place */
          gdn_scan_config scfg;
          CHECK_OK(gdn_chunk_scan_o_plan(&fa, &dev, &scfg));
          CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
          CHECK_OK(gdn_chunk_scan_o_launch(&fa, &scfg, 0));
          gdn_gated_rmsnorm_args ga;
          memset(&ga, 0, sizeof ga);
          ga.x = fa.o;
          ga.z = na.norm_z;
          ga.weight = na.norm_weight;
          ga.out = fa.o;
          ga.eps = eps;
          gdn_gated_rmsnorm_config gcfg;
          CHECK_OK(gdn_gated_rmsnorm_plan(&ga, &dev, &gcfg));
          CHECK_OK(gdn_gated_rmsnorm_launch(&ga, &gcfg, 0));
          gdn_download(c->dt, d_o, nv, sep);
          /* fused, from a fresh pool */
          CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
          gdn_poison(d_on, nv * 2);
          CHECK_OK(gdn_chunk_scan_o_launch(&na, &ncfg, 0));
          gdn_download(c->dt, d_on, nv, tmp);
          check_rel("folded scan_o with the output norm vs float64", c, tmp, on_ref, nv, 3 * bound16(c->dt));
          check_rel("folded scan_o with the output norm vs scan + gated_rmsnorm", c, tmp, sep, nv, 0.25 * bound16(c->dt));
          gdn_download(GDN_DTYPE_F32, d_pool, npool, pp);
          check_rel("folded scan_o with the output norm: final state", c, pp, pool_r, npool, bound16(c->dt));
          /* a weight without its gate, and an o overlapping z, are refused */
          gdn_chunk_scan_o_args bad_args = na;
          bad_args.norm_z = gdn_tensor_none();
          CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&bad_args, &dev, &ncfg), GDN_ERROR_INVALID_ARGUMENT, "norm_weight");
          bad_args = na;
          bad_args.o = na.norm_z;
          CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&bad_args, &dev, &ncfg), GDN_ERROR_INVALID_ARGUMENT, "norm_z");
        } else {
          CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&na, &dev, &ncfg), GDN_ERROR_UNSUPPORTED, "norm_z");
        }
      }
      cudaFree(d_z); cudaFree(d_nw); cudaFree(d_on);
      free(z); free(nwt); free(o16); free(on_ref); free(sep);
    }
    /* both forms at once is refused */
    fa.w = oa.w;
    gdn_scan_config bad;
    CHECK_FAIL_NAMES(gdn_chunk_scan_o_plan(&fa, &dev, &bad), GDN_ERROR_INVALID_ARGUMENT, "not both");
    cudaFree(d_tur);
    free(pp);
    cudaFree(d_o); cudaFree(d_aqk_ref); cudaFree(d_qf_ref); cudaFree(d_kf_ref);
    free(o_ref); free(h_fresh); free(vn_fresh); free(pool_r);
  }
  CUDA_OK(cudaDeviceSynchronize());

  free(pool_host); free(pool0_f);
  void *dev_bufs[] = {d_q, d_k, d_v, d_a, d_b, d_Alog, d_dtb, d_gk, d_cu, d_slots, sa.workspace, d_gcum, d_beta,
                      d_gkcum, d_gin, d_bin, d_gkin, d_Ainv, d_w, d_u, d_Aref, d_kk, d_wr, d_ur, d_pool, d_h, d_vn,
                      d_aqk, d_qf, d_kf, d_tu};
  for (size_t i = 0; i < sizeof dev_bufs / sizeof dev_bufs[0]; ++i) cudaFree(dev_bufs[i]);
  double *host_bufs[] = {q, k, v, a, b, gk, g, beta, g_cum, gk_tot, gk_cum, qn, kn, A_inv, w, u, tmp, kk, pool0,
                         pool_ref, h_ref, vn_ref, aqk_ref, qf_ref, kf_ref, tu_ref};
  for (size_t i = 0; i < sizeof host_bufs / sizeof host_bufs[0]; ++i) free(host_bufs[i]);
}

int main(void) {
  gdn_gpu_test_init("test_chunk_ops", 1);
  gdn_rng_seed(&rng, gdn_test_seed("test_chunk_ops"));
  static const tcase cases[] = {
      {"qwen-like K128 V128 gva2 l2norm", 3, {130, 64, 1}, 2, 4, 128, 128, GDN_DTYPE_BF16, 1, 0, 1},
      {"K64 V64 no-l2 varlen", 4, {63, 65, 0, 200}, 2, 2, 64, 64, GDN_DTYPE_BF16, 1, 0, 0},
      {"K128 V256 no gate", 2, {100, 37}, 1, 2, 128, 256, GDN_DTYPE_BF16, 0, 0, 1},
      {"K256 V128", 2, {129, 64}, 1, 1, 256, 128, GDN_DTYPE_BF16, 1, 0, 1},
      {"K128 V128 gk+g", 3, {70, 1, 128}, 1, 2, 128, 128, GDN_DTYPE_BF16, 1, 1, 1},
      {"K64 V128 gk only fp16", 2, {90, 33}, 2, 2, 64, 128, GDN_DTYPE_F16, 0, 1, 0},
      {"K128 V64 fp16", 2, {150, 20}, 2, 4, 128, 64, GDN_DTYPE_F16, 1, 0, 1},
  };
  const int every = getenv("GDN_TEST_ALL_CONFIGS") != NULL;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    if (every && i != 0 && i != 1 && i != 3) continue; /* K 128, K 64 (column split and rows), K 256 (rows) */
    printf("case %s\n", cases[i].name);
    run_case(&cases[i]);
  }
  return gdn_test_finish("test_chunk_ops");
}
