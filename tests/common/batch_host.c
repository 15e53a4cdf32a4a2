#include "batch_host.h"

#include <string.h>
#include "gpu_util.h"

/* Layout of the single device buffer: header, then the int32 tables. */
gdn_batch gdn_test_batch_upload(int num_seqs, const int32_t *cu_seqlens, const int32_t *slots, int max_seqs,
                                int max_tokens) {
  int T = cu_seqlens[num_seqs];
  if (max_seqs <= 0) max_seqs = num_seqs;
  if (max_tokens <= 0) max_tokens = T;
  if (num_seqs < 0 || max_seqs < num_seqs || max_tokens < T || cu_seqlens[0] != 0) {
    fprintf(stderr, "gdn_test_batch_upload: inconsistent batch (N %d, max_seqs %d, T %d, max_tokens %d)\n", num_seqs,
            max_seqs, T, max_tokens);
    exit(1);
  }
  int32_t max_chunks = gdn_batch_max_chunks(max_tokens, max_seqs);
  size_t n_i32 = (size_t)(max_seqs + 1) + (size_t)max_seqs + (size_t)(max_seqs + 1) + (size_t)(max_chunks > 0 ? max_chunks : 1);
  size_t bytes = sizeof(gdn_batch_header) + n_i32 * sizeof(int32_t);
  unsigned char *host = (unsigned char *)gdn_xmalloc(bytes);
  memset(host, 0, bytes);
  gdn_batch_header *h = (gdn_batch_header *)host;
  int32_t *cu = (int32_t *)(host + sizeof(gdn_batch_header));
  int32_t *sl = cu + (max_seqs + 1);
  int32_t *co = sl + max_seqs;
  int32_t *cs = co + (max_seqs + 1);
  int nc = 0;
  for (int i = 0; i <= max_seqs; ++i) {
    cu[i] = cu_seqlens[i <= num_seqs ? i : num_seqs];
    co[i] = nc;
    if (i < num_seqs) {
      int len = cu_seqlens[i + 1] - cu_seqlens[i];
      if (len < 0) {
        fprintf(stderr, "gdn_test_batch_upload: cu_seqlens decreases at %d\n", i);
        exit(1);
      }
      int chunks = (len + GDN_CHUNK - 1) / GDN_CHUNK;
      for (int c = 0; c < chunks; ++c) cs[nc + c] = i;
      nc += chunks;
    }
  }
  for (int c = nc; c < max_chunks; ++c) cs[c] = -1;
  for (int i = 0; i < max_seqs; ++i) sl[i] = (slots != NULL && i < num_seqs) ? slots[i] : GDN_PAD_SLOT;
  h->status = 0;
  h->num_seqs = num_seqs;
  h->num_tokens = T;
  h->num_chunks = nc;
  unsigned char *dev = (unsigned char *)gdn_dmalloc(bytes);
  CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
  free(host);
  gdn_batch b;
  memset(&b, 0, sizeof b);
  b.header = (const gdn_batch_header *)dev;
  b.cu_seqlens = (const int32_t *)(dev + sizeof(gdn_batch_header));
  b.slots = slots != NULL ? b.cu_seqlens + (max_seqs + 1) : NULL;
  b.chunk_offsets = b.cu_seqlens + (max_seqs + 1) + max_seqs;
  b.chunk_seq = b.chunk_offsets + (max_seqs + 1);
  b.max_seqs = max_seqs;
  b.max_tokens = max_tokens;
  b.max_chunks = max_chunks;
  return b;
}

void gdn_test_batch_set_status(const gdn_batch *b, int32_t status) {
  CUDA_OK(cudaMemcpy((void *)&b->header->status, &status, sizeof status, cudaMemcpyHostToDevice));
}

void gdn_test_batch_free(gdn_batch *b) {
  if (b->header != NULL) CUDA_OK(cudaFree((void *)b->header));
  memset(b, 0, sizeof *b);
}
