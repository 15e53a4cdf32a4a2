/* CPU float64 reference of the per-layer operators around the GDN core:
 * causal conv1d + SiLU with a conv-state pool, gated RMSNorm, linear. */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "gdn/batch.h"
#include "gdn/reference.h"

static double silu(double x) { return x / (1.0 + exp(-x)); }

void gdn_ref_conv1d(int num_seqs, const int32_t *cu_seqlens, const int32_t *slots, int D, int W, const double *x,
                    const double *weight, const double *bias, double *conv_state, double *out) {
  const int S = W - 1;
  for (int n = 0; n < num_seqs; ++n) {
    const int s0 = cu_seqlens[n], len = cu_seqlens[n + 1] - s0;
    const int slot = (slots != NULL && conv_state != NULL) ? slots[n] : GDN_PAD_SLOT;
    double *st = slot >= 0 ? conv_state + (size_t)slot * S * D : NULL;
    for (int c = 0; c < D; ++c) {
      /* xs(i) for i in [-S, len): old state then the sequence's inputs. */
#define XS(i) ((i) >= 0 ? x[(size_t)(s0 + (i)) * D + c] : (st != NULL ? st[(size_t)(S + (i)) * D + c] : 0.0))
      for (int i = 0; i < len; ++i) {
        double acc = bias != NULL ? bias[c] : 0.0;
        for (int j = 0; j < W; ++j) acc += weight[(size_t)c * W + j] * XS(i - S + j);
        out[(size_t)(s0 + i) * D + c] = silu(acc);
      }
      if (st != NULL) {
        double keep[8]; /* W <= 9 */
        for (int j = 0; j < S; ++j) keep[j] = XS(len - S + j);
        for (int j = 0; j < S; ++j) st[(size_t)j * D + c] = keep[j];
      }
#undef XS
    }
  }
}

void gdn_ref_gated_rmsnorm(int T, int H, int V, const double *x, const double *z, const double *weight, double eps,
                           double *out) {
  for (size_t r = 0; r < (size_t)T * H; ++r) {
    const double *xr = x + r * V, *zr = z + r * V;
    double ss = 0.0;
    for (int d = 0; d < V; ++d) ss += xr[d] * xr[d];
    const double rstd = 1.0 / sqrt(ss / V + eps);
    for (int d = 0; d < V; ++d) out[r * V + d] = xr[d] * rstd * weight[d] * silu(zr[d]);
  }
}

void gdn_ref_linear(int T, int N, int Kin, const double *x, const double *w, const double *bias, int accumulate,
                    double *y) {
  for (int t = 0; t < T; ++t) {
    for (int n = 0; n < N; ++n) {
      double acc = bias != NULL ? bias[n] : 0.0;
      for (int k = 0; k < Kin; ++k) acc += x[(size_t)t * Kin + k] * w[(size_t)n * Kin + k];
      y[(size_t)t * N + n] = accumulate ? y[(size_t)t * N + n] + acc : acc;
    }
  }
}
