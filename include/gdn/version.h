/* gdngraph version (NCCL-style): compile-time macros and the linked library's version.
 * CMake reads the project version from the three GDN_VERSION_* lines below. */
#ifndef GDN_VERSION_H
#define GDN_VERSION_H

#include "gdn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_VERSION_MAJOR 0
#define GDN_VERSION_MINOR 1
#define GDN_VERSION_PATCH 0
#define GDN_VERSION_STRING "0.1.0"

/* One integer per version, ordered: GDN_VERSION(0, 1, 0) = 100. */
#define GDN_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define GDN_VERSION_CODE GDN_VERSION(GDN_VERSION_MAJOR, GDN_VERSION_MINOR, GDN_VERSION_PATCH)

/* The linked library's GDN_VERSION_CODE (may differ from the header's when a program is
 * run against another build). GDN_ERROR_INVALID_ARGUMENT when version is NULL. */
gdn_status gdn_get_version(int *version);

#ifdef __cplusplus
}
#endif
#endif
