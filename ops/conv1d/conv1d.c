/* conv1d: validation and launch-config choice (pure host C). */
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "core/params.h"
#include "gdn/conv1d.h"
#include "ops/conv1d/conv1d_shape.h"

/* Alignment of a view for `bytes`-wide accesses: pointer and every stride but the last. */
static int view_aligned(const gdn_tensor *t, int64_t bytes) {
  if (t->data == NULL) return 1;
  int64_t es = (int64_t)gdn_dtype_size(t->dtype);
  if ((uintptr_t)t->data % (uintptr_t)bytes != 0) return 0;
  for (int d = 0; d < t->rank - 1; ++d)
    if (t->sizes[d] > 1 && (t->strides[d] * es) % bytes != 0) return 0;
  return 1;
}

gdn_status gdn_conv1d_disjoint_rows(const gdn_tensor *a, const char *an, const gdn_tensor *b, const char *bn) {
  if (gdn_check_disjoint(a, an, b, bn) == GDN_SUCCESS) return GDN_SUCCESS;
  /* Interleaved row views of one buffer (e.g. q|k|v columns of one [T, D] array) are
   * fine when every row of one falls in the gap between rows of the other. */
  int64_t ea = (int64_t)gdn_dtype_size(a->dtype), eb = (int64_t)gdn_dtype_size(b->dtype);
  int64_t S = a->strides[0] * ea;
  if (a->rank >= 2 && b->rank >= 2 && S > 0 && S == b->strides[0] * eb) {
    int64_t ra = 0, rb = 0; /* byte extent of one row */
    for (int d = 1; d < a->rank; ++d) ra += (a->sizes[d] - 1) * a->strides[d];
    for (int d = 1; d < b->rank; ++d) rb += (b->sizes[d] - 1) * b->strides[d];
    ra = (ra + 1) * ea;
    rb = (rb + 1) * eb;
    int64_t diff = (int64_t)((uintptr_t)b->data - (uintptr_t)a->data);
    int64_t r = ((diff % S) + S) % S; /* where b's rows start inside a's row period */
    if (ra <= S && rb <= S && r >= ra && r + rb <= S) {
      gdn_clear_last_error();
      return GDN_SUCCESS;
    }
  }
  return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s overlaps %s in memory", an, bn);
}

gdn_status gdn_conv1d_shape(const gdn_conv1d_args *a, gdn_conv1d_shape_t *s) {
  if (a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d: args is NULL");
  memset(s, 0, sizeof *s);
  GDN_TRY(gdn_check_tensor(&a->mixed, "mixed", 2, NULL, GDN_FLOAT16_TYPES));
  GDN_TRY(gdn_check_inner_contiguous(&a->mixed, "mixed"));
  unsigned act = GDN_DTYPE_MASK(a->mixed.dtype);
  GDN_TRY(gdn_check_tensor(&a->q, "q", 3, NULL, act));
  GDN_TRY(gdn_check_tensor(&a->v, "v", 3, NULL, act));
  int64_t Hk = a->q.sizes[1], K = a->q.sizes[2], Hv = a->v.sizes[1], V = a->v.sizes[2];
  if (Hk < 1 || K < 1) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "q: heads %lld and head dim %lld must be >= 1", (long long)Hk, (long long)K);
  if (Hv < 1 || V < 1) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "v: heads %lld and head dim %lld must be >= 1", (long long)Hv, (long long)V);
  int64_t ksz[3] = {-1, Hk, K};
  GDN_TRY(gdn_check_tensor(&a->k, "k", 3, ksz, act));
  GDN_TRY(gdn_check_inner_contiguous(&a->q, "q"));
  GDN_TRY(gdn_check_inner_contiguous(&a->k, "k"));
  GDN_TRY(gdn_check_inner_contiguous(&a->v, "v"));
  int64_t D = 2 * Hk * K + Hv * V;
  if (D > (1 << 30)) return gdn_fail(GDN_ERROR_UNSUPPORTED, "conv1d: D = %lld channels is above 2^30", (long long)D);
  if (a->mixed.sizes[1] < D)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "mixed: size[1] is %lld, expected >= D = 2*Hk*K + Hv*V = %lld",
                    (long long)a->mixed.sizes[1], (long long)D);
  unsigned wmask = act | GDN_DTYPE_MASK(GDN_DTYPE_F32);
  GDN_TRY(gdn_check_tensor(&a->weight, "weight", 2, NULL, wmask));
  if (a->weight.sizes[0] != D)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "weight: size[0] is %lld, expected D = %lld", (long long)a->weight.sizes[0], (long long)D);
  int64_t W = a->weight.sizes[1];
  if (W < 2 || W > GDN_CONV1D_MAX_WIDTH)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "weight: kernel width (size[1]) is %lld, supported 2..%d", (long long)W, GDN_CONV1D_MAX_WIDTH);
  int64_t bsz[1] = {D};
  GDN_TRY(gdn_check_optional(&a->bias, "bias", 1, bsz, wmask));
  if (gdn_tensor_present(&a->conv_state)) {
    int64_t ssz[3] = {-1, W - 1, D};
    GDN_TRY(gdn_check_tensor(&a->conv_state, "conv_state", 3, ssz, act));
    GDN_TRY(gdn_check_inner_contiguous(&a->conv_state, "conv_state"));
    if (a->conv_state.sizes[0] > INT32_MAX)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv_state: %lld slots exceed int32", (long long)a->conv_state.sizes[0]);
  }
  const gdn_batch *b = &a->batch;
  if (b->header == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch.header is NULL");
  if (b->cu_seqlens == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch.cu_seqlens is NULL");
  if (b->max_seqs < 0 || b->max_tokens < 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "batch: max_seqs %d and max_tokens %d must be >= 0", b->max_seqs, b->max_tokens);
  const gdn_tensor *rows[4] = {&a->mixed, &a->q, &a->k, &a->v};
  const char *rn[4] = {"mixed", "q", "k", "v"};
  for (int i = 0; i < 4; ++i)
    if (rows[i]->sizes[0] < b->max_tokens)
      return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "%s: size[0] is %lld, expected >= batch.max_tokens = %d", rn[i],
                      (long long)rows[i]->sizes[0], b->max_tokens);
  /* Outputs must not alias each other or any input. */
  const gdn_tensor *outs[3] = {&a->q, &a->k, &a->v};
  const char *on[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    GDN_TRY(gdn_check_no_self_overlap(outs[i], on[i]));
    for (int j = i + 1; j < 3; ++j) GDN_TRY(gdn_conv1d_disjoint_rows(outs[i], on[i], outs[j], on[j]));
    GDN_TRY(gdn_conv1d_disjoint_rows(outs[i], on[i], &a->mixed, "mixed"));
    GDN_TRY(gdn_check_disjoint(outs[i], on[i], &a->weight, "weight"));
    GDN_TRY(gdn_check_disjoint(outs[i], on[i], &a->bias, "bias"));
    GDN_TRY(gdn_check_disjoint(outs[i], on[i], &a->conv_state, "conv_state"));
  }
  if (gdn_tensor_present(&a->conv_state)) GDN_TRY(gdn_check_no_self_overlap(&a->conv_state, "conv_state"));
  GDN_TRY(gdn_check_disjoint(&a->conv_state, "conv_state", &a->mixed, "mixed"));
  GDN_TRY(gdn_check_disjoint(&a->conv_state, "conv_state", &a->weight, "weight"));
  GDN_TRY(gdn_check_disjoint(&a->conv_state, "conv_state", &a->bias, "bias"));
  s->Hk = (int)Hk;
  s->K = (int)K;
  s->Hv = (int)Hv;
  s->V = (int)V;
  s->D = (int)D;
  s->W = (int)W;
  s->num_slots = gdn_tensor_present(&a->conv_state) ? (int)a->conv_state.sizes[0] : 0;
  return GDN_SUCCESS;
}

gdn_status gdn_conv1d_validate(const gdn_conv1d_args *args) {
  gdn_clear_last_error();
  gdn_conv1d_shape_t s;
  return gdn_conv1d_shape(args, &s);
}

static int vec_fits(const gdn_conv1d_args *a, const gdn_conv1d_shape_t *s, int vec) {
  int64_t bytes = vec * (int64_t)gdn_dtype_size(a->mixed.dtype);
  if (s->K % vec != 0 || s->V % vec != 0) return 0; /* a vector never straddles a head */
  return view_aligned(&a->mixed, bytes) && view_aligned(&a->conv_state, bytes) && view_aligned(&a->q, bytes) &&
         view_aligned(&a->k, bytes) && view_aligned(&a->v, bytes);
}

gdn_status gdn_conv1d_check_config(const gdn_conv1d_args *args, const gdn_conv1d_config *cfg) {
  gdn_clear_last_error();
  gdn_conv1d_shape_t s;
  GDN_TRY(gdn_conv1d_shape(args, &s));
  if (cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d: config is NULL");
  if (cfg->vec != 1 && cfg->vec != 2 && cfg->vec != 4 && cfg->vec != 8)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d config: vec is %d, expected 1, 2, 4 or 8", cfg->vec);
  if (!vec_fits(args, &s, cfg->vec))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT,
                    "conv1d config: vec %d does not fit the head dims (K %d, V %d) or the alignment of mixed/conv_state/q/k/v; re-plan",
                    cfg->vec, s.K, s.V);
  if (cfg->threads < 32 || cfg->threads > GDN_CONV1D_MAX_THREADS || cfg->threads % 32 != 0)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d config: threads is %d, expected a multiple of 32 in 32..%d", cfg->threads,
                    GDN_CONV1D_MAX_THREADS);
  if (cfg->tile_tokens < 1 || cfg->tile_tokens > GDN_CONV1D_MAX_TILE)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d config: tile_tokens is %d, expected 1..%d", cfg->tile_tokens,
                    GDN_CONV1D_MAX_TILE);
  int64_t groups = s.D / cfg->vec;
  if ((groups + cfg->threads - 1) / cfg->threads > 65535)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "conv1d config: %lld channel blocks exceed the grid limit", (long long)groups);
  return GDN_SUCCESS;
}

gdn_status gdn_conv1d_plan(const gdn_conv1d_args *args, const gdn_device_info *dev, gdn_conv1d_config *cfg) {
  gdn_clear_last_error();
  gdn_conv1d_shape_t s;
  GDN_TRY(gdn_conv1d_shape(args, &s));
  if (dev == NULL || cfg == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "conv1d_plan: dev and cfg must not be NULL");
  gdn_conv1d_config c;
  c.vec = 1;
  for (int v = 8; v > 1; v /= 2) {
    if (vec_fits(args, &s, v)) {
      c.vec = v;
      break;
    }
  }
  int64_t groups = s.D / c.vec;
  int64_t th = (groups + 31) / 32 * 32;
  c.threads = (int)(th < 128 ? th : 128);
  int64_t blocks_y = (groups + c.threads - 1) / c.threads;
  /* Longest token tile (the W-1 halo rows are re-read once per tile) whose grid still keeps
   * GDN_CONV1D_INFLIGHT_BYTES of loads in flight per SM: every thread has STEP row loads of
   * vec elements outstanding, and the launch bounds guarantee MIN_BLOCKS x MAX_THREADS
   * resident threads per SM (more threads would not be resident at once). */
  const int64_t es = (int64_t)gdn_dtype_size(args->mixed.dtype);
  int64_t per_sm = (GDN_CONV1D_INFLIGHT_BYTES + GDN_CONV1D_STEP * c.vec * es - 1) / (GDN_CONV1D_STEP * c.vec * es);
  if (per_sm > GDN_CONV1D_MIN_BLOCKS * GDN_CONV1D_MAX_THREADS) per_sm = GDN_CONV1D_MIN_BLOCKS * GDN_CONV1D_MAX_THREADS;
  const int64_t target = ((dev->sm_count > 0 ? dev->sm_count : 1) * per_sm + c.threads - 1) / c.threads; /* blocks */
  c.tile_tokens = 16;
  const int tiles[4] = {128, 64, 32, 16};
  for (int i = 0; i < 4; ++i) {
    int64_t bx = ((int64_t)args->batch.max_tokens + tiles[i] - 1) / tiles[i];
    if (bx * blocks_y >= target) {
      c.tile_tokens = tiles[i];
      break;
    }
  }
  int env = 0, r = gdn_param_int(GDN_PARAM_CONV1D_TILE, &env);
  if (r < 0) return GDN_ERROR_INVALID_ARGUMENT;
  if (r > 0) {
    if (env < 1 || env > GDN_CONV1D_MAX_TILE)
      return gdn_fail(GDN_ERROR_UNSUPPORTED, "GDN_CONV1D_TILE=%d is outside 1..%d", env, GDN_CONV1D_MAX_TILE);
    c.tile_tokens = env;
  }
  GDN_TRY(gdn_conv1d_check_config(args, &c));
  *cfg = c;
  return GDN_SUCCESS;
}
