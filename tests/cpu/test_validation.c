/* Bad inputs are refused with a message naming the caller's argument, before any device
 * work: NULL plans, out-of-range indices and oversized capacities; outputs that write one
 * element twice or overlap an input; pointers not aligned to their element size; io
 * tensors that disagree with the shape. Runs without a GPU: every case fails in host
 * validation, which comes before the device is touched (the tensors hold addresses that
 * are never dereferenced). A baseline that passes validation proves each failure comes
 * from the one field changed. */
#include <stdint.h>
#include <string.h>

#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/device.h"
#include "gdn/forward.h"
#include "gdn/prefill.h"
#include "gdn/prologue.h"
#include "test_util.h"

#define CHECK_REFUSED(expr, name)                                                                          \
  do {                                                                                                     \
    gdn_clear_last_error();                                                                                \
    gdn_status st_ = (expr);                                                                               \
    CHECK(st_ == GDN_ERROR_INVALID_ARGUMENT || st_ == GDN_ERROR_UNSUPPORTED, "%s returned %s (%s)", #expr, \
          gdn_status_string(st_), gdn_get_last_error());                                                   \
    CHECK(strstr(gdn_get_last_error(), name) != NULL, "%s: message \"%s\" does not name \"%s\"", #expr,    \
          gdn_get_last_error(), name);                                                                     \
  } while (0)

enum { HK = 2, HV = 4, KD = 128, VD = 128, TCAP = 1024, SLOTS = 8 };

/* Distinct, 256-byte aligned stand-in addresses. */
static void *addr(int i) { return (void *)(((uintptr_t)1 << 40) + (uintptr_t)i * ((uintptr_t)1 << 32)); }

static gdn_prefill_shape shape_ok(gdn_gate_mode gate) {
  gdn_prefill_shape s = {HK, HV, KD, VD, GDN_DTYPE_BF16, 1, 0, 1, 0.f, gate};
  return s;
}

static gdn_prefill_io io_ok(gdn_gate_mode gate) {
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(addr(1), GDN_DTYPE_BF16, TCAP, HK, KD);
  io.k = gdn_tensor_3d(addr(2), GDN_DTYPE_BF16, TCAP, HK, KD);
  io.v = gdn_tensor_3d(addr(3), GDN_DTYPE_BF16, TCAP, HV, VD);
  io.o = gdn_tensor_3d(addr(4), GDN_DTYPE_BF16, TCAP, HV, VD);
  io.state = gdn_tensor_4d(addr(5), GDN_DTYPE_F32, SLOTS, HV, VD, KD);
  if (gate == GDN_GATE_RAW) {
    io.a = gdn_tensor_2d(addr(6), GDN_DTYPE_BF16, TCAP, HV);
    io.b = gdn_tensor_2d(addr(7), GDN_DTYPE_BF16, TCAP, HV);
    io.A_log = gdn_tensor_1d(addr(8), GDN_DTYPE_F32, HV);
    io.dt_bias = gdn_tensor_1d(addr(9), GDN_DTYPE_BF16, HV);
  } else {
    io.g = gdn_tensor_2d(addr(10), GDN_DTYPE_F32, TCAP, HV);
    io.beta = gdn_tensor_2d(addr(11), GDN_DTYPE_BF16, TCAP, HV);
  }
  return io;
}

static const gdn_prefill_bucket kBuckets[2] = {{256, 4}, {TCAP, 8}};

static gdn_status validate(const gdn_prefill_io *io, gdn_gate_mode gate) {
  gdn_prefill_shape s = shape_ok(gate);
  return gdn_prefill_validate(&s, io, kBuckets, 2);
}

static gdn_status create(const gdn_prefill_io *io, gdn_gate_mode gate) {
  gdn_prefill_shape s = shape_ok(gate);
  gdn_prefill_plan *p = NULL;
  gdn_status st = gdn_prefill_plan_create(&p, &s, io, kBuckets, 2, 0);
  CHECK(p == NULL || st == GDN_SUCCESS, "a refused plan must not be returned");
  gdn_prefill_plan_destroy(p);
  return st;
}

static void test_null_plan(void) {
  CHECK(gdn_prefill_num_buckets(NULL) == 0, "num_buckets(NULL)");
  gdn_prefill_bucket b = gdn_prefill_bucket_at(NULL, 0);
  CHECK(b.max_tokens == 0 && b.max_seqs == 0, "bucket_at(NULL)");
  CHECK(strstr(gdn_get_last_error(), "plan is NULL") != NULL, "bucket_at(NULL) message: %s", gdn_get_last_error());
  CHECK(gdn_prefill_pick_bucket(NULL, 1, 1) == -1, "pick_bucket(NULL)");
  CHECK(gdn_prefill_descriptor(NULL) == NULL, "descriptor(NULL)");
  CHECK(gdn_prefill_descriptor_seqs(NULL) == 0, "descriptor_seqs(NULL)");
  CHECK_REFUSED(gdn_prefill_check_error(NULL), "plan");
  CHECK_REFUSED(gdn_prefill_run(NULL, NULL, NULL, 0, 0), "plan");
  CHECK_REFUSED(gdn_forward_check_error(NULL), "plan");
  CHECK(gdn_forward_workspace_bytes(NULL) == 0, "forward_workspace_bytes(NULL)");
  gdn_prefill_plan_destroy(NULL);
  gdn_forward_plan_destroy(NULL);
}

static void test_capacities(void) {
  gdn_prefill_shape s = shape_ok(GDN_GATE_RAW);
  gdn_prefill_io io = io_ok(GDN_GATE_RAW);
  gdn_prefill_bucket huge[1] = {{TCAP, INT32_MAX - 1}};
  gdn_prefill_plan *p = NULL;
  CHECK_REFUSED(gdn_prefill_plan_create(&p, &s, &io, huge, 1, 0), "buckets[0]");
  gdn_prefill_bucket tok[1] = {{INT32_MAX, 1}};
  CHECK_REFUSED(gdn_prefill_plan_create(&p, &s, &io, tok, 1, 0), "buckets[0]");
  gdn_forward_plan *f = NULL;
  gdn_prefill_bucket cap = {TCAP, INT32_MAX};
  CHECK_REFUSED(gdn_forward_plan_create(&f, &s, cap, 0), "capacity");
  CHECK(p == NULL && f == NULL, "no plan returned");
  gdn_batch_setup_args sa;
  memset(&sa, 0, sizeof sa);
  sa.cu_seqlens = (const int32_t *)addr(20);
  sa.max_seqs = INT32_MAX - 1;
  sa.max_tokens = 100;
  sa.workspace = addr(21);
  sa.workspace_bytes = (size_t)1 << 40;
  CHECK_REFUSED(gdn_batch_setup_validate(&sa), "max_seqs");
}

static void test_self_overlap(void) {
  gdn_prefill_io base = io_ok(GDN_GATE_RAW);
  CHECK_OK(validate(&base, GDN_GATE_RAW));
  gdn_prefill_io io = base;
  io.o.strides[0] = 0; /* every token row on top of the first */
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.o");
  CHECK_REFUSED(create(&io, GDN_GATE_RAW), "io.o");
  io = base;
  io.o.strides[1] = VD / 2; /* heads overlap each other */
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.o");
  io = base;
  io.state.strides[0] = 0;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.state");
  io = base;
  io.state.strides[1] = 0;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.state");
  io = base;
  io.state.strides[2] = 1;
  io.state.strides[3] = 1;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.state");
  io = base; /* FLA's [K, V] layout by strides is distinct, and accepted */
  io.state.strides[2] = 1;
  io.state.strides[3] = VD;
  CHECK_OK(validate(&io, GDN_GATE_RAW));

  /* operators' own outputs: h, v_new (chunk_delta_h), beta, g_cum (prologue) */
  gdn_batch_setup_args sa;
  memset(&sa, 0, sizeof sa);
  sa.cu_seqlens = (const int32_t *)addr(30);
  sa.max_seqs = 4;
  sa.max_tokens = TCAP;
  sa.num_slots = SLOTS;
  sa.workspace = addr(31);
  sa.workspace_bytes = gdn_batch_workspace_bytes_for(&sa);
  gdn_batch batch;
  CHECK_OK(gdn_batch_setup_view(&sa, &batch));
  const int NT = batch.max_chunks;
  gdn_chunk_delta_h_args d;
  memset(&d, 0, sizeof d);
  d.batch = batch;
  d.k = gdn_tensor_3d(addr(32), GDN_DTYPE_BF16, TCAP, HK, KD);
  d.w = gdn_tensor_3d(addr(33), GDN_DTYPE_BF16, TCAP, HV, KD);
  d.u = gdn_tensor_3d(addr(34), GDN_DTYPE_BF16, TCAP, HV, VD);
  d.h = gdn_tensor_4d(addr(35), GDN_DTYPE_BF16, NT, HV, KD, VD);
  d.v_new = gdn_tensor_3d(addr(36), GDN_DTYPE_BF16, TCAP, HV, VD);
  CHECK_OK(gdn_chunk_delta_h_validate(&d));
  gdn_chunk_delta_h_args dd = d;
  dd.h.strides[0] = 0;
  CHECK_REFUSED(gdn_chunk_delta_h_validate(&dd), "h");
  dd = d;
  dd.v_new.strides[0] = 0;
  CHECK_REFUSED(gdn_chunk_delta_h_validate(&dd), "v_new");
  dd = d;
  dd.state = gdn_tensor_4d(addr(37), GDN_DTYPE_F32, SLOTS, HV, VD, KD);
  dd.state.strides[0] = 0;
  CHECK_REFUSED(gdn_chunk_delta_h_validate(&dd), "state");

  gdn_prologue_args pa;
  memset(&pa, 0, sizeof pa);
  pa.batch = batch;
  pa.use_g = 1;
  pa.a = gdn_tensor_2d(addr(40), GDN_DTYPE_BF16, TCAP, HV);
  pa.b = gdn_tensor_2d(addr(41), GDN_DTYPE_BF16, TCAP, HV);
  pa.A_log = gdn_tensor_1d(addr(42), GDN_DTYPE_F32, HV);
  pa.dt_bias = gdn_tensor_1d(addr(43), GDN_DTYPE_F32, HV);
  pa.beta = gdn_tensor_2d(addr(44), GDN_DTYPE_F32, TCAP, HV);
  pa.g_cum = gdn_tensor_2d(addr(45), GDN_DTYPE_F32, TCAP, HV);
  CHECK_OK(gdn_prologue_validate(&pa));
  gdn_prologue_args pp = pa;
  pp.beta.strides[0] = 0;
  CHECK_REFUSED(gdn_prologue_validate(&pp), "beta");
  pp = pa;
  pp.g_cum.strides[0] = 0;
  CHECK_REFUSED(gdn_prologue_validate(&pp), "g_cum");
}

static void test_aliasing(void) {
  const gdn_prefill_io base = io_ok(GDN_GATE_RAW);
  gdn_prefill_io io = base;
  io.o.data = io.v.data;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.o");
  io = base;
  io.o.data = io.a.data;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.a");
  io = base;
  io.o.data = io.b.data;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.b");
  io = base;
  io.o.data = io.A_log.data;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.A_log");
  io = base;
  io.state.data = io.v.data;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.state");
}

static void test_alignment(void) {
  const gdn_prefill_io raw = io_ok(GDN_GATE_RAW), pre = io_ok(GDN_GATE_PRECOMPUTED);
  gdn_prefill_io io = raw;
  io.state.data = (char *)io.state.data + 2;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.state");
  io = raw;
  io.A_log.data = (char *)io.A_log.data + 2;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.A_log");
  io = raw;
  io.a.data = (char *)io.a.data + 1;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.a");
  io = raw;
  io.b.data = (char *)io.b.data + 1;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.b");
  io = raw;
  io.dt_bias.data = (char *)io.dt_bias.data + 1;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.dt_bias");
  io = pre;
  CHECK_OK(validate(&io, GDN_GATE_PRECOMPUTED));
  io.g.data = (char *)io.g.data + 2;
  CHECK_REFUSED(validate(&io, GDN_GATE_PRECOMPUTED), "io.g");
}

static void test_shape_names(void) {
  const gdn_prefill_io base = io_ok(GDN_GATE_RAW);
  gdn_prefill_io io = base;
  io.q.dtype = GDN_DTYPE_F16;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.q");
  CHECK(strstr(gdn_get_last_error(), "shape.dtype") != NULL, "dtype message: %s", gdn_get_last_error());
  io = base;
  io.o.dtype = GDN_DTYPE_F16;
  CHECK_REFUSED(validate(&io, GDN_GATE_RAW), "io.o");
  struct {
    int dHk, dHv, dK, dV;
    const char *field, *tensor;
  } cases[] = {{0, 0, -64, 0, "shape.K", "io.q"}, {0, 0, 0, -64, "shape.V", "io.v"}, {0, -2, 0, 0, "shape.Hv", "io.v"},
               {-1, 0, 0, 0, "shape.Hk", "io.q"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    gdn_prefill_shape s = shape_ok(GDN_GATE_RAW);
    s.Hk += cases[i].dHk;
    s.Hv += cases[i].dHv;
    s.K += cases[i].dK;
    s.V += cases[i].dV;
    gdn_clear_last_error();
    gdn_status st = gdn_prefill_validate(&s, &base, kBuckets, 2);
    CHECK(st != GDN_SUCCESS, "shape case %zu accepted", i);
    CHECK(strstr(gdn_get_last_error(), cases[i].field) && strstr(gdn_get_last_error(), cases[i].tensor),
          "shape case %zu: message \"%s\" does not name %s and %s", i, gdn_get_last_error(), cases[i].field,
          cases[i].tensor);
    CHECK(strstr(gdn_get_last_error(), "w:") == NULL && strstr(gdn_get_last_error(), "u:") == NULL &&
              strstr(gdn_get_last_error(), "beta:") == NULL,
          "shape case %zu names an internal tensor: %s", i, gdn_get_last_error());
  }
}

/* The context-parallel policy helper: few heads get segments, many do not. */
static void test_cp_policy(void) {
  const gdn_device_info dev = gdn_device_info_hopper();
  gdn_batch_setup_args a;
  memset(&a, 0, sizeof a);
  a.max_tokens = 8192;
  a.max_seqs = 1;
  CHECK(gdn_batch_setup_context_parallel(&a, 8, &dev) == 0 && a.cp_min_chunks > 0 && a.cp_heads == 8 &&
            a.cp_max_pairs >= 8 && a.cp_units >= dev.sm_count / 2,
        "TP4 heads: cp %d / %d / %d / %d", a.cp_min_chunks, a.cp_units, a.cp_heads, a.cp_max_pairs);
  memset(&a, 0, sizeof a);
  a.max_tokens = 8192;
  CHECK(gdn_batch_setup_context_parallel(&a, 32, &dev) == 0 && a.cp_max_pairs >= 32, "TP1 heads: cp max pairs %d",
        a.cp_max_pairs);
  memset(&a, 0, sizeof a);
  a.max_tokens = 8192;
  CHECK(gdn_batch_setup_context_parallel(&a, 64, &dev) == -1 && a.cp_min_chunks == 0, "64 heads fill the device");
  a.max_tokens = 512;
  CHECK(gdn_batch_setup_context_parallel(&a, 8, &dev) == -1, "512 tokens cannot be cut");
  /* the capacity's own batch must be one that gets cut */
  memset(&a, 0, sizeof a);
  a.max_tokens = 8192;
  a.max_seqs = 4;
  CHECK(gdn_batch_setup_context_parallel(&a, 8, &dev) == 0, "4 sequences x 8 heads");
  memset(&a, 0, sizeof a);
  a.max_tokens = 8192;
  a.max_seqs = 64;
  CHECK(gdn_batch_setup_context_parallel(&a, 8, &dev) == -1 && a.cp_min_chunks == 0, "64 sequences x 8 heads");
}

/* The last-error message belongs to the last status-returning call: a success clears it. */
static void test_last_error(void) {
  gdn_prefill_io io = io_ok(GDN_GATE_RAW);
  io.o.strides[0] = 0;
  CHECK(validate(&io, GDN_GATE_RAW) != GDN_SUCCESS && gdn_get_last_error()[0] != '\0', "a failure leaves a message");
  io = io_ok(GDN_GATE_RAW);
  CHECK(validate(&io, GDN_GATE_RAW) == GDN_SUCCESS, "baseline validates");
  CHECK(gdn_get_last_error()[0] == '\0', "after a success the message is \"%s\", expected empty", gdn_get_last_error());
  /* a value-returning accessor that succeeds does not touch it; one that fails records why */
  CHECK(gdn_prefill_num_buckets(NULL) == 0 && strstr(gdn_get_last_error(), "NULL") != NULL, "accessor failure: %s",
        gdn_get_last_error());
  gdn_clear_last_error();
  CHECK(gdn_get_last_error()[0] == '\0', "gdn_clear_last_error");
}

int main(void) {
  test_last_error();
  test_cp_policy();
  test_null_plan();
  test_capacities();
  test_self_overlap();
  test_aliasing();
  test_alignment();
  test_shape_names();
  return gdn_test_finish("test_validation");
}
