/* The library's version, as compiled (gdn/version.h). */
#include "core/check.h"
#include "gdn/version.h"

gdn_status gdn_get_version(int *version) {
  gdn_clear_last_error();
  if (version == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_get_version: version is NULL");
  *version = GDN_VERSION_CODE;
  return GDN_SUCCESS;
}
