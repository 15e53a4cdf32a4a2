#include "test_batch.h"

#include <stdio.h>
#include <string.h>
#include "gdn/batch.h"

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
