/* A packed-batch descriptor on the host, as the graph tests build and print them. */
#ifndef GDN_TEST_BATCH_H
#define GDN_TEST_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "gdn/reference.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_TEST_MAX_SEQS 64

typedef struct gdn_test_hbatch {
  int n;
  int32_t cu[GDN_TEST_MAX_SEQS + 1];
  int32_t slots[GDN_TEST_MAX_SEQS];
  int null_slots; /* pass slots = NULL (all -1) */
} gdn_test_hbatch;

/* cu_seqlens from lens[0..n); slots NULL means every slot -1 and null_slots set. */
void gdn_test_hbatch_make(gdn_test_hbatch *b, const int *lens, const int *slots, int n);
/* A random batch of n = 1 .. max_seqs sequences and at most max_tokens tokens: each
 * length is one of special[] with probability p_special, else uniform in
 * [1, 2 max_tokens / n], cut to the tokens left. Slots are left zero. */
void gdn_test_hbatch_random_lens(gdn_test_hbatch *b, gdn_rng *r, int max_tokens, int max_seqs, const int *special,
                                 int nspecial, double p_special);
/* Distinct random slots of [0, num_slots), each -1 with probability 1/4 (and -1 past
 * num_slots). */
void gdn_test_hbatch_random_slots(gdn_test_hbatch *b, gdn_rng *r, int num_slots);
/* "N=.. T=.. lens/slots [len/slot ...]" into buf, for failure messages. */
const char *gdn_test_hbatch_str(const gdn_test_hbatch *b, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
