/* Internal helpers of the CPU reference: index math, chunk walking, state-pool access,
 * and the perturbation-aware variants behind gdn_ref_chunked_perturbed. */
#ifndef GDN_REF_COMMON_H
#define GDN_REF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "gdn/batch.h"
#include "gdn/reference.h"

/* Offset of the D-vector of (row t, head h) in a row-major [rows, H, D] array. */
static inline size_t ref_at(int t, int h, int H, int D) { return ((size_t)t * (size_t)H + (size_t)h) * (size_t)D; }

/* The head (out of Hkey) that feeds value head h: GVA, Hv = r * Hkey, head h uses h / r. */
static inline int ref_key_head(const gdn_ref_shape *s, int Hkey, int h) { return h / (s->Hv / Hkey); }

static inline int ref_min(int a, int b) { return a < b ? a : b; }

/* Zeroed allocation; aborts with a message when the host is out of memory. */
void *ref_alloc(size_t count, size_t size);
static inline double *ref_dalloc(size_t count) { return (double *)ref_alloc(count, sizeof(double)); }

/* Log decay per key of value head h at token t: out[k] = g[t,h] + gk[t,h,k], either term
 * absent when NULL. Given the chunk-local cumsums it yields G_t of the chunked form. */
void ref_log_decay(const gdn_ref_shape *s, const double *g, const double *gk, int t, int h, double *out);

/* sum_k a[k] b[k] exp(Ga[k] - Gb[k]). per_key == 0: the decay is the same for every key
 * (scalar gate), so it is taken once from Ga[0] - Gb[0]. Always the difference inside one
 * exp: exp(Ga) * exp(-Gb) overflows for long chunks with strong gates. */
double ref_decayed_dot(const double *a, const double *b, const double *Ga, const double *Gb, int K, int per_key);

/* One chunk: tokens [t0, t0 + len) (1 <= len <= 64) of sequence seq; index = global chunk
 * number (the row of h). */
typedef struct ref_chunk {
  int seq, index, t0, len;
} ref_chunk;

/* Every chunk in order; sequence n owns list[first[n]] .. list[first[n + 1] - 1]. */
typedef struct ref_chunks {
  int count;
  ref_chunk *list;
  int32_t *first; /* [num_seqs + 1] = chunk offsets */
} ref_chunks;

void ref_chunks_init(const gdn_ref_shape *s, ref_chunks *c);
void ref_chunks_free(ref_chunks *c);

/* Slot of sequence n: slots == NULL means every sequence is GDN_PAD_SLOT. */
static inline int ref_slot(const int32_t *slots, int n) { return slots ? slots[n] : GDN_PAD_SLOT; }

/* Pool [slots, Hv, V, K] (k contiguous) <-> S [K, V] of value head h. A negative slot (or a
 * NULL pool) loads zeros and stores nothing. */
void ref_state_load(const gdn_ref_shape *s, const double *state, int slot, int h, double *S);
void ref_state_store(const gdn_ref_shape *s, double *state, int slot, int h, const double *S);

/* ---- stage variants with the test perturbations (0 = the correct stage) */
/* flip_decay: exp(G_j - G_i) instead of exp(G_i - G_j) inside A. */
void ref_kkt_solve(const gdn_ref_shape *s, const double *k, const double *beta, const double *g_cum,
                   const double *gk_cum, double *A_inv, int flip_decay);
/* h_after_update: h[c] holds the state leaving chunk c instead of the one entering it. */
void ref_chunk_delta_h(const gdn_ref_shape *s, int Hkk, const double *kk, const double *w, const double *u,
                       const double *g_cum, const double *gk_cum, double *state, const int32_t *slots,
                       double *h, double *v_new, int h_after_update);
/* gdn_ref_chunk_o generalized to per-key gates: with G = g_cum + gk_cum per key,
 * o_i = scale * ((q_i exp(G_i))^T h_c + sum_{j<=i} (sum_k q_i[k] k_j[k] exp(G_i[k] - G_j[k])) v_new_j). */
void ref_chunk_o(const gdn_ref_shape *s, const double *q, const double *k, const double *v_new, const double *h,
                 const double *g_cum, const double *gk_cum, double scale, double *o);

#endif
