/* NCCL error mapping (internal; implemented in allreduce.cu). */
#ifndef GDN_OPS_NCCL_UTIL_H
#define GDN_OPS_NCCL_UTIL_H

#include <nccl.h>
#include "core/check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GDN_ERROR_NCCL with "<what> failed: <ncclGetErrorString> (last NCCL error: <ncclGetLastError>)". */
gdn_status gdn_nccl_fail(ncclResult_t r, ncclComm_t comm, const char *what);

#ifdef __cplusplus
}
#endif
#endif
