/* Shape queries, chunk lists, state-pool access and small math helpers of the reference. */
#include "ref/ref_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *ref_alloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL) {
    fprintf(stderr, "gdn reference: out of host memory (%zu x %zu bytes)\n", count, size);
    abort();
  }
  return p;
}

static int seq_len(const gdn_ref_shape *s, int n) { return s->cu_seqlens[n + 1] - s->cu_seqlens[n]; }

static int seq_num_chunks(const gdn_ref_shape *s, int n) { return (seq_len(s, n) + GDN_CHUNK - 1) / GDN_CHUNK; }

int gdn_ref_num_tokens(const gdn_ref_shape *s) { return s->cu_seqlens[s->num_seqs]; }

int gdn_ref_num_chunks(const gdn_ref_shape *s) {
  int nt = 0;
  for (int n = 0; n < s->num_seqs; ++n) nt += seq_num_chunks(s, n);
  return nt;
}

void gdn_ref_chunk_offsets(const gdn_ref_shape *s, int32_t *chunk_offsets) {
  chunk_offsets[0] = 0;
  for (int n = 0; n < s->num_seqs; ++n) chunk_offsets[n + 1] = chunk_offsets[n] + seq_num_chunks(s, n);
}

void ref_chunks_init(const gdn_ref_shape *s, ref_chunks *c) {
  c->first = (int32_t *)ref_alloc((size_t)s->num_seqs + 1, sizeof(int32_t));
  gdn_ref_chunk_offsets(s, c->first);
  c->count = c->first[s->num_seqs];
  c->list = (ref_chunk *)ref_alloc((size_t)c->count, sizeof(ref_chunk));
  for (int n = 0; n < s->num_seqs; ++n) {
    int end = s->cu_seqlens[n + 1];
    for (int i = c->first[n]; i < c->first[n + 1]; ++i) {
      ref_chunk *ch = &c->list[i];
      ch->seq = n;
      ch->index = i;
      ch->t0 = s->cu_seqlens[n] + (i - c->first[n]) * GDN_CHUNK;
      ch->len = ref_min(GDN_CHUNK, end - ch->t0);
    }
  }
}

void ref_chunks_free(ref_chunks *c) {
  free(c->list);
  free(c->first);
  c->list = NULL;
  c->first = NULL;
  c->count = 0;
}

void ref_log_decay(const gdn_ref_shape *s, const double *g, const double *gk, int t, int h, double *out) {
  double scalar = g ? g[(size_t)t * s->Hv + h] : 0.0;
  const double *per_key = gk ? gk + ref_at(t, h, s->Hv, s->K) : NULL;
  for (int k = 0; k < s->K; ++k) out[k] = scalar + (per_key ? per_key[k] : 0.0);
}

double ref_decayed_dot(const double *a, const double *b, const double *Ga, const double *Gb, int K, int per_key) {
  double acc = 0.0;
  if (per_key) {
    for (int k = 0; k < K; ++k) acc += a[k] * b[k] * exp(Ga[k] - Gb[k]);
    return acc;
  }
  for (int k = 0; k < K; ++k) acc += a[k] * b[k];
  return acc * exp(Ga[0] - Gb[0]);
}

void ref_state_load(const gdn_ref_shape *s, const double *state, int slot, int h, double *S) {
  const int K = s->K, V = s->V;
  if (slot < 0 || state == NULL) {
    memset(S, 0, (size_t)K * V * sizeof(double));
    return;
  }
  const double *src = state + ref_at(slot, h, s->Hv, V * K); /* [V, K] */
  for (int k = 0; k < K; ++k)
    for (int v = 0; v < V; ++v) S[(size_t)k * V + v] = src[(size_t)v * K + k];
}

void ref_state_store(const gdn_ref_shape *s, double *state, int slot, int h, const double *S) {
  const int K = s->K, V = s->V;
  if (slot < 0 || state == NULL) return;
  double *dst = state + ref_at(slot, h, s->Hv, V * K);
  for (int k = 0; k < K; ++k)
    for (int v = 0; v < V; ++v) dst[(size_t)v * K + k] = S[(size_t)k * V + v];
}
