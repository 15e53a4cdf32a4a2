/* The per-call forward entry (include/gdn/forward.h): the prefill's operators bound to the
 * call's tensors and workspace and launched on the caller's stream, so the call can be
 * captured by any stream capture. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/cuda_util.h"
#include "gdn/forward.h"
#include "graph/forward_ops.h"

struct gdn_forward_plan {
  int device;
  gdn_device_info dev;
  gdn_prefill_shape shape;
  gdn_prefill_bucket cap;
  gdn_fwd_policy policy;
  gdn_fwd_layout layout;
  gdn_fwd cfgs; /* the launch configurations fixed at plan time */
  gdn_batch_error_record *err;
};

static gdn_status plan_on_device(void *ctx, const gdn_device_info *dev) {
  gdn_forward_plan *p = (gdn_forward_plan *)ctx;
  p->dev = *dev;
  /* the checkpoint table is always reserved: the workspace size must not depend on the call */
  GDN_TRY(gdn_fwd_policy_for(&p->shape, p->cap, dev, 1, 0, &p->policy));
  p->layout = gdn_fwd_layout_of(&p->shape, p->cap, &p->policy);
  GDN_TRY(gdn_batch_error_record_create(&p->err));
  return gdn_fwd_bind_standins(&p->cfgs, &p->shape, dev, &p->policy, p->cap);
}

gdn_status gdn_forward_plan_create(gdn_forward_plan **out, const gdn_prefill_shape *shape, gdn_prefill_bucket cap,
                                   int device) {
  gdn_clear_last_error();
  if (out == NULL || shape == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "forward plan: plan and shape must not be NULL");
  *out = NULL;
  GDN_TRY(gdn_fwd_check_shape(shape));
  if (cap.max_tokens <= 0 || cap.max_seqs <= 0 || cap.max_tokens > GDN_BATCH_MAX_TOKENS ||
      cap.max_seqs > GDN_BATCH_MAX_SEQS)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "capacity = {%d tokens, %d seqs}: both must be in 1..%d / 1..%d",
                    cap.max_tokens, cap.max_seqs, GDN_BATCH_MAX_TOKENS, GDN_BATCH_MAX_SEQS);
  gdn_forward_plan *p = (gdn_forward_plan *)calloc(1, sizeof *p);
  if (p == NULL) return gdn_fail(GDN_ERROR_OUT_OF_MEMORY, "forward plan: host allocation failed");
  p->device = device;
  p->shape = *shape;
  if (p->shape.scale <= 0.f) p->shape.scale = 1.f / sqrtf((float)shape->K);
  p->cap = cap;
  gdn_status st = gdn_with_device(device, plan_on_device, p);
  if (st != GDN_SUCCESS) {
    gdn_saved_error err;
    gdn_save_error(&err);
    gdn_forward_plan_destroy(p);
    return gdn_restore_error(&err, st, "forward plan: ");
  }
  *out = p;
  return GDN_SUCCESS;
}

void gdn_forward_plan_destroy(gdn_forward_plan *p) {
  if (p == NULL) return;
  gdn_batch_error_record_destroy(p->err);
  free(p);
}

size_t gdn_forward_workspace_bytes(const gdn_forward_plan *p) {
  if (p == NULL) {
    gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_forward_workspace_bytes: plan is NULL");
    return 0;
  }
  return p->layout.total;
}

static gdn_fwd_tensors call_tensors(const gdn_forward_args *a) {
  gdn_fwd_tensors t;
  memset(&t, 0, sizeof t);
  t.q = a->q; t.k = a->k; t.v = a->v; t.o = a->o;
  t.a = a->a; t.b = a->b; t.A_log = a->A_log; t.dt_bias = a->dt_bias;
  t.g = a->g; t.beta = a->beta; t.gk = a->gk;
  t.state_in = a->state_in; t.state_out = a->state_out;
  t.checkpoints = a->checkpoints;
  t.checkpoint_every = a->checkpoint_every;
  return t;
}

/* Host checks of the call; on success the call's token and sequence counts. */
static gdn_status validate(const gdn_forward_plan *p, const gdn_forward_args *a, int64_t *T, int32_t *N) {
  if (p == NULL || a == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_forward: plan and args must not be NULL");
  const gdn_tensor *cu = &a->cu_seqlens;
  if (!gdn_tensor_present(cu)) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.cu_seqlens: required, data is NULL");
  GDN_TRY(gdn_check_tensor(cu, "args.cu_seqlens", 1, NULL, GDN_DTYPE_MASK(GDN_DTYPE_I32) | GDN_DTYPE_MASK(GDN_DTYPE_I64)));
  if (cu->sizes[0] < 1 || cu->strides[0] != 1)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.cu_seqlens: needs N + 1 >= 1 contiguous entries (size %lld, stride %lld)",
                    (long long)cu->sizes[0], (long long)cu->strides[0]);
  const int64_t n = cu->sizes[0] - 1;
  if (n > p->cap.max_seqs)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.cu_seqlens: %lld sequences exceed the plan's capacity of %d",
                    (long long)n, p->cap.max_seqs);
  if (!gdn_tensor_present(&a->q) || a->q.rank < 1) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.q: required");
  const int64_t t = a->q.sizes[0];
  if (t > p->cap.max_tokens)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.q: %lld tokens exceed the plan's capacity of %d", (long long)t,
                    p->cap.max_tokens);
  gdn_fwd_tensors ts = call_tensors(a);
  GDN_TRY(gdn_fwd_check_tensors(&p->shape, &ts, t, "args"));
  if (a->slots_in != NULL && !gdn_tensor_present(&a->state_in))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.slots_in: given without args.state_in");
  if (a->slots_out != NULL && !gdn_tensor_present(&a->state_out))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.slots_out: given without args.state_out");
  if (a->slots_in == NULL && gdn_tensor_present(&a->state_in) && a->state_in.sizes[0] < n)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.state_in: %lld rows for %lld sequences (row i of sequence i)",
                    (long long)a->state_in.sizes[0], (long long)n);
  if (a->slots_out == NULL && gdn_tensor_present(&a->state_out) && a->state_out.sizes[0] < n)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.state_out: %lld rows for %lld sequences (row i of sequence i)",
                    (long long)a->state_out.sizes[0], (long long)n);
  if (gdn_tensor_present(&a->checkpoints) != (a->checkpoint_offsets != NULL))
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "args.checkpoints and args.checkpoint_offsets go together");
  *T = t;
  *N = (int32_t)n;
  return GDN_SUCCESS;
}

gdn_status gdn_forward_validate(const gdn_forward_plan *p, const gdn_forward_args *a) {
  gdn_clear_last_error();
  int64_t T;
  int32_t N;
  return validate(p, a, &T, &N);
}

gdn_status gdn_forward(const gdn_forward_plan *p, const gdn_forward_args *a, void *ws, size_t ws_bytes,
                       cudaStream_t stream) {
  gdn_clear_last_error();
  int64_t T;
  int32_t N;
  GDN_TRY(validate(p, a, &T, &N));
  if (ws == NULL || (uintptr_t)ws % 256 != 0 || ws_bytes < p->layout.total)
    return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "workspace: needs %zu bytes, 256-byte aligned (given %zu at %p)",
                    p->layout.total, ws_bytes, ws);
  gdn_fwd_tensors t = call_tensors(a);
  const int in_place = gdn_tensor_present(&a->state_in) && gdn_fwd_same_view(&a->state_in, &a->state_out);
  gdn_fwd_batch_src src;
  memset(&src, 0, sizeof src);
  if (a->cu_seqlens.dtype == GDN_DTYPE_I64) src.cu_seqlens64 = (const int64_t *)a->cu_seqlens.data;
  else src.cu_seqlens = (const int32_t *)a->cu_seqlens.data;
  src.num_seqs = N;
  src.slots = a->slots_in;
  src.slots_identity = a->slots_in == NULL && gdn_tensor_present(&a->state_in);
  src.slots_out = a->slots_out;
  src.slots_out_mode = a->slots_out != NULL ? 0 : gdn_tensor_present(&a->state_out) ? 1 : 2;
  src.state_aliased = in_place;
  src.checkpoint_offsets = a->checkpoint_offsets;
  src.error_record = p->err;
  gdn_fwd f;
  gdn_prefill_bucket rows = {(int32_t)T, N};
  GDN_TRY(gdn_fwd_bind(&f, &p->shape, &p->dev, &p->policy, &p->layout, rows, &t, &src, ws, &p->cfgs));
  GDN_TRY(gdn_fwd_emit_setup(&f, stream, NULL, NULL, 0, NULL));
  return gdn_fwd_emit_core(&f, stream, NULL, NULL, 0, NULL);
}

gdn_status gdn_forward_check_error(gdn_forward_plan *p) {
  gdn_clear_last_error();
  if (p == NULL) return gdn_fail(GDN_ERROR_INVALID_ARGUMENT, "gdn_forward_check_error: plan is NULL");
  return gdn_batch_error_record_check(p->err);
}
