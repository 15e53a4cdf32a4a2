/* The GDN_* knob table (core/params.h) and its reader. */
#include "core/params.h"
#include <stddef.h>
#include "core/check.h"

#define GDN_PARAM_ROW_(name, def, doc) {"GDN_" #name, def, doc},
static const gdn_param_desc gdn_param_table[GDN_NUM_PARAMS] = {GDN_PARAMS(GDN_PARAM_ROW_)};
#undef GDN_PARAM_ROW_

const gdn_param_desc *gdn_param_info(gdn_param p) {
  return (int)p >= 0 && p < GDN_NUM_PARAMS ? &gdn_param_table[p] : NULL;
}

int gdn_param_int(gdn_param p, int *value) {
  const gdn_param_desc *d = gdn_param_info(p);
  if (d == NULL) {
    gdn_fail(GDN_ERROR_INTERNAL, "gdn_param_int: no knob %d", (int)p);
    return -1;
  }
  int r = gdn_env_int(d->name, value);
  if (r == 0) *value = d->default_value;
  return r;
}
