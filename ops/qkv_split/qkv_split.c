/* qkv_split: validation, plan (layout kind + vector widths + block shape) and the host
 * side of the kernel description. Pure host C. */
#include <stdint.h>
#include <string.h>
#include "core/check.h"
#include "ops/qkv_split/qkv_split_internal.h"

#define FAIL_ARG(...) gdn_fail(GDN_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

const char *gdn_qkv_split_layout_name(gdn_qkv_split_layout layout) {
  switch (layout) {
    case GDN_QKV_SPLIT_TOKEN_MAJOR: return "token-major";
    case GDN_QKV_SPLIT_CHANNEL_MAJOR: return "channel-major";
    case GDN_QKV_SPLIT_GENERIC: return "generic";
    default: return "unknown";
  }
}

gdn_qkv_split_layout gdn_qkv_split_classify(const gdn_tensor *x) {
  if (x->strides[1] == 1) return GDN_QKV_SPLIT_TOKEN_MAJOR;
  if (x->strides[0] == 1) return GDN_QKV_SPLIT_CHANNEL_MAJOR;
  return GDN_QKV_SPLIT_GENERIC;
}

/* Writes to an output must not collide: with its dimensions sorted by stride, each stride
 * must reach past everything the smaller ones span (a sufficient injectivity test that
 * accepts padded and head-major layouts). */
static gdn_status check_no_self_overlap(const gdn_tensor *t, const char *name) {
  int order[GDN_MAX_RANK], n = 0;
  for (int d = 0; d < t->rank; ++d)
    if (t->sizes[d] > 1) order[n++] = d;
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && t->strides[order[j]] < t->strides[order[j - 1]]; --j) {
      int s = order[j];
      order[j] = order[j - 1];
      order[j - 1] = s;
    }
  int64_t extent = 1; /* elements spanned by the dimensions seen so far */
  for (int i = 0; i < n; ++i) {
    int d = order[i];
    if (t->strides[d] < extent)
      return FAIL_ARG("%s: strides (%lld, %lld, %lld) make distinct elements share memory (stride[%d] = %lld "
                      "< %lld); an output must not overlap itself",
                      name, (long long)t->strides[0], (long long)t->strides[1], (long long)t->strides[2], d,
                      (long long)t->strides[d], (long long)extent);
    extent += (t->sizes[d] - 1) * t->strides[d];
  }
  return GDN_SUCCESS;
}

static gdn_status check_output(const gdn_tensor *t, const char *name, int64_t T, const gdn_tensor *x) {
  GDN_TRY(gdn_check_tensor(t, name, 3, NULL, GDN_FLOAT_TYPES));
  if (t->sizes[0] != T)
    return FAIL_ARG("%s: size[0] (T) is %lld but mixed_qkv has T = %lld", name, (long long)t->sizes[0],
                    (long long)T);
  if (t->sizes[1] <= 0 || t->sizes[2] <= 0)
    return FAIL_ARG("%s: sizes [%lld, %lld, %lld]: the head count and head size must be positive", name,
                    (long long)t->sizes[0], (long long)t->sizes[1], (long long)t->sizes[2]);
  GDN_TRY(gdn_check_same_dtype(t, name, x, "mixed_qkv"));
  GDN_TRY(gdn_check_inner_contiguous(t, name));
  GDN_TRY(gdn_check_aligned(t, name, (int)gdn_dtype_size(t->dtype)));
  return check_no_self_overlap(t, name);
}

gdn_status gdn_qkv_split_validate(const gdn_qkv_split_args *a) {
  gdn_clear_last_error();
  if (a == NULL) return FAIL_ARG("qkv_split: args is NULL");
  const gdn_tensor *x = &a->mixed_qkv;
  GDN_TRY(gdn_check_tensor(x, "mixed_qkv", 2, NULL, GDN_FLOAT_TYPES));
  GDN_TRY(gdn_check_aligned(x, "mixed_qkv", (int)gdn_dtype_size(x->dtype)));
  const int64_t T = x->sizes[0], D = x->sizes[1];
  GDN_TRY(check_output(&a->q, "q", T, x));
  GDN_TRY(check_output(&a->k, "k", T, x));
  GDN_TRY(check_output(&a->v, "v", T, x));
  const int64_t Hk = a->q.sizes[1], K = a->q.sizes[2], Hv = a->v.sizes[1], V = a->v.sizes[2];
  if (a->k.sizes[1] != Hk || a->k.sizes[2] != K)
    return FAIL_ARG("k: sizes [%lld, %lld, %lld], expected [%lld, %lld, %lld] (the shape of q)",
                    (long long)a->k.sizes[0], (long long)a->k.sizes[1], (long long)a->k.sizes[2], (long long)T,
                    (long long)Hk, (long long)K);
  /* Channel indices are 32-bit in the kernels; bound the products before forming D. */
  if (Hk > INT32_MAX / K || Hv > INT32_MAX / V)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "qkv_split: Hk*K = %lld*%lld or Hv*V = %lld*%lld exceeds 2^31-1",
                    (long long)Hk, (long long)K, (long long)Hv, (long long)V);
  const int64_t want = 2 * Hk * K + Hv * V;
  if (D != want)
    return FAIL_ARG("mixed_qkv: size[1] (D) is %lld, expected 2*Hk*K + Hv*V = %lld (Hk=%lld, K=%lld from q; "
                    "Hv=%lld, V=%lld from v)",
                    (long long)D, (long long)want, (long long)Hk, (long long)K, (long long)Hv, (long long)V);
  if (D > INT32_MAX)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "mixed_qkv: D = %lld channels exceeds 2^31-1", (long long)D);
  const gdn_tensor *outs[3] = {&a->q, &a->k, &a->v};
  const char *out_names[3] = {"q", "k", "v"};
  const char *in_names[1] = {"mixed_qkv"};
  return gdn_check_outputs(outs, out_names, 3, &x, in_names, 1);
}

/* Heads that touch (Hk == 1 or stride[1] == K) form one contiguous segment per token. */
static int heads_adjacent(const gdn_tensor *t) { return t->sizes[1] == 1 || t->strides[1] == t->sizes[2]; }

/* Can the kernel move this output in `vec` -byte vectors? Pointer, token stride, head
 * stride (unless heads are adjacent) and the contiguous run must all be multiples. */
static int output_fits(const gdn_tensor *t, int E, int vec, const char **why) {
  const int64_t run = heads_adjacent(t) ? t->sizes[1] * t->sizes[2] : t->sizes[2];
  if ((uintptr_t)t->data % (uintptr_t)vec != 0) { *why = "data pointer"; return 0; }
  if ((t->strides[0] * E) % vec != 0) { *why = "stride[0]"; return 0; }
  if (!heads_adjacent(t) && (t->strides[1] * E) % vec != 0) { *why = "stride[1]"; return 0; }
  if ((run * E) % vec != 0) { *why = heads_adjacent(t) ? "size[1]*size[2]" : "size[2]"; return 0; }
  return 1;
}

/* The token stride of a single-token input is never used (so not checked). */
static int input_fits(const gdn_tensor *x, gdn_qkv_split_layout layout, int E, int vec, const char **why) {
  if (layout == GDN_QKV_SPLIT_CHANNEL_MAJOR) return 1; /* the transpose aligns its own reads */
  if (layout == GDN_QKV_SPLIT_GENERIC && vec != E) { *why = "stride[1] (not 1)"; return 0; }
  if ((uintptr_t)x->data % (uintptr_t)vec != 0) { *why = "data pointer"; return 0; }
  if (x->sizes[0] > 1 && (x->strides[0] * E) % vec != 0) { *why = "stride[0]"; return 0; }
  return 1;
}

/* Can the kernel planned for `planned` read this input? The row kernel of a token-major
 * plan needs stride[1] == 1; the transpose needs stride[0] == 1 unless there is at most
 * one token (so a [D, T] buffer viewed with T == 1, strides (1, 1), still fits a
 * channel-major plan); the generic kernel reads anything. */
static int layout_runs(gdn_qkv_split_layout planned, const gdn_tensor *x) {
  switch (planned) {
    case GDN_QKV_SPLIT_TOKEN_MAJOR: return x->strides[1] == 1;
    case GDN_QKV_SPLIT_CHANNEL_MAJOR: return x->strides[0] == 1 || x->sizes[0] <= 1;
    case GDN_QKV_SPLIT_GENERIC: return 1;
    default: return 0;
  }
}

static int pick_vec_bytes(const gdn_qkv_split_args *a, gdn_qkv_split_layout layout, int E) {
  const char *why = NULL;
  for (int vec = 16; vec > E; vec /= 2) {
    if (input_fits(&a->mixed_qkv, layout, E, vec, &why) && output_fits(&a->q, E, vec, &why) &&
        output_fits(&a->k, E, vec, &why) && output_fits(&a->v, E, vec, &why))
      return vec;
  }
  return E;
}

gdn_status gdn_qkv_split_plan(const gdn_qkv_split_args *args, const gdn_device_info *dev, gdn_qkv_split_config *cfg) {
  gdn_clear_last_error();
  if (cfg == NULL) return FAIL_ARG("qkv_split_plan: cfg is NULL");
  if (dev == NULL)
    return FAIL_ARG("qkv_split_plan: dev is NULL (use gdn_device_info_query or gdn_device_info_hopper)");
  GDN_TRY(gdn_qkv_split_validate(args));
  const gdn_tensor *x = &args->mixed_qkv;
  const int E = (int)gdn_dtype_size(x->dtype);
  gdn_qkv_split_config c;
  memset(&c, 0, sizeof c);
  c.layout = gdn_qkv_split_classify(x);
  c.elem_bytes = E;
  c.vec_bytes = pick_vec_bytes(args, c.layout, E);
  if (c.layout == GDN_QKV_SPLIT_CHANNEL_MAJOR) {
    c.block_x = GDN_QKV_SPLIT_THREADS;
    c.block_y = 1;
    c.rows_per_thread = 0;
    c.tile_tokens = GDN_QKV_SPLIT_TILE_BYTES / E;
    c.tile_channels = GDN_QKV_SPLIT_TILE_C;
    c.smem_bytes = GDN_QKV_SPLIT_TILE_SMEM;
  } else {
    /* A row of D*E/vec vectors; narrow rows (small D) stack several rows per block. */
    const int64_t units = x->sizes[1] * E / c.vec_bytes;
    int bx = 32;
    while (bx < GDN_QKV_SPLIT_THREADS && bx < units) bx *= 2;
    c.block_x = bx;
    c.block_y = GDN_QKV_SPLIT_THREADS / bx;
    c.rows_per_thread = GDN_QKV_SPLIT_ROWS_PER_THREAD;
    c.tile_tokens = c.block_y * c.rows_per_thread;
    c.tile_channels = bx * (c.vec_bytes / E);
    c.smem_bytes = 0;
  }
  if (dev->max_threads_per_sm > 0 && dev->max_threads_per_sm < GDN_QKV_SPLIT_THREADS)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "qkv_split_plan: device %d allows %d threads per SM, the kernels need %d",
                    dev->device, dev->max_threads_per_sm, GDN_QKV_SPLIT_THREADS);
  if (dev->smem_per_sm > 0 && (size_t)c.smem_bytes > dev->smem_per_sm)
    return gdn_fail(GDN_ERROR_UNSUPPORTED, "qkv_split_plan: the %d-byte transpose tile exceeds device %d's %zu bytes per SM",
                    c.smem_bytes, dev->device, dev->smem_per_sm);
  c.dtype = x->dtype;
  c.D = x->sizes[1];
  c.Hk = args->q.sizes[1];
  c.K = args->q.sizes[2];
  c.Hv = args->v.sizes[1];
  c.V = args->v.sizes[2];
  *cfg = c;
  return GDN_SUCCESS;
}

/* The config must be one plan could have produced for this dtype and layout. */
static gdn_status check_config_shape(const gdn_qkv_split_config *c, int E, const char *who) {
  int ok = c->elem_bytes == E && c->vec_bytes >= E && c->vec_bytes <= 16 && (c->vec_bytes & (c->vec_bytes - 1)) == 0;
  if (c->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR) {
    ok = ok && c->block_x == GDN_QKV_SPLIT_THREADS && c->block_y == 1 &&
         c->tile_tokens == GDN_QKV_SPLIT_TILE_BYTES / E && c->tile_channels == GDN_QKV_SPLIT_TILE_C &&
         c->smem_bytes == GDN_QKV_SPLIT_TILE_SMEM;
  } else {
    ok = ok && c->block_x >= 32 && c->block_y >= 1 && c->block_x * c->block_y == GDN_QKV_SPLIT_THREADS &&
         c->rows_per_thread == GDN_QKV_SPLIT_ROWS_PER_THREAD && c->tile_tokens == c->block_y * c->rows_per_thread &&
         (c->layout != GDN_QKV_SPLIT_GENERIC || c->vec_bytes == E);
  }
  if (!ok)
    return FAIL_ARG("%s: cfg (layout %s, vec_bytes %d, block %dx%d, tile %dx%d) is not a config gdn_qkv_split_plan "
                    "produces; plan again",
                    who, gdn_qkv_split_layout_name(c->layout), c->vec_bytes, c->block_x, c->block_y, c->tile_tokens,
                    c->tile_channels);
  return GDN_SUCCESS;
}

static void describe_output(const gdn_tensor *t, int E, int unit, gdn_qkv_split_out_desc *o) {
  /* unit divides every quantity here: checked by output_fits for the row paths, and 1
   * element (unit == E) on the transpose, which only uses element strides. */
  o->data = t->data;
  o->s0 = t->strides[0] * E / unit;
  if (heads_adjacent(t)) {
    o->s1 = 0;
    o->hd = t->sizes[1] * t->sizes[2] * E / unit;
  } else {
    o->s1 = t->strides[1] * E / unit;
    o->hd = t->sizes[2] * E / unit;
  }
}

gdn_status gdn_qkv_split_describe(const gdn_qkv_split_args *args, const gdn_qkv_split_config *cfg, const char *who,
                                  gdn_qkv_split_desc *desc) {
  if (cfg == NULL || desc == NULL) return FAIL_ARG("%s: cfg is NULL", who);
  GDN_TRY(gdn_qkv_split_validate(args));
  const gdn_tensor *x = &args->mixed_qkv;
  const int E = (int)gdn_dtype_size(x->dtype);
  const int64_t Hk = args->q.sizes[1], K = args->q.sizes[2], Hv = args->v.sizes[1], V = args->v.sizes[2];
  if (cfg->dtype != x->dtype || cfg->D != x->sizes[1] || cfg->Hk != Hk || cfg->K != K || cfg->Hv != Hv || cfg->V != V)
    return FAIL_ARG("%s: cfg was planned for %s D=%lld (Hk=%lld, K=%lld, Hv=%lld, V=%lld) but the args are %s D=%lld "
                    "(Hk=%lld, K=%lld, Hv=%lld, V=%lld); the plan must be redone (gdn_qkv_split_plan)",
                    who, gdn_dtype_name(cfg->dtype), (long long)cfg->D, (long long)cfg->Hk, (long long)cfg->K,
                    (long long)cfg->Hv, (long long)cfg->V, gdn_dtype_name(x->dtype), (long long)x->sizes[1],
                    (long long)Hk, (long long)K, (long long)Hv, (long long)V);
  const gdn_qkv_split_layout layout = gdn_qkv_split_classify(x);
  if (!layout_runs(cfg->layout, x))
    return FAIL_ARG("%s: mixed_qkv strides (%lld, %lld) are %s but cfg was planned for a %s input; the plan must "
                    "be redone (gdn_qkv_split_plan)",
                    who, (long long)x->strides[0], (long long)x->strides[1], gdn_qkv_split_layout_name(layout),
                    gdn_qkv_split_layout_name(cfg->layout));
  GDN_TRY(check_config_shape(cfg, E, who));
  const int vec = cfg->vec_bytes;
  const char *why = NULL;
  if (!input_fits(x, cfg->layout, E, vec, &why))
    return FAIL_ARG("%s: mixed_qkv %s does not suit the %d-byte vectors cfg was planned with; the plan must be "
                    "redone (gdn_qkv_split_plan)", who, why, vec);
  const gdn_tensor *outs[3] = {&args->q, &args->k, &args->v};
  const char *names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i)
    if (!output_fits(outs[i], E, vec, &why))
      return FAIL_ARG("%s: %s %s does not suit the %d-byte vectors cfg was planned with; the plan must be "
                      "redone (gdn_qkv_split_plan)", who, names[i], why, vec);

  memset(desc, 0, sizeof *desc);
  const int unit = cfg->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR ? E : vec;
  desc->src = x->data;
  desc->T = x->sizes[0];
  desc->cols = x->sizes[1] * E / unit;
  desc->qk_cols = Hk * K * E / unit;
  desc->src_span_bytes = gdn_tensor_span_bytes(x);
  if (cfg->layout == GDN_QKV_SPLIT_TOKEN_MAJOR) {
    desc->src_s0 = x->sizes[0] > 1 ? x->strides[0] * E / unit : 0;
    desc->src_s1 = 1; /* consecutive vectors of a row */
  } else { /* unit == E; the transpose assumes a token stride of 1 (or a single token) */
    desc->src_s0 = x->strides[0];
    desc->src_s1 = x->strides[1];
    /* Tiles start at multiples of 256 bytes of tokens, so a 16-byte aligned row start
     * makes every tile row 16-byte aligned (the direct-load kernel); otherwise the
     * kernel that realigns its loads. */
    desc->src_rows_aligned = cfg->layout == GDN_QKV_SPLIT_CHANNEL_MAJOR && (uintptr_t)x->data % 16 == 0 &&
                             (x->strides[1] * E) % 16 == 0;
  }
  for (int i = 0; i < 3; ++i) describe_output(outs[i], E, unit, &desc->out[i]);
  return GDN_SUCCESS;
}
