/* The GDN_* environment knobs, declared once (NCCL_PARAM style): one row per knob with
 * its name (after "GDN_"), default and meaning. Operators read them at plan time only,
 * through gdn_param_int, and validate the value there. */
#ifndef GDN_CORE_PARAMS_H
#define GDN_CORE_PARAMS_H

#ifdef __cplusplus
extern "C" {
#endif

#define GDN_PARAMS(X)                                                                                            \
  X(CHUNK_H_BV, 0, "chunk scan: value columns per CTA, 32 / 64 / 128 (0: planned)")                              \
  X(CHUNK_H_NUM_WARPS, 0, "chunk scan: warps per CTA (0: planned)")                                              \
  X(CHUNK_H_NUM_STAGES, 0, "chunk scan: shared-memory pipeline stages, 1..4 (0: planned)")                       \
  X(CHUNK_H_COLUMN_SPLIT, -1, "chunk scan kernel: 1 column split (folded WY form in prefill), 0 row groups, -1 planned") \
  X(CHUNK_H_WGMMA, -1, "chunk scan: where the column split is planned, 1 requires its warpgroup (wgmma, sm_90a) form, 0 never, -1 on cc 9.0") \
  X(CHUNK_H_KEY_ROWS, -1, "chunk_delta_h (chunk_scan_o has no such form): 1 requires the key-row warpgroup scan (cc 9.0, sm_90a, K = 128; BV 32 / 64 / 128), 0 never, -1 planned") \
  X(CP, 1, "context parallelism: 0 never cuts sequences into segments (plans made after it is set)")       \
  X(NORM_IN_SCAN, -1, "prefill output norm: 0 always gdn_gated_rmsnorm after the scan, 1 requires it in the scan, -1 in the scan where it owns whole rows") \
  X(CONV1D_TILE, 0, "conv1d: tokens per block, 1..4096 (0: planned)")                                            \
  X(LINEAR_WORKSPACE_MB, 32, "linear: cuBLASLt workspace cap in MiB, 0..4096")                                   \
  X(LINEAR_ALGO, -1, "linear: cuBLASLt algorithm, -1 the fastest heuristic candidate timed at plan time, k >= 0 the k-th (0..7)")

#define GDN_PARAM_ENUM_(name, def, doc) GDN_PARAM_##name,
typedef enum gdn_param { GDN_PARAMS(GDN_PARAM_ENUM_) GDN_NUM_PARAMS } gdn_param;
#undef GDN_PARAM_ENUM_

typedef struct gdn_param_desc {
  const char *name; /* full environment variable name, "GDN_CONV1D_TILE" */
  int default_value;
  const char *doc;
} gdn_param_desc;

/* The row of knob `p` (NULL outside [0, GDN_NUM_PARAMS)). */
const gdn_param_desc *gdn_param_info(gdn_param p);

/* Reads knob `p`. Returns 0 when unset (*value = its default), 1 when set and parsed
 * into *value, -1 when set but not an integer (a message naming it is recorded). */
int gdn_param_int(gdn_param p, int *value);

#ifdef __cplusplus
}
#endif
#endif
