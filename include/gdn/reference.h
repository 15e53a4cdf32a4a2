/* CPU float64 reference of the GDN prefill math: the oracle of every GPU test.
 *
 * All arrays are host, contiguous, row-major, float64 (index arrays int32):
 *   q, k   [T, Hq, K]  (Hq = Hk key heads; value head h uses key head h / (Hv/Hk))
 *   v      [T, Hv, V]
 *   g      [T, Hv]     log-space scalar gate per token (<= 0)        (NULL: none)
 *   gk     [T, Hv, K]  log-space per-key gate per token (<= 0)       (NULL: none)
 *   beta   [T, Hv]
 *   state  [num_slots, Hv, V, K]  pool; slot -1 = zero initial state, not written
 * With both g and gk the decay of key k at token t is exp(g_t + gk_t[k]).
 * Chunk-local quantities restart at every chunk of 64 tokens, chunks start at
 * each sequence start. NT = total chunk count = sum ceil(len_n / 64). */
#ifndef GDN_REFERENCE_H
#define GDN_REFERENCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_ref_shape {
  int num_seqs;
  const int32_t *cu_seqlens; /* [num_seqs + 1] */
  int Hk, Hv, K, V;
} gdn_ref_shape;

int gdn_ref_num_tokens(const gdn_ref_shape *s);
int gdn_ref_num_chunks(const gdn_ref_shape *s);
/* chunk_offsets[num_seqs + 1]: first global chunk index of each sequence. */
void gdn_ref_chunk_offsets(const gdn_ref_shape *s, int32_t *chunk_offsets);

/* ---- elementwise prologue */
/* g = -exp(A_log[h]) * softplus(a + dt_bias[h]); beta = sigmoid(b). a, b: [T, Hv]. */
void gdn_ref_gating(int T, int Hv, const double *a, const double *b, const double *A_log,
                    const double *dt_bias, double *g, double *beta);
/* x[T, H, D] <- x / sqrt(sum(x^2) + 1e-6) along D, in place. */
void gdn_ref_l2norm(int T, int H, int D, double *x);
#define GDN_L2NORM_EPS 1e-6

/* ---- the recurrence (the oracle). o: [T, Hv, V]. Updates state in place. */
void gdn_ref_recurrent(const gdn_ref_shape *s, const double *q, const double *k, const double *v,
                       const double *g, const double *gk, const double *beta, double scale,
                       double *state, const int32_t *slots, double *o);

/* The recurrence with separate initial / final rows and checkpoints: sequence n starts
 * from state[slots_in[n]] (NULL or -1: zero) and ends in state_out[slots_out[n]] (state_out
 * NULL: state; slots_out NULL: slots_in when state_out is NULL, else -1 = not written);
 * with checkpoints, the state after every checkpoint_every tokens of sequence n goes to row
 * checkpoint_offsets[n] + j of checkpoints [rows, Hv, V, K] (offset -1: none). */
typedef struct gdn_ref_state_io {
  const int32_t *slots_in, *slots_out;
  double *state_out;
  int checkpoint_every;
  const int32_t *checkpoint_offsets;
  double *checkpoints;
} gdn_ref_state_io;
void gdn_ref_recurrent_io(const gdn_ref_shape *s, const double *q, const double *k, const double *v,
                          const double *g, const double *gk, const double *beta, double scale, double *state,
                          const gdn_ref_state_io *io, double *o);

/* ---- the chunked form, stage by stage (FLA conventions) */
/* g_cum[T, Hv] (or gk_cum[T, Hv, K] with inner dim K): chunk-local inclusive cumsum. */
void gdn_ref_chunk_cumsum(const gdn_ref_shape *s, int inner, const double *x, double *x_cum);
/* A_inv[T, Hv, 64]: row t holds row (t mod 64) of (I + A)^-1 of its chunk, where
 * A[i][j] = beta_i * sum_k k_i[k] k_j[k] exp(G_i[k] - G_j[k]) for j < i (0 otherwise),
 * G = g_cum (+ gk_cum). Columns past the chunk's length are 0. */
void gdn_ref_kkt_solve(const gdn_ref_shape *s, const double *k, const double *beta,
                       const double *g_cum, const double *gk_cum, double *A_inv);
/* w = A_inv (beta k exp(G)) [T, Hv, K];  u = A_inv (beta v) [T, Hv, V]. */
void gdn_ref_wy(const gdn_ref_shape *s, const double *k, const double *v, const double *beta,
                const double *A_inv, const double *g_cum, const double *gk_cum, double *w, double *u);
/* The gated key and query of the per-key-gate path, per value head:
 * kg[T,Hv,K] = k exp(G_last - G),  qg[T,Hv,K] = q exp(G). */
void gdn_ref_gate_qk(const gdn_ref_shape *s, const double *q, const double *k, const double *g_cum,
                     const double *gk_cum, double *qg, double *kg);
/* Chunk state recurrence (FLA chunk_gated_delta_rule_fwd_h). For each chunk c of each
 * sequence: h[c] = S (the state entering the chunk, [K, V] per head, h: [NT, Hv, K, V]);
 * v_new = u - w S (stored unscaled, [T, Hv, V]); then with g_cum: v_new_t *= exp(g_last - g_t)
 * and S *= exp(g_last); with gk_cum: S[k, :] *= exp(gk_last[k]); then S += kk^T v_new.
 * kk is used as given ([T, Hkk, K], Hkk divides Hv): with gk_cum it must be the gated key.
 * Initial S from state[slot] (transposed [V, K] storage), final S written back.
 * h and v_new may be NULL. */
void gdn_ref_chunk_delta_h(const gdn_ref_shape *s, int Hkk, const double *kk, const double *w,
                           const double *u, const double *g_cum, const double *gk_cum,
                           double *state, const int32_t *slots, double *h, double *v_new);
/* o = scale * (q exp(g) h_c + causal_{j<=i}(q_i . k_j exp(g_i - g_j)) v_new_j), scalar g only
 * (g_cum may be NULL). q, k: [T, Hk, K]. */
void gdn_ref_chunk_o(const gdn_ref_shape *s, const double *q, const double *k, const double *v_new,
                     const double *h, const double *g_cum, double scale, double *o);

/* The whole chunked forward composed from the stages above (per-key gates included),
 * computed independently of gdn_ref_recurrent. Same inputs/outputs as the recurrence. */
void gdn_ref_chunked(const gdn_ref_shape *s, const double *q, const double *k, const double *v,
                     const double *g, const double *gk, const double *beta, double scale,
                     double *state, const int32_t *slots, double *o);

/* Test hook: a deliberately wrong chunked form, to prove tests can fail.
 * 0 = correct; 1 = decay sign flipped inside the chunk; 2 = h stored after the update. */
void gdn_ref_chunked_perturbed(const gdn_ref_shape *s, const double *q, const double *k,
                               const double *v, const double *g, const double *gk,
                               const double *beta, double scale, double *state,
                               const int32_t *slots, double *o, int perturbation);

/* ---- whole prefill from raw inputs: gating + optional l2norm + recurrence.
 * a, b: [T, Hv]; A_log, dt_bias: [Hv]; q, k copied before normalizing. */
typedef struct gdn_ref_prefill_inputs {
  const double *q, *k, *v, *a, *b, *A_log, *dt_bias;
  const double *gk;  /* optional per-key log gate [T, Hv, K], added to g */
  int use_g;         /* 0: no scalar gate (g = 0) */
  int l2norm_qk;
  double scale;      /* <= 0: K^-1/2 */
} gdn_ref_prefill_inputs;
void gdn_ref_prefill(const gdn_ref_shape *s, const gdn_ref_prefill_inputs *in, double *state,
                     const int32_t *slots, double *o);

/* ---- deterministic random numbers for tests and tools */
typedef struct gdn_rng { uint64_t s; } gdn_rng;
void gdn_rng_seed(gdn_rng *r, uint64_t seed);
uint64_t gdn_rng_next(gdn_rng *r);
double gdn_rng_uniform(gdn_rng *r);            /* [0, 1) */
double gdn_rng_normal(gdn_rng *r);

/* bf16 / fp16 conversion (round to nearest even), host side. */
uint16_t gdn_f32_to_bf16(float x);
float gdn_bf16_to_f32(uint16_t x);
uint16_t gdn_f32_to_f16(float x);
float gdn_f16_to_f32(uint16_t x);

/* ---- layer: the per-layer operators around the GDN core (ref/ref_layer.c).
 * Arrays as above: host, contiguous, row-major, float64. */
/* Causal depthwise conv1d + SiLU over D channels, per sequence of the packed batch:
 * x, out [T, D]; weight [D, W] (2 <= W <= 9); bias [D] or NULL; conv_state
 * [num_slots, W-1, D] or NULL (NULL: zero initial state, nothing written); slots NULL: all
 * GDN_PAD_SLOT. Token i of a sequence reads x_{i-W+1..i}, indices < 0 from the slot's state
 * (slot -1: zeros); out = silu(bias + sum_j weight[c][j] x_{i-W+1+j}). Afterwards the slot
 * holds the last W-1 inputs of the sequence (old state shifted for short sequences). */
void gdn_ref_conv1d(int num_seqs, const int32_t *cu_seqlens, const int32_t *slots, int D, int W, const double *x,
                    const double *weight, const double *bias, double *conv_state, double *out);
/* out[t,h,:] = x * (mean(x^2) + eps)^-1/2 * weight * silu(z); x, z, out [T, H, V], weight [V]. */
void gdn_ref_gated_rmsnorm(int T, int H, int V, const double *x, const double *z, const double *weight, double eps,
                           double *out);
/* y[T, N] = x[T, Kin] w[N, Kin]^T + bias[N] (bias NULL: none); accumulate: y += ... */
void gdn_ref_linear(int T, int N, int Kin, const double *x, const double *w, const double *bias, int accumulate,
                    double *y);

#ifdef __cplusplus
}
#endif
#endif

/* ---- the whole GDN layer (ref/ref_layer_full.c): in_proj, conv1d + SiLU, gating + l2norm +
 * recurrence, gated RMSNorm, out_proj, for one tensor-parallel rank or the unsharded layer.
 * Same conventions as above (host, contiguous, row-major, float64). W_in rows follow
 * gdn/layer.h: q [Hk*K] | k [Hk*K] | v [Hv*V] (the D = 2*Hk*K + Hv*V conv channels, in the
 * conv weight's row order) | z [Hv*V] | b [Hv] | a [Hv]; Dtot = D + Hv*V + 2*Hv. */
#ifndef GDN_REFERENCE_LAYER_H
#define GDN_REFERENCE_LAYER_H
#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_ref_layer_shape {
  int hidden, Hk, Hv, K, V, W; /* W: conv width, 2..9 */
  double rms_eps;              /* <= 0: 1e-6 (as the GPU op's 0) */
  int use_g, l2norm_qk;
  double scale;                /* <= 0: K^-1/2 */
} gdn_ref_layer_shape;

typedef struct gdn_ref_layer_weights {
  const double *w_in;            /* [Dtot, hidden] */
  const double *conv_weight;     /* [D, W] */
  const double *conv_bias;       /* [D] or NULL */
  const double *A_log, *dt_bias; /* [Hv] (use_g) */
  const double *norm_weight;     /* [V] */
  const double *w_out;           /* [hidden, Hv*V] */
} gdn_ref_layer_weights;

/* y[T, hidden] for x[T, hidden], T = cu_seqlens[num_seqs]. state [num_slots, Hv, V, K] and
 * conv_state [num_slots, W-1, D] pools (either may be NULL: zero initial state, nothing kept)
 * are updated in place for the slots named (slots NULL: all GDN_PAD_SLOT). */
void gdn_ref_layer(const gdn_ref_layer_shape *s, const gdn_ref_layer_weights *w, int num_seqs,
                   const int32_t *cu_seqlens, const int32_t *slots, const double *x, double *state,
                   double *conv_state, double *y);

/* Tensor-parallel shard `rank` of `nranks` of an unsharded layer: key heads
 * [rank*Hk/R, (rank+1)*Hk/R) and value heads [rank*Hv/R, ...) of every q/k/v/z/b/a block of
 * W_in, the matching conv channels (weight and bias rows), A_log/dt_bias entries and W_out
 * columns; norm_weight shared. The sum over ranks of the shards' y equals the full y. */
typedef struct gdn_ref_layer_shard {
  gdn_ref_layer_shape shape;     /* per rank: Hk/R, Hv/R, the rest as the full layer */
  gdn_ref_layer_weights weights; /* views of the arrays below */
  double *w_in, *conv_weight, *conv_bias, *A_log, *dt_bias, *norm_weight, *w_out; /* owned */
} gdn_ref_layer_shard;

/* 0 on success; -1 (nothing allocated) when nranks < 1, rank outside [0, nranks), or nranks
 * does not divide Hk. */
int gdn_ref_layer_shard_make(const gdn_ref_layer_shape *full, const gdn_ref_layer_weights *w, int rank,
                             int nranks, gdn_ref_layer_shard *out);
void gdn_ref_layer_shard_free(gdn_ref_layer_shard *shard);
/* Row of the full W_in holding row `row` of the shard's W_in (for row < D: also the full
 * conv channel of shard channel `row`). */
int64_t gdn_ref_layer_shard_row(const gdn_ref_layer_shape *full, int rank, int nranks, int64_t row);
/* The rank's part of the pools: state [num_slots, Hv, V, K] -> [num_slots, Hv/R, V, K];
 * conv_state [num_slots, W-1, D] -> [num_slots, W-1, D_shard]. */
void gdn_ref_layer_shard_state(const gdn_ref_layer_shape *full, int rank, int nranks, int num_slots,
                               const double *state, double *shard_state);
void gdn_ref_layer_shard_conv_state(const gdn_ref_layer_shape *full, int rank, int nranks, int num_slots,
                                    const double *conv_state, double *shard_conv_state);

#ifdef __cplusplus
}
#endif
#endif
