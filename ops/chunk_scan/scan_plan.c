/* Validation, launch-config choice and kernel parameters of the chunk state scan. */
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "gdn/gated_rmsnorm.h"
#include "core/params.h"
#include "ops/chunk_scan/scan_plan.h"

static const gdn_tensor *opt(const gdn_tensor *t) { return gdn_tensor_present(t) ? t : NULL; }

gdn_scan_problem gdn_scan_problem_delta_h(const gdn_chunk_delta_h_args *a) {
  gdn_scan_problem pb;
  memset(&pb, 0, sizeof pb);
  pb.batch = &a->batch;
  pb.k = &a->k;
  pb.w = &a->w;
  pb.u = &a->u;
  pb.g = opt(&a->g);
  pb.gk = opt(&a->gk);
  pb.state = opt(&a->state);
  pb.h = opt(&a->h);
  pb.v_new = opt(&a->v_new);
  pb.state_out = opt(&a->state_out);
  pb.ckpt = opt(&a->checkpoints);
  pb.ckpt_every = a->checkpoint_every;
  pb.cp_ws = a->cp_workspace;
  pb.cp_ws_bytes = a->cp_workspace_bytes;
  pb.scale = 1.f;
  return pb;
}

gdn_scan_problem gdn_scan_problem_scan_o(const gdn_chunk_scan_o_args *a) {
  gdn_scan_problem pb;
  memset(&pb, 0, sizeof pb);
  pb.batch = &a->batch;
  pb.q = &a->q;
  pb.k = &a->k;
  pb.w = &a->w;
  pb.u = &a->u;
  pb.g = opt(&a->g);
  pb.gk = opt(&a->gk);
  pb.aqk = &a->aqk;
  pb.qf = opt(&a->qf);
  pb.kf = opt(&a->kf);
  pb.state = opt(&a->state);
  pb.o = &a->o;
  pb.h = opt(&a->h);
  pb.v_new = opt(&a->v_new);
  pb.state_out = opt(&a->state_out);
  pb.ckpt = opt(&a->checkpoints);
  pb.ckpt_every = a->checkpoint_every;
  pb.cp_ws = a->cp_workspace;
  pb.cp_ws_bytes = a->cp_workspace_bytes;
  pb.scale = a->scale;
  pb.o_mode = 1;
  pb.nz = opt(&a->norm_z);
  pb.nw = opt(&a->norm_weight);
  pb.n_eps = a->norm_eps;
  if (gdn_tensor_present(&a->tu)) { /* the folded WY form */
    pb.w = &a->tu;
    pb.u = &a->v;
    pb.o_mode = pb.nz != NULL ? 4 : 2;
    pb.mixed_forms = gdn_tensor_present(&a->w) || gdn_tensor_present(&a->u);
  } else {
    pb.mixed_forms = gdn_tensor_present(&a->v);
  }
  return pb;
}

/* A 16-bit token tensor [T, heads, dim]: rows contiguous and 16-byte aligned for cp.async. */
static gdn_status check_tokens(const gdn_tensor *t, const char *name, int64_t T, int64_t heads, int64_t dim,
                               const gdn_tensor *like) {
  int64_t sz[3] = {-1, heads, dim};
  GDN_TRY(gdn_check_tensor(t, name, 3, sz, like ? GDN_DTYPE_MASK(like->dtype) : GDN_FLOAT16_TYPES));
  GDN_TRY(gdn_check_rows(t, name, T, "token"));
  GDN_TRY(gdn_check_inner_contiguous(t, name));
  return gdn_check_aligned(t, name, 16);
}

static gdn_status check_group(int64_t Hv, int64_t heads, const char *name) {
  if (heads <= 0 || Hv % heads != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: %lld heads do not divide Hv = %lld (grouped value heads)", name,
                    (long long)heads, (long long)Hv);
  return GDN_SUCCESS;
}

gdn_status gdn_scan_validate(const gdn_scan_problem *pb) {
  GDN_TRY(gdn_check_batch(pb->batch));
  const int64_t T = pb->batch->max_tokens, NT = pb->batch->max_chunks;
  const int fold = gdn_scan_mode_fold(pb->o_mode);
  const char *wn = fold ? "tu" : "w", *un = fold ? "v" : "u";
  if (pb->mixed_forms)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "chunk_scan_o: give either w and u, or v and tu (the folded WY form), not both");
  GDN_TRY(gdn_tensor_check(pb->k, "k"));
  if (pb->k->rank != 3) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "k: expected rank 3 [T, Hk, K], got %d", pb->k->rank);
  GDN_TRY(gdn_tensor_check(pb->w, wn));
  if (pb->w->rank != 3)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: expected rank 3 [T, Hv, %s], got %d", wn, fold ? "64" : "K", pb->w->rank);
  GDN_TRY(gdn_tensor_check(pb->u, un));
  if (pb->u->rank != 3) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: expected rank 3 [T, Hv, V], got %d", un, pb->u->rank);
  const int64_t Hv = pb->w->sizes[1], K = pb->k->sizes[2], V = pb->u->sizes[2];
  if (K != 64 && K != 128 && K != 256)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "k: head dim K = %lld is not one of 64, 128, 256", (long long)K);
  if (fold && K > 128)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "the folded WY form (v, tu) needs K <= 128 (K = %lld): pass w and u", (long long)K);
  if (fold && pb->gk)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "the folded WY form (v, tu) has no per-key gate path: with gk pass w and u");
  if (V < 32 || V % 32 != 0)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "%s: head dim V = %lld is not a positive multiple of 32", un, (long long)V);
  GDN_TRY(check_tokens(pb->w, wn, T, Hv, fold ? 64 : K, NULL));
  GDN_TRY(check_tokens(pb->u, un, T, Hv, V, pb->w));
  GDN_TRY(check_group(Hv, pb->k->sizes[1], "k"));
  GDN_TRY(check_tokens(pb->k, "k", T, pb->k->sizes[1], K, pb->w));
  if (pb->o_mode) {
    GDN_TRY(gdn_tensor_check(pb->q, "q"));
    if (pb->q->rank != 3) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "q: expected rank 3 [T, Hq, K], got %d", pb->q->rank);
    GDN_TRY(check_group(Hv, pb->q->sizes[1], "q"));
    GDN_TRY(check_tokens(pb->q, "q", T, pb->q->sizes[1], K, pb->w));
    GDN_TRY(check_tokens(pb->o, "o", T, Hv, V, pb->w));
    int64_t sa[3] = {-1, Hv, 64};
    GDN_TRY(gdn_check_tensor(pb->aqk, "aqk", 3, sa, GDN_DTYPE_MASK(pb->w->dtype)));
    GDN_TRY(gdn_check_rows(pb->aqk, "aqk", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(pb->aqk, "aqk"));
    GDN_TRY(gdn_check_aligned(pb->aqk, "aqk", 16));
    if (pb->qf) {
      int64_t sz[2] = {-1, Hv};
      GDN_TRY(gdn_check_tensor(pb->qf, "qf", 2, sz, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
      GDN_TRY(gdn_check_rows(pb->qf, "qf", T, "token"));
    }
  }
  if (pb->kf) {
    int64_t sz[2] = {-1, Hv};
    GDN_TRY(gdn_check_tensor(pb->kf, "kf", 2, sz, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(pb->kf, "kf", T, "token"));
  }
  if (pb->g) {
    int64_t sz[2] = {-1, Hv};
    GDN_TRY(gdn_check_tensor(pb->g, "g", 2, sz, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(pb->g, "g", T, "token"));
  }
  if (pb->gk) {
    int64_t sz[3] = {-1, Hv, K};
    GDN_TRY(gdn_check_tensor(pb->gk, "gk", 3, sz, GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(pb->gk, "gk", T, "token"));
    GDN_TRY(gdn_check_inner_contiguous(pb->gk, "gk"));
    GDN_TRY(gdn_check_aligned(pb->gk, "gk", 16));
  }
  {
    int64_t sz[4] = {-1, Hv, V, K};
    if (pb->state) GDN_TRY(gdn_check_tensor(pb->state, "state", 4, sz, GDN_FLOAT_TYPES));
    if (pb->state_out) GDN_TRY(gdn_check_tensor(pb->state_out, "state_out", 4, sz, GDN_FLOAT_TYPES));
    if (pb->ckpt) {
      GDN_TRY(gdn_check_tensor(pb->ckpt, "checkpoints", 4, sz, GDN_FLOAT_TYPES));
      if (pb->ckpt_every <= 0 || pb->ckpt_every % 64 != 0)
        return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "checkpoint_every = %d is not a positive multiple of 64",
                        pb->ckpt_every);
      if (pb->batch->checkpoint_offsets == NULL)
        return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                        "checkpoints: the batch has no checkpoint offsets (gdn_batch_setup_args.checkpoint_offsets)");
    }
    if (pb->batch->segments != NULL) {
      const size_t need = gdn_scan_cp_workspace_bytes(pb->batch, (int)Hv, (int)V, (int)K);
      if (pb->cp_ws == NULL || pb->cp_ws_bytes < need || (uintptr_t)pb->cp_ws % 16 != 0)
        return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                        "cp_workspace: the batch is segmented (context parallelism) and needs %zu bytes, 16-byte aligned "
                        "(given %zu at %p)",
                        need, pb->cp_ws_bytes, pb->cp_ws);
    }
  }
  if (pb->h) {
    int64_t sz[4] = {-1, Hv, K, V};
    GDN_TRY(gdn_check_tensor(pb->h, "h", 4, sz, GDN_DTYPE_MASK(pb->w->dtype) | GDN_DTYPE_MASK(GDN_DTYPE_F32)));
    GDN_TRY(gdn_check_rows(pb->h, "h", NT, "chunk"));
    GDN_TRY(gdn_check_inner_contiguous(pb->h, "h"));
    GDN_TRY(gdn_check_aligned(pb->h, "h", 8));
  }
  if (pb->v_new) GDN_TRY(check_tokens(pb->v_new, "v_new", T, Hv, V, pb->w));
  if (pb->nz != NULL || pb->nw != NULL) {
    if (pb->nz == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "norm_weight: given without norm_z (the output norm's gate)");
    if (!fold)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "norm_z: the output norm runs in the folded WY form only (pass v and tu)");
    GDN_TRY(check_tokens(pb->nz, "norm_z", T, Hv, V, pb->w));
    if (pb->nw == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "norm_weight: required with norm_z");
    int64_t sz[1] = {V};
    GDN_TRY(gdn_check_tensor(pb->nw, "norm_weight", 1, sz, GDN_FLOAT_TYPES));
    GDN_TRY(gdn_check_norm_eps(pb->n_eps, "norm_eps"));
  }

  /* Outputs must not alias inputs or each other: the scan reads inputs while writing. */
  const gdn_tensor *ins[] = {pb->q, pb->k, pb->w, pb->u, pb->g, pb->gk, pb->aqk, pb->qf, pb->kf, pb->nz, pb->nw};
  const char *in_names[] = {"q", "k", wn, un, "g", "gk", "aqk", "qf", "kf", "norm_z", "norm_weight"};
  const gdn_tensor *outs[] = {pb->o, pb->h, pb->v_new, pb->state, pb->state_out, pb->ckpt};
  const char *out_names[] = {"o", "h", "v_new", "state", "state_out", "checkpoints"};
  GDN_TRY(gdn_check_outputs(outs, out_names, 6, ins, in_names, 11));
  return GDN_SUCCESS;
}

/* Whether this build has the sm_90a kernels (CMake defines GDN_HAVE_SM90A). */
#if defined(GDN_HAVE_SM90A) && GDN_HAVE_SM90A
static const int wgmma_built = 1;
#else
static const int wgmma_built = 0;
#endif

/* The built (BV, warps) pairs. The column-split kernel (one warp per 16 value columns,
 * S^T in registers, K <= 128) takes BV = 16 x warps; its warpgroup form (col 2, sm_90a)
 * K = 128 and BV = 64 or 128; the key-row warpgroup scan (col 3, sm_90a) K = 128, BV 32 /
 * 64 / 128 with BV / 8 warps; the row-group kernel (4 row groups x column groups) BV 32 x
 * 4 or 8 warps, 64 x 4 (K < 256) or 8. */
int gdn_scan_supported(int K, int col, int bv, int warps) {
  if (col < 0 || col > 3) return 0;
  if (col == 3) return wgmma_built && K == 128 && (bv == 32 || bv == 64 || bv == 128) && warps == bv / 8;
  if (col == 2) return wgmma_built && K == 128 && (bv == 64 || bv == 128) && bv == 16 * warps;
  if (col) return K <= 128 && (bv == 32 || bv == 64 || bv == 128) && bv == 16 * warps;
  return (bv == 32 && (warps == 4 || warps == 8)) || (bv == 64 && (warps == 8 || (warps == 4 && K != 256)));
}

int gdn_scan_wgmma_device(int K, const gdn_device_info *dev) {
  return wgmma_built && K == 128 && dev->cc_major == 9 && dev->cc_minor == 0;
}

/* The warpgroup scans can run here (gdn_scan_wgmma_device) and GDN_CHUNK_H_WGMMA is not 0. */
int gdn_scan_hopper_wg(int K, const gdn_device_info *dev) {
  int env_wg = -1;
  if (gdn_param_int(GDN_PARAM_CHUNK_H_WGMMA, &env_wg) < 0) env_wg = -1; /* the plan reports it */
  return gdn_scan_wgmma_device(K, dev) && env_wg != 0;
}

size_t gdn_scan_config_smem(int K, int column_split, int bv, int num_stages, int o_mode) {
  if (column_split == 3) return gdn_scan_wgk_smem_bytes(K, bv, num_stages);
  if (column_split == 2) return gdn_scan_wg_smem_bytes(K, bv, num_stages, o_mode);
  return column_split ? gdn_scan_col_smem_bytes(K, bv, num_stages, o_mode) : gdn_scan_smem_bytes(K, bv, num_stages, o_mode);
}

/* The transition pass runs without the output: the delta_h kernel, or the folded form's. */
static int transition_mode(int o_mode) { return gdn_scan_mode_fold(o_mode) ? 3 : 0; }

int64_t gdn_scan_mean_chunks(const gdn_batch *b) {
  return b->max_seqs > 0 ? ((int64_t)b->max_tokens / b->max_seqs + 63) / 64 : 1;
}

/* (unit, head) pairs of the scan's grid: units are segments when the batch is cut into
 * them (context parallelism), else sequences. */
static int64_t scan_pairs(const gdn_batch *b, int Hv) {
  return (int64_t)(b->segments != NULL ? b->max_segments : b->max_seqs) * Hv;
}

int gdn_scan_default_column_split(const gdn_batch *batch, int Hv, int K, int V, int o_mode, const gdn_device_info *dev) {
  if (K > 128) return 0;
  /* a segmented batch runs many short chains: the throughput kernel */
  if (batch->segments != NULL || gdn_scan_mode_fold(o_mode)) return 1;
  const int64_t pairs = (int64_t)batch->max_seqs * Hv;
  /* Long chains where every SM gets a CTA. chunk_delta_h with the warpgroup scan (BV 64 gives
   * V / 64 CTAs a pair, the BV choice below): from half of SMs / (V / 64) pairs. Measured on
   * an H200 (warpgroup vs row groups): TP1 4 x 2048 159 vs 204 us; TP4 8 x 8192 (64 pairs,
   * 128 CTAs of one warpgroup) 254 vs 506; 64 x 128 (2 chunks) 290 vs 264; 1 x 8192 (32
   * pairs, then the mma.sync column split at BV = 32) 315 vs 244. */
  int64_t need = dev->sm_count;
  if (o_mode == 0 && gdn_scan_hopper_wg(K, dev) && V >= 64 && V % 64 == 0)
    need = (dev->sm_count + 2 * (V / 64) - 1) / (2 * (V / 64));
  return pairs >= need && gdn_scan_mean_chunks(batch) > 4;
}

int gdn_scan_fold_default(const gdn_batch *batch, int Hv, int K, int V, const gdn_device_info *dev) {
  int env_col = -1;
  if (K > 128 || gdn_param_int(GDN_PARAM_CHUNK_H_COLUMN_SPLIT, &env_col) < 0) return 0;
  if (env_col == 0 || env_col == 1) return env_col;
  /* Hopper with the warpgroup scan built: the folded forward wherever there are >= 16
   * (sequence, head) pairs; its intra-chunk kernel skips w and u, which pays even where the
   * scan alone is slower than the row groups. Measured on an H200 (bench_prefill, folded
   * column split vs row groups): TP1 64 x 128 569 -> 403 us, 4 x 2048 497 -> 291, 1 x 8192
   * 594 -> 498, 1 x 32768 2256 -> 1850, TP4 8 x 8192 1192 -> 949; at 8 pairs (TP4 1 x 512)
   * 62 -> 69. Elsewhere (measured on an H100 with the mma.sync kernels) the row groups keep
   * short and narrow batches. */
  if (gdn_scan_hopper_wg(K, dev) && batch->segments == NULL && (int64_t)batch->max_seqs * Hv >= 16) return 1;
  return gdn_scan_default_column_split(batch, Hv, K, V, 1, dev);
}

gdn_status gdn_scan_plan(const gdn_scan_problem *pb, const gdn_device_info *dev, gdn_scan_config *cfg) {
  GDN_TRY(gdn_scan_validate(pb));
  if (dev == NULL || cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "plan: dev and cfg must not be NULL");
  const int K = gdn_scan_problem_K(pb), V = (int)pb->u->sizes[2], Hv = (int)pb->w->sizes[1];
  const size_t limit = dev->smem_per_block_optin;
  const int64_t per_block = scan_pairs(pb->batch, Hv);

  int env_bv = 0, env_warps = 0, env_stages = 0, env_col = -1, env_wg = -1, r;
  if ((r = gdn_param_int(GDN_PARAM_CHUNK_H_BV, &env_bv)) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if ((r = gdn_param_int(GDN_PARAM_CHUNK_H_NUM_WARPS, &env_warps)) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if ((r = gdn_param_int(GDN_PARAM_CHUNK_H_NUM_STAGES, &env_stages)) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if (gdn_param_int(GDN_PARAM_CHUNK_H_WGMMA, &env_wg) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if (env_wg < -1 || env_wg > 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_WGMMA=%d: expected 0, 1 or -1 (planned)", env_wg);
  if ((r = gdn_param_int(GDN_PARAM_CHUNK_H_COLUMN_SPLIT, &env_col)) < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if (r == 0) env_col = -1;
  else if (env_col != 0 && env_col != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "GDN_CHUNK_H_COLUMN_SPLIT=%d: expected 0 (row groups) or 1 (column split)",
                    env_col);

  /* chunk_delta_h on Hopper: the key-row warpgroup scan (scan_plan_key_rows.c) */
  int taken = 0;
  GDN_TRY(gdn_scan_plan_key_rows(pb, dev, env_bv, env_warps, env_stages, env_col, env_wg, cfg, &taken));
  if (taken) return GDN_SUCCESS;

  /* Kernel: the override, else the only one that builds an overridden BV (/ warps), else the default. */
  int col = gdn_scan_default_column_split(pb->batch, Hv, K, V, pb->o_mode, dev);
  if (env_col >= 0) {
    col = env_col;
  } else if (env_bv > 0) {
    const int w_col = env_warps ? env_warps : env_bv / 16, w_row = env_warps ? env_warps : (env_bv == 64 ? 8 : 4);
    const int ok_col = gdn_scan_supported(K, 1, env_bv, w_col), ok_row = gdn_scan_supported(K, 0, env_bv, w_row);
    if (ok_col != ok_row) col = ok_col;
  }
  if (gdn_scan_mode_fold(pb->o_mode) && !col)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "the folded WY form (v, tu) runs on the column-split kernel only "
                                           "(GDN_CHUNK_H_COLUMN_SPLIT=0 or a row-group BV/warps override was given)");

  /* Default BV: the widest V-block that still gives every SM a CTA at the batch capacity
   * (the scan is sequential per CTA: parallelism comes from sequences x heads x blocks). */
  int bv = 32;
  for (int cand = col ? 128 : 64; cand > 32; cand /= 2)
    if (V % cand == 0 && per_block * (V / cand) >= dev->sm_count) {
      bv = cand;
      break;
    }
  /* On warpgroup tensor cores (BV 64: one compute warpgroup, 128: two taking turns) a CTA of
   * one warpgroup walks its chunks in about 0.6x the time of two: the folded forward takes
   * BV 64 below 1.4 x SMs pairs (measured between 168 and 192). H200, bench_prefill (BV 64
   * vs what the rule above gives): TP4 8 x 8192 (64 pairs; mma.sync BV 32) 912 -> 369 us,
   * 4 x 2048 (168 segment pairs; BV 128) 156 -> 119, 1 x 8192 (144) 180 -> 138, 1 x 32768
   * (144) 347 -> 328, TP1 1 x 512 (32; BV 32) 69 -> 60; from 192 pairs BV 128: TP1 1 x 8192
   * (segments) 337 vs 348, 1 x 32768 1075 vs 1167, 8 x 8192 1282 vs 1479. chunk_delta_h (no
   * output) only leaves BV 32 (segmented TP2 / TP4 1 x 8192 and 4 x 2048: BV 128 107-159 us
   * vs BV 64 114-181). Where the warpgroup form is then not taken, the rule above's BV. */
  const int bv_cta = bv;
  if (col && gdn_scan_hopper_wg(K, dev) && V % 64 == 0) {
    if (gdn_scan_mode_fold(pb->o_mode))
      bv = V % 128 == 0 && per_block * 10 >= (int64_t)dev->sm_count * 14 ? 128 : 64;
    else if (bv == 32)
      bv = 64;
  }
  if (gdn_scan_mode_norm(pb->o_mode)) bv = V; /* the output norm needs whole rows in a CTA */
  if (env_bv != 0) bv = env_bv;
  if (bv <= 0 || V % bv != 0)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "chunk scan config BV=%d does not divide V=%d", bv, V);
  int stages = env_stages;
  int warps = env_warps;
  if (warps == 0) {
    /* column split: one warp per 16 columns. Row groups: 8 warps for BV = 64 with the
     * fused output and a prefetching pipeline, or K = 256 (4 would spill); else 4 (two
     * one-stage CTAs share an SM: 64 x 128 tokens, 313 vs 397 us on H100). */
    const int deep = stages != 1 && (gdn_scan_mean_chunks(pb->batch) > 4 || pb->batch->segments != NULL);
    warps = col ? bv / 16 : (bv == 64 && (K == 256 || (pb->o_mode && deep))) ? 8 : 4;
  }
  /* The column split runs on warpgroup tensor cores where it is built for the shape and
   * the device is compute capability 9.0 (sm_90a code runs there only). */
  if (col && env_wg != 0) {
    /* (where its two stages at least fit: else the mma.sync column split) */
    const int fits = gdn_scan_config_smem(K, 2, bv, stages > 2 ? stages : 2, pb->o_mode) <= limit;
    if (gdn_scan_hopper_wg(K, dev) && gdn_scan_supported(K, 2, bv, warps) && stages != 1 && (fits || env_wg == 1)) {
      col = 2;
    } else if (env_wg == 1) {
      return gdn_fail(GDN_ERROR_UNSUPPORTED,
                      "GDN_CHUNK_H_WGMMA=1: the warpgroup scan needs %s (here K=%d, BV=%d, %d warps, %d stages, "
                      "compute capability %d.%d)",
                      wgmma_built ? "K = 128, BV 64 or 128 with BV / 16 warps, 2+ stages, compute capability 9.0"
                                  : "a build for sm_90 (CMAKE_CUDA_ARCHITECTURES 90)",
                      K, bv, warps, stages, dev->cc_major, dev->cc_minor);
    }
  }
  if (col != 2 && env_bv == 0 && bv != bv_cta) {
    bv = bv_cta;
    if (env_warps == 0) warps = bv / 16;
  }
  if (!gdn_scan_supported(K, col, bv, warps))
    return gdn_fail(GDN_ERROR_UNSUPPORTED,
                    "chunk scan config BV=%d with %d warps is not built for K=%d on the %s kernel (column split: BV "
                    "32 / 64 / 128 with 2 / 4 / 8 warps, K <= 128; row groups: BV 32 x 4 or 8 warps, 64 x 8, 64 x 4 "
                    "for K < 256)",
                    bv, warps, K, col == 2 ? "warpgroup column-split" : col ? "column-split" : "row-group");
  if (gdn_scan_mode_norm(pb->o_mode) && !(col == 2 && bv == V && V == 128))
    return gdn_fail(GDN_ERROR_UNSUPPORTED,
                    "norm_z: the output norm runs in the warpgroup scan over whole rows (compute capability 9.0, an "
                    "sm_90 build, K = V = 128, 2+ stages that fit); here K=%d, V=%d, BV=%d, %d stages (0: planned) on "
                    "the %s kernel: apply gdn_gated_rmsnorm to o",
                    K, V, bv, stages, col == 2 ? "warpgroup" : col ? "column-split" : "row-group");
  const int min_stages = col == 2 ? 2 : 1; /* the warpgroup scan loads a stage ahead */
  if (stages != 0) {
    if (stages < min_stages || stages > 4)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "GDN_CHUNK_H_NUM_STAGES=%d is outside %d..4", stages, min_stages);
    size_t need = gdn_scan_config_smem(K, col, bv, stages, pb->o_mode);
    if (need > limit)
      return gdn_fail(GDN_ERROR_UNSUPPORTED,
                      "chunk scan config K=%d BV=%d warps=%d stages=%d needs %zu bytes of shared memory per block; the "
                      "device allows %zu",
                      K, bv, warps, stages, need, limit);
  } else {
    /* Short sequences (<= 4 chunks on average at capacity) gain nothing from a deep
     * prefetch; one stage halves the shared memory so two CTAs share an SM and hide
     * each other's load latency (measured on H100, 64 x 128 tokens: 313 vs 359 us). */
    /* chunk_delta_h on the warpgroup scan: 2 (its producer warpgroup runs a stage ahead; a
     * third measured slower on an H200 at TP1 8 x 8192, 911 vs 869 us, level elsewhere). */
    const int deep_stages = col == 2 && pb->o_mode == 0 ? 2 : 3;
    for (stages = gdn_scan_mean_chunks(pb->batch) <= 4 && pb->batch->segments == NULL ? min_stages : deep_stages;
         stages > min_stages && gdn_scan_config_smem(K, col, bv, stages, pb->o_mode) > limit; --stages) {
    }
    if (gdn_scan_config_smem(K, col, bv, stages, pb->o_mode) > limit)
      return gdn_fail(GDN_ERROR_UNSUPPORTED,
                      "chunk scan K=%d BV=%d warps=%d needs %zu bytes of shared memory; the device allows %zu", K, bv,
                      warps, gdn_scan_config_smem(K, col, bv, min_stages, pb->o_mode), limit);
  }
  cfg->bv = bv;
  cfg->num_warps = warps;
  cfg->num_stages = stages;
  cfg->column_split = col;
  cfg->smem_bytes = gdn_scan_config_smem(K, col, bv, stages, pb->o_mode);
  cfg->o_mode = pb->o_mode;
  cfg->cp_stages = 0;
  cfg->cp_smem_bytes = 0;
  if (pb->batch->segments != NULL) {
    /* the transition pass: the o-free kernel of the same (kernel, BV, warps), as deep as fits */
    const int tm = transition_mode(pb->o_mode);
    int ts = stages;
    while (ts > min_stages && gdn_scan_config_smem(K, col, bv, ts, tm) > limit) --ts;
    if (gdn_scan_config_smem(K, col, bv, ts, tm) > limit)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "chunk scan transition pass K=%d BV=%d needs %zu bytes of shared memory", K,
                      bv, gdn_scan_config_smem(K, col, bv, min_stages, tm));
    cfg->cp_stages = ts;
    cfg->cp_smem_bytes = gdn_scan_config_smem(K, col, bv, ts, tm);
  }
  return GDN_SUCCESS;
}

size_t gdn_scan_cp_workspace_bytes(const gdn_batch *b, int Hv, int V, int K) {
  if (b == NULL || b->segments == NULL || Hv <= 0 || V <= 0 || K <= 0) return 0;
  return gdn_scan_cp_bytes(b->max_segments, Hv, V, K);
}

/* Whether every row of a 16-bit tensor starts on a 16-byte boundary (no error recorded). */
static int rows_aligned16(const gdn_tensor *t) {
  if ((uintptr_t)t->data % 16u != 0) return 0;
  for (int d = 0; d < t->rank - 1; ++d)
    if (t->sizes[d] > 1 && (t->strides[d] * 2) % 16 != 0) return 0;
  return 1;
}

gdn_status gdn_scan_prepare(const gdn_scan_problem *pb, const gdn_scan_config *cfg, gdn_scan_params *p,
                            int64_t *grid) {
  GDN_TRY(gdn_scan_validate(pb));
  if (cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "cfg is NULL: call the plan function first");
  const int K = gdn_scan_problem_K(pb), V = (int)pb->u->sizes[2], Hv = (int)pb->w->sizes[1];
  if (cfg->o_mode != pb->o_mode || !gdn_scan_supported(K, cfg->column_split, cfg->bv, cfg->num_warps) || V % cfg->bv != 0 ||
      (cfg->column_split == 3 && cfg->o_mode != 0) || cfg->num_stages < (cfg->column_split >= 2 ? 2 : 1) ||
      cfg->num_stages > 4 ||
      cfg->smem_bytes != gdn_scan_config_smem(K, cfg->column_split, cfg->bv, cfg->num_stages, cfg->o_mode) ||
      (pb->batch->segments != NULL) != (cfg->cp_stages > 0) ||
      (cfg->cp_stages > 0 &&
       (cfg->cp_stages < (cfg->column_split >= 2 ? 2 : 1) || cfg->cp_stages > 4 ||
        cfg->cp_smem_bytes !=
            gdn_scan_config_smem(K, cfg->column_split, cfg->bv, cfg->cp_stages, transition_mode(cfg->o_mode)))))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "cfg (BV=%d, warps=%d, stages=%d) was not planned for this problem (K=%d, V=%d)",
                    cfg->bv, cfg->num_warps, cfg->num_stages, K, V);
  memset(p, 0, sizeof *p);
  const gdn_batch *b = pb->batch;
  p->cu_seqlens = b->cu_seqlens;
  p->chunk_offsets = b->chunk_offsets;
  p->slots = b->slots;
  p->slots_out = b->slots_out;
  p->header = b->header;
  p->segments = b->segments;
  p->when_cut = b->when_cut;
  p->K = K;
  p->Hv = Hv;
  p->V = V;
  p->group_k = Hv / (int)pb->k->sizes[1];
  p->group_q = pb->q ? Hv / (int)pb->q->sizes[1] : 1;
  p->k = pb->k->data; p->k_st = pb->k->strides[0]; p->k_sh = pb->k->strides[1];
  if (pb->q) { p->q = pb->q->data; p->q_st = pb->q->strides[0]; p->q_sh = pb->q->strides[1]; }
  p->w = pb->w->data; p->w_st = pb->w->strides[0]; p->w_sh = pb->w->strides[1];
  p->u = pb->u->data; p->u_st = pb->u->strides[0]; p->u_sh = pb->u->strides[1];
  if (pb->g) { p->g = (const float *)pb->g->data; p->g_st = pb->g->strides[0]; p->g_sh = pb->g->strides[1]; }
  if (pb->gk) { p->gk = (const float *)pb->gk->data; p->gk_st = pb->gk->strides[0]; p->gk_sh = pb->gk->strides[1]; }
  if (pb->o_mode) { p->aqk = pb->aqk->data; p->aqk_st = pb->aqk->strides[0]; p->aqk_sh = pb->aqk->strides[1]; }
  if (pb->qf) { p->qf = (const float *)pb->qf->data; p->qf_st = pb->qf->strides[0]; p->qf_sh = pb->qf->strides[1]; }
  if (pb->kf) { p->kf = (const float *)pb->kf->data; p->kf_st = pb->kf->strides[0]; p->kf_sh = pb->kf->strides[1]; }
  if (pb->state) {
    const gdn_tensor *t = pb->state;
    p->state_in = t->data; p->si_dt = t->dtype;
    p->si_row = t->strides[0]; p->si_h = t->strides[1]; p->si_v = t->strides[2]; p->si_k = t->strides[3];
  }
  const gdn_tensor *so = pb->state_out ? pb->state_out : pb->state; /* in place without state_out */
  if (so) {
    p->state_out = so->data; p->so_dt = so->dtype;
    p->so_row = so->strides[0]; p->so_h = so->strides[1]; p->so_v = so->strides[2]; p->so_k = so->strides[3];
  }
  if (pb->ckpt) {
    const gdn_tensor *t = pb->ckpt;
    p->ckpt = t->data; p->ck_dt = t->dtype;
    p->ck_row = t->strides[0]; p->ck_h = t->strides[1]; p->ck_v = t->strides[2]; p->ck_k = t->strides[3];
    p->ckpt_offsets = b->checkpoint_offsets;
    p->ckpt_chunks = pb->ckpt_every / 64;
  }
  p->cp_x = b->segments ? (float *)pb->cp_ws : NULL;
  if (pb->h) {
    p->h = pb->h->data; p->h_sc = pb->h->strides[0]; p->h_sh = pb->h->strides[1]; p->h_sk = pb->h->strides[2];
    p->h_f32 = pb->h->dtype == GDN_DTYPE_F32;
    p->h_vec16 = !p->h_f32 && rows_aligned16(pb->h);
  }
  if (pb->v_new) { p->v_new = pb->v_new->data; p->vn_st = pb->v_new->strides[0]; p->vn_sh = pb->v_new->strides[1]; }
  if (pb->o) { p->o = pb->o->data; p->o_st = pb->o->strides[0]; p->o_sh = pb->o->strides[1]; }
  if (gdn_scan_mode_norm(pb->o_mode)) {
    p->nz = pb->nz->data; p->nz_st = pb->nz->strides[0]; p->nz_sh = pb->nz->strides[1];
    p->nw = pb->nw->data; p->nw_s = pb->nw->strides[0]; p->nw_dt = (int)pb->nw->dtype;
    p->n_eps = (float)(pb->n_eps > 0.0 ? pb->n_eps : GDN_GATED_RMSNORM_DEFAULT_EPS);
  }
  p->scale = pb->scale;
  p->stages = cfg->num_stages;
  const int64_t units = b->segments ? b->max_segments : b->max_seqs;
  *grid = units * Hv * (V / cfg->bv);
  const int64_t grid1 = b->segments ? units * Hv * (V / cfg->bv + (K + cfg->bv - 1) / cfg->bv) : 0;
  if (*grid > 0x7fffffffLL || grid1 > 0x7fffffffLL)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "chunk scan grid of %lld CTAs exceeds the launch limit",
                    (long long)(grid1 > *grid ? grid1 : *grid));
  return GDN_SUCCESS;
}

void gdn_scan_transition_params(const gdn_scan_params *main, const gdn_scan_config *cfg, const gdn_batch *b,
                                gdn_scan_params *p, int64_t *grid, int *o_mode) {
  *p = *main;
  p->cp_phase = 1;
  p->q = NULL; p->aqk = NULL; p->qf = NULL; p->o = NULL; p->nz = NULL; p->nw = NULL;
  p->h = NULL; p->v_new = NULL; p->ckpt = NULL;
  p->state_out = NULL;
  p->stages = cfg->cp_stages;
  *o_mode = transition_mode(cfg->o_mode);
  *grid = (int64_t)b->max_segments * p->Hv * (p->V / cfg->bv + (p->K + cfg->bv - 1) / cfg->bv);
}

gdn_status gdn_chunk_delta_h_validate(const gdn_chunk_delta_h_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL");
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return gdn_scan_validate(&pb);
}

gdn_status gdn_chunk_delta_h_plan(const gdn_chunk_delta_h_args *a, const gdn_device_info *dev, gdn_scan_config *cfg) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL");
  gdn_scan_problem pb = gdn_scan_problem_delta_h(a);
  return gdn_scan_plan(&pb, dev, cfg);
}

gdn_status gdn_chunk_scan_o_validate(const gdn_chunk_scan_o_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL");
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return gdn_scan_validate(&pb);
}

gdn_status gdn_chunk_scan_o_plan(const gdn_chunk_scan_o_args *a, const gdn_device_info *dev, gdn_scan_config *cfg) {
  gdn_clear_last_error();
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args is NULL");
  gdn_scan_problem pb = gdn_scan_problem_scan_o(a);
  return gdn_scan_plan(&pb, dev, cfg);
}
