/* A program outside the project that uses the installed gdngraph, as a user's would: the
 * version, one host-side validation (its status and message), and, built with
 * CONSUMER_PREFILL against the CUDA library, a small prefill graph run. Exit 0: all fine;
 * 77: the prefill part was skipped for want of a GPU; 1: something failed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <gdn/gdn.h>

static int validate(void) {
  /* Validation reads shapes, strides and addresses only; the buffers are never touched. */
  static uint16_t x[16 * 128], w[64 * 128], y[16 * 64];
  gdn_linear_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_2d(x, GDN_DTYPE_BF16, 16, 128);
  a.w = gdn_tensor_2d(w, GDN_DTYPE_BF16, 64, 96); /* Kin 96 where x has 128 */
  a.y = gdn_tensor_2d(y, GDN_DTYPE_BF16, 16, 64);
  a.bias = gdn_tensor_none();
  gdn_status s = gdn_linear_validate(&a);
  printf("gdn_linear_validate: %s: %s\n", gdn_status_string(s), gdn_get_last_error());
  if (s != GDN_ERROR_INVALID_ARGUMENT || strstr(gdn_get_last_error(), "w:") == NULL) return 1;
  a.w = gdn_tensor_2d(w, GDN_DTYPE_BF16, 64, 128);
  s = gdn_linear_validate(&a);
  printf("gdn_linear_validate (fixed): %s%s%s\n", gdn_status_string(s), s != GDN_SUCCESS ? ": " : "",
         s != GDN_SUCCESS ? gdn_get_last_error() : "");
  return s != GDN_SUCCESS;
}

#ifdef CONSUMER_PREFILL
#include <cuda_runtime_api.h>

#define CHECK_GDN(expr)                                                                \
  do {                                                                                 \
    gdn_status s_ = (expr);                                                            \
    if (s_ != GDN_SUCCESS) {                                                           \
      printf("%s: %s: %s\n", #expr, gdn_status_string(s_), gdn_get_last_error());       \
      return 1;                                                                        \
    }                                                                                  \
  } while (0)

static void *bufs[16];
static int num_bufs;

/* A zeroed device buffer (zeros are valid inputs), freed at the end. */
static void *dev_zeros(size_t bytes) {
  void *p = NULL;
  if (num_bufs == 16 || cudaMalloc(&p, bytes) != cudaSuccess || cudaMemset(p, 0, bytes) != cudaSuccess) return NULL;
  return bufs[num_bufs++] = p;
}

/* Two sequences (50 + 78 tokens) through a one-bucket plan. */
static int prefill(void) {
  const char *why = gdn_device_unavailable_reason();
  if (why != NULL) {
    printf("prefill: %s: skipped\n", why);
    return 77;
  }
  enum { T = 128, HK = 2, HV = 4, K = 64, V = 64, SLOTS = 2 };
  gdn_prefill_io io;
  memset(&io, 0, sizeof io);
  io.q = gdn_tensor_3d(dev_zeros(T * HK * K * 2), GDN_DTYPE_BF16, T, HK, K);
  io.k = gdn_tensor_3d(dev_zeros(T * HK * K * 2), GDN_DTYPE_BF16, T, HK, K);
  io.v = gdn_tensor_3d(dev_zeros(T * HV * V * 2), GDN_DTYPE_BF16, T, HV, V);
  io.o = gdn_tensor_3d(dev_zeros(T * HV * V * 2), GDN_DTYPE_BF16, T, HV, V);
  io.a = gdn_tensor_2d(dev_zeros(T * HV * 2), GDN_DTYPE_BF16, T, HV);
  io.b = gdn_tensor_2d(dev_zeros(T * HV * 2), GDN_DTYPE_BF16, T, HV);
  io.A_log = gdn_tensor_1d(dev_zeros(HV * 4), GDN_DTYPE_F32, HV);
  io.dt_bias = gdn_tensor_1d(dev_zeros(HV * 4), GDN_DTYPE_F32, HV);
  io.gk = gdn_tensor_none();
  io.state = gdn_tensor_4d(dev_zeros((size_t)SLOTS * HV * V * K * 4), GDN_DTYPE_F32, SLOTS, HV, V, K);
  if (num_bufs != 9) return 1;
  const gdn_prefill_shape shape = {.Hk = HK, .Hv = HV, .K = K, .V = V, .dtype = GDN_DTYPE_BF16, .use_g = 1, .l2norm_qk = 1};
  const gdn_prefill_bucket bucket = {T, SLOTS};
  gdn_prefill_plan *plan = NULL;
  CHECK_GDN(gdn_prefill_plan_create(&plan, &shape, &io, &bucket, 1, 0));
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess) return 1;
  const int32_t cu[3] = {0, 50, T}, slots[2] = {0, 1};
  CHECK_GDN(gdn_prefill_run(plan, cu, slots, 2, stream));
  if (cudaStreamSynchronize(stream) != cudaSuccess) return 1;
  CHECK_GDN(gdn_prefill_check_error(plan));
  gdn_prefill_plan_destroy(plan);
  cudaStreamDestroy(stream);
  for (int i = 0; i < num_bufs; ++i) cudaFree(bufs[i]);
  printf("prefill: 2 sequences, %d tokens: ok\n", T);
  return 0;
}
#endif

int main(void) {
  int version = 0;
  if (gdn_get_version(&version) != GDN_SUCCESS || version != GDN_VERSION_CODE) {
    printf("gdngraph: library version %d, header %d (%s)\n", version, GDN_VERSION_CODE, GDN_VERSION_STRING);
    return 1;
  }
  printf("gdngraph %s\n", GDN_VERSION_STRING);
  if (validate() != 0) return 1;
#ifdef CONSUMER_PREFILL
  return prefill();
#else
  return 0;
#endif
}
