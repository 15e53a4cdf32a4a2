#include "test_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/batch.h"
#include "test_util.h"

void gdn_test_hbatch_make(gdn_test_hbatch *b, const int *lens, const int *slots, int n) {
  memset(b, 0, sizeof *b);
  b->n = n;
  for (int i = 0; i < n; ++i) {
    b->cu[i + 1] = b->cu[i] + lens[i];
    b->slots[i] = slots ? slots[i] : GDN_PAD_SLOT;
  }
  b->null_slots = slots == NULL;
}

const char *gdn_test_hbatch_str(const gdn_test_hbatch *b, char *buf, size_t cap) {
  size_t p = (size_t)snprintf(buf, cap, "N=%d T=%d lens/slots [", b->n, b->cu[b->n]);
  for (int i = 0; i < b->n && p + 24 < cap; ++i)
    p += (size_t)snprintf(buf + p, cap - p, "%s%d/%d", i ? " " : "", b->cu[i + 1] - b->cu[i],
                          b->null_slots ? -1 : b->slots[i]);
  snprintf(buf + p, cap - p, "]%s", b->null_slots ? " (slots=NULL)" : "");
  return buf;
}

void gdn_test_hbatch_random_lens(gdn_test_hbatch *b, gdn_rng *r, int max_tokens, int max_seqs, const int *special,
                                 int nspecial, double p_special) {
  memset(b, 0, sizeof *b);
  b->n = 1 + gdn_test_rand_int(r, max_seqs);
  int budget = max_tokens;
  for (int i = 0; i < b->n; ++i) {
    int len = gdn_rng_uniform(r) < p_special ? special[gdn_test_rand_int(r, nspecial)]
                                              : 1 + gdn_test_rand_int(r, 2 * max_tokens / b->n);
    if (len > budget) len = budget;
    budget -= len;
    b->cu[i + 1] = b->cu[i] + len;
  }
}

void gdn_test_hbatch_random_slots(gdn_test_hbatch *b, gdn_rng *r, int num_slots) {
  int *perm = (int *)malloc(sizeof(int) * (size_t)(num_slots > 0 ? num_slots : 1));
  gdn_test_shuffle(r, perm, num_slots);
  for (int i = 0; i < b->n; ++i) b->slots[i] = (i < num_slots && gdn_rng_uniform(r) < 0.75) ? perm[i] : GDN_PAD_SLOT;
  free(perm);
}
