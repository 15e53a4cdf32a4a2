/* Internal: prologue kernel parameters. */
#ifndef GDN_PROLOGUE_PARAMS_H
#define GDN_PROLOGUE_PARAMS_H

#include <stdint.h>
#include "gdn/batch.h"

typedef struct gdn_prologue_params {
  const int32_t *cu_seqlens, *chunk_offsets, *chunk_seq;
  const gdn_batch_header *header;
  int Hv, K;            /* K = 1 without a per-key gate */
  int use_g;
  int precomputed;      /* a = g, b = beta */
  const void *a; int a_dt; int64_t a_st, a_sh;
  const void *b; int b_dt; int64_t b_st, b_sh;
  const void *A_log; int A_log_dt; int64_t A_log_s;
  const void *dt_bias; int dt_bias_dt; int64_t dt_bias_s;
  const void *gk; int gk_dt; int64_t gk_st, gk_sh;
  float *g_cum; int64_t gc_st, gc_sh;
  float *gk_cum; int64_t gkc_st, gkc_sh;
  float *beta; int64_t beta_st, beta_sh;
} gdn_prologue_params;

#endif
