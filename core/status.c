/* Status strings and the per-thread last-error message. */
#include <stdio.h>
#include <string.h>
#include "core/check.h"
#include "gdn/batch.h"

static _Thread_local char gdn_last_error_buf[1024];

const char *gdn_status_string(gdn_status status) {
  switch (status) {
    case GDN_SUCCESS: return "success";
    case GDN_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case GDN_ERROR_UNSUPPORTED: return "unsupported configuration";
    case GDN_ERROR_CUDA: return "CUDA error";
    case GDN_ERROR_CUBLAS: return "cuBLAS error";
    case GDN_ERROR_NCCL: return "NCCL error";
    case GDN_ERROR_OUT_OF_MEMORY: return "out of memory";
    case GDN_ERROR_INVALID_BATCH: return "invalid batch descriptor";
    case GDN_ERROR_NO_DEVICE: return "no CUDA device";
    case GDN_ERROR_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

const char *gdn_get_last_error(void) { return gdn_last_error_buf; }

void gdn_clear_last_error(void) { gdn_last_error_buf[0] = '\0'; }

gdn_status gdn_fail(gdn_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(gdn_last_error_buf, sizeof gdn_last_error_buf, fmt, ap);
  va_end(ap);
  return status;
}


const char *gdn_batch_error_string(int code) {
  switch (code) {
    case 0: return "valid";
    case 1: return "num_seqs is negative or above the capacity";
    case 2: return "cu_seqlens[0] is not 0";
    case 3: return "cu_seqlens is not non-decreasing";
    case 4: return "cu_seqlens[num_seqs] exceeds the token capacity";
    case 5: return "a slot index is outside [-1, num_slots)";
    case 6: return "two sequences write the same state row";
    case 7: return "a sequence reads a state row that another sequence writes";
    case 8: return "a sequence's checkpoint rows lie outside [0, num_checkpoints)";
    case 9: return "two sequences' checkpoint rows overlap";
    default: return "unknown batch error";
  }
}

void gdn_save_error(gdn_saved_error *e) {
  strncpy(e->msg, gdn_last_error_buf, sizeof e->msg - 1);
  e->msg[sizeof e->msg - 1] = '\0';
}

gdn_status gdn_restore_error(const gdn_saved_error *e, gdn_status status, const char *prefix) {
  return gdn_fail(status, "%s%s", prefix, e->msg);
}
