/* gdngraph: CUDA-graph-capturable operators for Gated DeltaNet prefill (umbrella header).
 * The CPU reference is separate: gdn/reference.h, library gdngraph::reference. */
#ifndef GDN_GDN_H
#define GDN_GDN_H

#include "gdn/status.h"
#include "gdn/tensor.h"
#include "gdn/device.h"
#include "gdn/batch.h"
#include "gdn/batch_setup.h"
#include "gdn/prologue.h"
#include "gdn/chunk_intra.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/prefill.h"
#include "gdn/qkv_split.h"
#include "gdn/conv1d.h"
#include "gdn/gated_rmsnorm.h"
#include "gdn/linear.h"
#include "gdn/allreduce.h"
#include "gdn/layer.h"
#include "gdn/version.h"

#endif
