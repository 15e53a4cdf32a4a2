/* Device limits for planning without a device (CPU tests, offline planning). */
#include "gdn/device.h"

gdn_device_info gdn_device_info_hopper(void) {
  gdn_device_info d;
  d.device = -1;
  d.cc_major = 9;
  d.cc_minor = 0;
  d.sm_count = 132;
  d.smem_per_block_optin = 232448; /* 227 KB */
  d.smem_per_sm = 233472;          /* 228 KB */
  d.l2_bytes = 50u * 1024u * 1024u;
  d.max_threads_per_sm = 2048;
  return d;
}
