/* gdngraph status codes and error messages (NCCL-style). */
#ifndef GDN_STATUS_H
#define GDN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gdn_status {
  GDN_SUCCESS = 0,
  GDN_ERROR_INVALID_ARGUMENT = 1, /* bad shape, stride, dtype, alignment, overlap or null pointer */
  GDN_ERROR_UNSUPPORTED = 2,      /* a valid request this build or device cannot run (head dim, launch config) */
  GDN_ERROR_CUDA = 3,             /* a CUDA runtime call failed */
  GDN_ERROR_CUBLAS = 4,           /* a cuBLAS / cuBLASLt call failed */
  GDN_ERROR_NCCL = 5,             /* an NCCL call failed */
  GDN_ERROR_OUT_OF_MEMORY = 6,    /* device or pinned host allocation failed */
  GDN_ERROR_INVALID_BATCH = 7,    /* the device-side batch descriptor check failed; nothing was written */
  GDN_ERROR_NO_DEVICE = 8,        /* no CUDA device is visible */
  GDN_ERROR_INTERNAL = 9,
  GDN_NUM_STATUS = 10
} gdn_status;

/* Short constant description of a status code ("invalid argument", ...). */
const char *gdn_status_string(gdn_status status);

/* The detail of the failure of the last gdngraph call made by this thread that returns a
 * gdn_status: which argument, which value, which CUDA/NCCL error. Every such call clears
 * it when it starts, so after a call that returned GDN_SUCCESS it is the empty string
 * (calls that return a value instead of a status — accessors, size queries — leave it
 * alone, and record a reason only where they fail). Thread-local; gdn_clear_last_error()
 * empties it too. */
const char *gdn_get_last_error(void);
void gdn_clear_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
