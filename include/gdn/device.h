/* Device properties that launch configurations are chosen from (at plan time). */
#ifndef GDN_DEVICE_H
#define GDN_DEVICE_H

#include <stddef.h>
#include "gdn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gdn_device_info {
  int device;
  int cc_major, cc_minor;
  int sm_count;
  size_t smem_per_block_optin; /* max dynamic shared memory one block may opt into */
  size_t smem_per_sm;
  size_t l2_bytes;
  int max_threads_per_sm;
} gdn_device_info;

/* Reads the properties of `device`. GDN_ERROR_NO_DEVICE when no device is visible. */
gdn_status gdn_device_info_query(int device, gdn_device_info *info);

/* The H100/H200 limits (132 SMs, 227 KB per block), for planning without a device. */
gdn_device_info gdn_device_info_hopper(void);

/* 1 when at least one CUDA device is visible, else 0 (never fails). */
int gdn_device_available(void);

/* Why no device is usable, in plain words: "no CUDA driver/GPU" (no driver installed),
 * "the CUDA driver (12.2) is older than the CUDA runtime (13.0)", "no CUDA device is
 * visible" (driver, but no device, e.g. CUDA_VISIBLE_DEVICES=""); NULL when a device is.
 * Thread-local text, valid until the next call on the thread. */
const char *gdn_device_unavailable_reason(void);

#ifdef __cplusplus
}
#endif
#endif
