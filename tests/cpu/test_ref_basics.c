/* The reference prologue and recurrence on hand-checkable cases: gating and l2norm values,
 * chunk counting, the pool layout, the delta-rule overwrite, gate and GVA conventions. */
#include <math.h>
#include <string.h>

#include "gdn/batch.h"
#include "test_util.h"

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1.0 + fabs(b)); }

static void test_gating(void) {
  const double a[4] = {0.0, 1000.0, -1000.0, 0.5}, b[4] = {0.0, 1000.0, -1000.0, 2.0};
  const double A_log[2] = {0.0, log(2.0)}, dt_bias[2] = {0.0, -0.25};
  double g[4], beta[4];
  gdn_ref_gating(2, 2, a, b, A_log, dt_bias, g, beta);
  CHECK(close_to(g[0], -log(2.0), 1e-15), "g[0] = %.17g, want -log 2", g[0]);
  CHECK(close_to(g[1], -2.0 * (1000.0 - 0.25), 1e-15), "softplus overflowed: g[1] = %.17g", g[1]);
  CHECK(g[2] <= 0.0 && g[2] > -1e-300, "g[2] = %.17g, want ~ -0", g[2]);
  CHECK(close_to(g[3], -2.0 * log1p(exp(0.25)), 1e-15), "g[3] = %.17g", g[3]);
  CHECK(beta[0] == 0.5, "beta[0] = %.17g", beta[0]);
  CHECK(beta[1] == 1.0, "beta[1] = %.17g", beta[1]);
  CHECK(beta[2] >= 0.0 && beta[2] < 1e-300, "beta[2] = %.17g", beta[2]);
  CHECK(close_to(beta[3], 1.0 / (1.0 + exp(-2.0)), 1e-15), "beta[3] = %.17g", beta[3]);
  for (int i = 0; i < 4; ++i) CHECK(isfinite(g[i]) && isfinite(beta[i]), "non-finite gate at %d", i);
}

static void test_l2norm(void) {
  double x[6] = {3, 4, 0, 0, 0, 0}; /* [T=1, H=2, D=3] */
  gdn_ref_l2norm(1, 2, 3, x);
  double n = sqrt(25.0 + GDN_L2NORM_EPS);
  CHECK(close_to(x[0], 3.0 / n, 1e-15) && close_to(x[1], 4.0 / n, 1e-15) && x[2] == 0.0, "l2norm row 0 wrong");
  CHECK(x[3] == 0.0 && x[4] == 0.0 && x[5] == 0.0, "l2norm of a zero row must stay zero (eps)");
}

static void test_chunk_counting(void) {
  const int32_t cu[7] = {0, 1, 1, 64, 128, 193, 323}; /* lengths 1, 0, 63, 64, 65, 130 */
  gdn_ref_shape s = {6, cu, 1, 1, 64, 64};
  int32_t off[7];
  const int32_t want[7] = {0, 1, 1, 2, 3, 5, 8};
  CHECK(gdn_ref_num_tokens(&s) == 323, "num_tokens %d", gdn_ref_num_tokens(&s));
  CHECK(gdn_ref_num_chunks(&s) == 8, "num_chunks %d", gdn_ref_num_chunks(&s));
  gdn_ref_chunk_offsets(&s, off);
  CHECK(memcmp(off, want, sizeof want) == 0, "chunk offsets wrong");
}

/* One token, K=2, V=3, Hk=Hv=1, slot 1 of a 2-slot pool stored [slot][v][k]. */
static void test_pool_layout_and_gates(void) {
  const int32_t cu[2] = {0, 1}, slot1 = 1;
  gdn_ref_shape s = {1, cu, 1, 1, 2, 3};
  double pool[2 * 3 * 2], pool0[12];
  for (int i = 0; i < 12; ++i) pool0[i] = 0.1 * (i + 1);
  const double q[2] = {1.5, -0.5}, k[2] = {0.0, 0.0}, v[3] = {9, 9, 9}, beta[1] = {0.0};
  const double g[1] = {log(0.5)}, gk[2] = {log(0.25), 0.0};
  double o[3];
  const double *S0 = pool0 + 6; /* slot 1: S0[v * 2 + k] = S[k][v] */

  /* beta = 0, k = 0: the state is only decayed; o = scale * S^T q. */
  memcpy(pool, pool0, sizeof pool);
  gdn_ref_recurrent(&s, q, k, v, NULL, NULL, beta, 2.0, pool, &slot1, o);
  for (int vv = 0; vv < 3; ++vv)
    CHECK(close_to(o[vv], 2.0 * (S0[vv * 2] * q[0] + S0[vv * 2 + 1] * q[1]), 1e-15), "o[%d] = %g (layout)", vv, o[vv]);
  CHECK(memcmp(pool, pool0, sizeof pool) == 0, "state changed without gate or update");

  memcpy(pool, pool0, sizeof pool);
  gdn_ref_recurrent(&s, q, k, v, g, gk, beta, 1.0, pool, &slot1, o);
  for (int vv = 0; vv < 3; ++vv) {
    CHECK(close_to(pool[6 + vv * 2], S0[vv * 2] * 0.5 * 0.25, 1e-15), "key 0 decay (g + gk) wrong at v=%d", vv);
    CHECK(close_to(pool[6 + vv * 2 + 1], S0[vv * 2 + 1] * 0.5, 1e-15), "key 1 decay (g) wrong at v=%d", vv);
  }
  CHECK(memcmp(pool, pool0, 6 * sizeof(double)) == 0, "slot 0 was written");

  /* PAD: zero initial state, nothing written. */
  const int32_t pad = GDN_PAD_SLOT;
  memcpy(pool, pool0, sizeof pool);
  gdn_ref_recurrent(&s, q, k, v, g, gk, beta, 1.0, pool, &pad, o);
  CHECK(o[0] == 0.0 && o[1] == 0.0 && o[2] == 0.0, "PAD state is not zero");
  CHECK(memcmp(pool, pool0, sizeof pool) == 0, "PAD slot wrote the pool");
}

/* Delta rule with a unit key and beta = 1 overwrites that key's row of S with v. */
static void test_delta_overwrite(void) {
  const int32_t cu[2] = {0, 1}, slot0 = 0;
  gdn_ref_shape s = {1, cu, 1, 1, 3, 2};
  double pool[6] = {1, 2, 3, 4, 5, 6}, o[2]; /* [v][k] */
  const double q[3] = {0, 1, 0}, k[3] = {0, 1, 0}, v[2] = {-7, 8}, beta[1] = {1.0};
  gdn_ref_recurrent(&s, q, k, v, NULL, NULL, beta, 1.0, pool, &slot0, o);
  const double want[6] = {1, -7, 3, 4, 8, 6};
  for (int i = 0; i < 6; ++i) CHECK(close_to(pool[i], want[i], 1e-15), "overwrite: pool[%d] = %g want %g", i, pool[i], want[i]);
  CHECK(close_to(o[0], -7, 1e-15) && close_to(o[1], 8, 1e-15), "o reads the overwritten row: %g %g", o[0], o[1]);
}

/* GVA: Hk=2, Hv=4 (value head h uses key head h / 2) equals Hk=Hv=4 with the key heads
 * expanded by hand; g + gk equals a per-key gate gk' = g + gk. */
static void test_gva_and_gate_sum(gdn_rng *r) {
  enum { T = 5, K = 4, V = 3, HK = 2, HV = 4 };
  const int32_t cu[3] = {0, 2, 5}, slots[2] = {1, 0};
  gdn_ref_shape s_gva = {2, cu, HK, HV, K, V}, s_mha = {2, cu, HV, HV, K, V};
  double q[T * HK * K], k[T * HK * K], qx[T * HV * K], kx[T * HV * K], v[T * HV * V], g[T * HV];
  double gk[T * HV * K], gsum[T * HV * K], beta[T * HV];
  double pool0[2 * HV * V * K], pa[2 * HV * V * K], pb[2 * HV * V * K], oa[T * HV * V], ob[T * HV * V];
  gdn_fill_normal(r, q, T * HK * K, 0.5);
  gdn_fill_normal(r, k, T * HK * K, 0.5);
  gdn_fill_normal(r, v, T * HV * V, 1.0);
  gdn_fill_uniform(r, g, T * HV, -0.5, 0.0);
  gdn_fill_uniform(r, gk, T * HV * K, -0.5, 0.0);
  gdn_fill_uniform(r, beta, T * HV, 0.1, 0.9);
  gdn_fill_normal(r, pool0, 2 * HV * V * K, 1.0);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < HV; ++h)
      for (int kk = 0; kk < K; ++kk) {
        qx[(t * HV + h) * K + kk] = q[(t * HK + h / 2) * K + kk];
        kx[(t * HV + h) * K + kk] = k[(t * HK + h / 2) * K + kk];
        gsum[(t * HV + h) * K + kk] = g[t * HV + h] + gk[(t * HV + h) * K + kk];
      }
  memcpy(pa, pool0, sizeof pa);
  memcpy(pb, pool0, sizeof pb);
  gdn_ref_recurrent(&s_gva, q, k, v, g, gk, beta, 0.7, pa, slots, oa);
  gdn_ref_recurrent(&s_mha, qx, kx, v, NULL, gsum, beta, 0.7, pb, slots, ob);
  CHECK(gdn_rel_l2(oa, ob, T * HV * V) <= 1e-14, "GVA head map / gate sum: o differs");
  CHECK(gdn_rel_l2(pa, pb, 2 * HV * V * K) <= 1e-14, "GVA head map / gate sum: state differs");
}

/* Prefill: scale <= 0 means K^-1/2, use_g = 0 means no scalar gate. */
static void test_prefill_conventions(gdn_rng *r) {
  enum { T = 3, K = 16, V = 8 };
  const int32_t cu[2] = {0, T}, slot = 0;
  gdn_ref_shape s = {1, cu, 1, 1, K, V};
  double q[T * K], k[T * K], v[T * V], a[T], b[T], A_log[1] = {0.3}, dt_bias[1] = {-1.0};
  double g_unused[T], beta[T], pa[V * K], pb[V * K], oa[T * V], ob[T * V];
  gdn_fill_normal(r, q, T * K, 0.3);
  gdn_fill_normal(r, k, T * K, 0.3);
  gdn_fill_normal(r, v, T * V, 1.0);
  gdn_fill_normal(r, a, T, 1.0);
  gdn_fill_normal(r, b, T, 1.0);
  gdn_fill_normal(r, pa, V * K, 1.0);
  memcpy(pb, pa, sizeof pa);
  gdn_ref_prefill_inputs in = {q, k, v, a, b, A_log, dt_bias, NULL, 0, 0, -1.0};
  gdn_ref_prefill(&s, &in, pa, &slot, oa);
  gdn_ref_gating(T, 1, a, b, A_log, dt_bias, g_unused, beta);
  gdn_ref_recurrent(&s, q, k, v, NULL, NULL, beta, 0.25, pb, &slot, ob);
  CHECK(gdn_rel_l2(oa, ob, T * V) <= 1e-15 && gdn_rel_l2(pa, pb, V * K) <= 1e-15, "prefill default scale / use_g=0");
}

int main(void) {
  gdn_rng r;
  gdn_rng_seed(&r, gdn_test_seed("test_ref_basics"));
  test_gating();
  test_l2norm();
  test_chunk_counting();
  test_pool_layout_and_gates();
  test_delta_overwrite();
  test_gva_and_gate_sum(&r);
  test_prefill_conventions(&r);
  return gdn_test_finish("test_ref_basics");
}
