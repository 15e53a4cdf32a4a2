/* Internal: conv1d kernel parameters (filled in conv1d.cu from the args and config). */
#ifndef GDN_CONV1D_PARAMS_H
#define GDN_CONV1D_PARAMS_H

#include <stdint.h>
#include "gdn/batch.h"

typedef struct gdn_conv1d_params {
  const char *mixed;
  int64_t mixed_row;        /* elements */
  const char *weight;
  int64_t w_s0, w_s1;       /* elements */
  int w_f32;                /* weight dtype: 1 fp32, 0 mixed's dtype */
  int w_packed;             /* [D][W] contiguous, a thread's VEC x W taps on 16-byte boundaries */
  const char *bias;
  int64_t b_s0;
  int bias_mode;            /* 0 none, 1 fp32, 2 mixed's dtype */
  char *state;              /* NULL: zero state, nothing kept */
  int64_t st_slot, st_tok;  /* elements */
  int num_slots;
  char *out[3];             /* q, k, v */
  int64_t out_t[3], out_h[3];
  int HkK, K, V, D;
  const int32_t *cu_seqlens;
  const int32_t *slots;
  const gdn_batch_header *header;
  int max_seqs, max_tokens, tile;
} gdn_conv1d_params;

#endif
