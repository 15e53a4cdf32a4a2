/* Test helper: a valid gdn_batch built on the host and uploaded (stands in for
 * gdn_batch_setup in operator tests). */
#ifndef GDN_BATCH_HOST_H
#define GDN_BATCH_HOST_H

#include <stdint.h>
#include "gdn/batch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Uploads header {status 0, num_seqs, num_tokens = cu_seqlens[num_seqs], num_chunks},
 * cu_seqlens, slots (NULL: batch.slots = NULL, i.e. all GDN_PAD_SLOT), chunk_offsets and
 * chunk_seq (chunks of GDN_CHUNK tokens from each sequence start) into one device buffer.
 * Capacities: max_seqs >= num_seqs and max_tokens >= num_tokens (0 or less: exactly those);
 * entries past num_seqs repeat the last offset, slots there are GDN_PAD_SLOT, chunk_seq past
 * num_chunks is -1. Exits the test on a CUDA error or an inconsistent input. */
gdn_batch gdn_test_batch_upload(int num_seqs, const int32_t *cu_seqlens, const int32_t *slots, int max_seqs,
                                int max_tokens);
/* Overwrites the device header's status (to test that operators then write nothing). */
void gdn_test_batch_set_status(const gdn_batch *b, int32_t status);
/* Frees the buffer and zeroes *b. */
void gdn_test_batch_free(gdn_batch *b);

#ifdef __cplusplus
}
#endif
#endif
