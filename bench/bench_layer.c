/* Whole GDN layer prefill (in_proj -> conv1d -> GDN core -> gated RMSNorm -> out_proj
 * [-> all-reduce]) at Qwen3-Next shapes: hidden 2048, Hk 16, Hv 32, K = V = 128, W 4, bf16.
 *
 * TP1 on GPU 0: batches of 1 x 512, 1 x 8192 and 8 x 8192 tokens, each through the
 * instantiated graph of its bucket (gdn_layer_run: descriptor upload + one graph launch) and
 * through the eager path (gdn_layer_run_eager: the same operators launched one by one).
 * With >= 2 visible GPUs also TP2 (per rank Hk 8, Hv 16; the NCCL all-reduce of y inside
 * each rank's graph), one host thread per GPU; the slowest rank's median is reported.
 * Times are medians of CUDA-event-timed replays (bench_util), queued back to back.
 * Weights and inputs are random (values do not change the work); NCCL_NVLS_ENABLE=0 is set
 * before the communicators are created. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "gpu_util.h"
#include "gdn/layer.h"
#include "gdn/reference.h"

enum { HIDDEN = 2048, HK = 16, HV = 32, KD = 128, VD = 128, WC = 4, NUM_SLOTS = 16 };
#define NCONF 3
#define WARMUP 3
#define REPS 15

typedef struct conf {
  int seqs, len; /* seqs x len tokens */
} conf;

static const conf kConf[NCONF] = {{1, 512}, {1, 8192}, {8, 8192}};
static const gdn_prefill_bucket kBuckets[NCONF] = {{512, 1}, {8192, 1}, {65536, 8}};
#define T_CAP 65536

static void die(const char *what, gdn_status st) {
  fprintf(stderr, "%s: %s (%s)\n", what, gdn_status_string(st), gdn_get_last_error());
  exit(1);
}

/* Fills a device buffer of n elements of dtype with normal(0, stddev) values: a host block
 * of up to 1 M values, tiled (the numbers do not matter for timing, only finiteness). */
static void fill_device(void *dev, gdn_dtype dt, size_t n, double stddev, gdn_rng *r) {
  const size_t block = n < (1u << 20) ? n : (1u << 20), es = gdn_dtype_size(dt);
  double *h = gdn_dalloc(block);
  gdn_fill_normal(r, h, block, stddev);
  void *packed = gdn_xmalloc(block * es);
  gdn_pack(dt, h, block, packed);
  for (size_t off = 0; off < n; off += block) {
    size_t cnt = n - off < block ? n - off : block;
    CUDA_OK(cudaMemcpy((char *)dev + off * es, packed, cnt * es, cudaMemcpyHostToDevice));
  }
  free(h);
  free(packed);
}

/* One rank's plan with random weights and its buffers, on the current device. */
typedef struct layer_inst {
  int Hk, Hv;
  void *bufs[10];
  int nbufs;
  gdn_layer_plan *plan;
} layer_inst;

static void *dalloc_fill(layer_inst *L, gdn_dtype dt, size_t n, double stddev, gdn_rng *r) {
  void *p = gdn_dmalloc(n * gdn_dtype_size(dt));
  if (stddev > 0) fill_device(p, dt, n, stddev, r);
  else CUDA_OK(cudaMemset(p, 0, n * gdn_dtype_size(dt)));
  L->bufs[L->nbufs++] = p;
  return p;
}

static void layer_create(layer_inst *L, int Hk, int Hv, ncclComm_t comm, int device, uint64_t seed) {
  memset(L, 0, sizeof *L);
  L->Hk = Hk;
  L->Hv = Hv;
  gdn_rng r;
  gdn_rng_seed(&r, seed);
  const gdn_layer_layout lay = gdn_layer_layout_of(Hk, Hv, KD, VD);
  const gdn_dtype dt = GDN_DTYPE_BF16;
  const int64_t HvV = (int64_t)Hv * VD;
  void *w_in = dalloc_fill(L, dt, (size_t)lay.Dtot * HIDDEN, 1.0 / 45.25, &r);
  void *conv_w = dalloc_fill(L, dt, (size_t)lay.D * WC, 0.5, &r);
  void *A_log = dalloc_fill(L, GDN_DTYPE_F32, (size_t)Hv, 0.5, &r);
  void *dt_bias = dalloc_fill(L, GDN_DTYPE_F32, (size_t)Hv, 0.5, &r);
  void *norm_w = dalloc_fill(L, GDN_DTYPE_F32, VD, 1.0, &r);
  void *w_out = dalloc_fill(L, dt, (size_t)HIDDEN * HvV, 1.0 / 64.0, &r);
  void *x = dalloc_fill(L, dt, (size_t)T_CAP * HIDDEN, 1.0, &r);
  void *y = dalloc_fill(L, dt, (size_t)T_CAP * HIDDEN, 0.0, &r);
  void *state = dalloc_fill(L, GDN_DTYPE_F32, (size_t)NUM_SLOTS * Hv * VD * KD, 0.0, &r);
  void *conv = dalloc_fill(L, dt, (size_t)NUM_SLOTS * (WC - 1) * lay.D, 0.0, &r);
  gdn_layer_shape s = {HIDDEN, Hk, Hv, KD, VD, WC, dt, 1e-6, 1, 1, 0.f};
  gdn_layer_weights w;
  w.w_in = gdn_tensor_2d(w_in, dt, lay.Dtot, HIDDEN);
  w.conv_weight = gdn_tensor_2d(conv_w, dt, lay.D, WC);
  w.conv_bias = gdn_tensor_none();
  w.A_log = gdn_tensor_1d(A_log, GDN_DTYPE_F32, Hv);
  w.dt_bias = gdn_tensor_1d(dt_bias, GDN_DTYPE_F32, Hv);
  w.norm_weight = gdn_tensor_1d(norm_w, GDN_DTYPE_F32, VD);
  w.w_out = gdn_tensor_2d(w_out, dt, HIDDEN, HvV);
  gdn_layer_io io;
  io.x = gdn_tensor_2d(x, dt, T_CAP, HIDDEN);
  io.y = gdn_tensor_2d(y, dt, T_CAP, HIDDEN);
  io.state = gdn_tensor_4d(state, GDN_DTYPE_F32, NUM_SLOTS, Hv, VD, KD);
  io.conv_state = gdn_tensor_3d(conv, dt, NUM_SLOTS, WC - 1, lay.D);
  gdn_status st = gdn_layer_plan_create(&L->plan, &s, &w, &io, kBuckets, NCONF, comm, device);
  if (st != GDN_SUCCESS) die("gdn_layer_plan_create", st);
  CUDA_OK(cudaDeviceSynchronize()); /* the fills above ran on the legacy stream */
}

static void layer_free(layer_inst *L) {
  gdn_layer_plan_destroy(L->plan);
  for (int i = 0; i < L->nbufs; ++i) CUDA_OK(cudaFree(L->bufs[i]));
}

typedef struct run_ctx {
  gdn_layer_plan *plan;
  int n;
  int32_t cu[9], slots[8];
} run_ctx;

static void set_conf(run_ctx *c, gdn_layer_plan *p, const conf *cf) {
  c->plan = p;
  c->n = cf->seqs;
  c->cu[0] = 0;
  for (int i = 0; i < cf->seqs; ++i) {
    c->cu[i + 1] = c->cu[i] + cf->len;
    c->slots[i] = i;
  }
}

static void run_graph(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_layer_run(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) die("gdn_layer_run", st);
}

static void run_eager(void *p, cudaStream_t s) {
  run_ctx *c = (run_ctx *)p;
  gdn_status st = gdn_layer_run_eager(c->plan, c->cu, c->slots, c->n, s);
  if (st != GDN_SUCCESS) die("gdn_layer_run_eager", st);
}

static void check_batches(gdn_layer_plan *p) {
  gdn_status st = gdn_layer_check_error(p);
  if (st != GDN_SUCCESS) die("gdn_layer_check_error", st);
}

/* ---------------------------------------------------------------- TP2 */

typedef struct tp_shared {
  int R;
  ncclComm_t comm[8];
  pthread_barrier_t barrier;
  double graph_us[8][NCONF], eager_us[8][NCONF];
} tp_shared;

typedef struct tp_rank {
  tp_shared *sh;
  int rank;
} tp_rank;

static void *tp_main(void *arg) {
  tp_rank *tr = (tp_rank *)arg;
  tp_shared *sh = tr->sh;
  const int r = tr->rank;
  CUDA_OK(cudaSetDevice(r));
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  layer_inst L;
  /* every rank creates its plan concurrently (NCCL may connect during the capture) */
  layer_create(&L, HK / sh->R, HV / sh->R, sh->comm[r], r, 1234 + (uint64_t)r);
  for (int i = 0; i < NCONF; ++i) {
    run_ctx c;
    set_conf(&c, L.plan, &kConf[i]);
    pthread_barrier_wait(&sh->barrier);
    sh->graph_us[r][i] = gdn_bench_median_us(run_graph, &c, s, WARMUP, REPS);
    pthread_barrier_wait(&sh->barrier);
    sh->eager_us[r][i] = gdn_bench_median_us(run_eager, &c, s, WARMUP, REPS);
  }
  CUDA_OK(cudaStreamSynchronize(s));
  check_batches(L.plan);
  layer_free(&L);
  CUDA_OK(cudaStreamDestroy(s));
  pthread_barrier_wait(&sh->barrier);
  gdn_status st = gdn_layer_comm_destroy(sh->comm[r]);
  if (st != GDN_SUCCESS) die("gdn_layer_comm_destroy", st);
  return NULL;
}

int main(void) {
  gdn_gpu_test_init("bench_layer", 1);
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  int ndev = 0;
  CUDA_OK(cudaGetDeviceCount(&ndev));
  printf("GDN layer prefill, Qwen3-Next shapes: hidden %d, Hk %d, Hv %d, K %d, V %d, W %d, bf16; %d GPU(s) visible\n",
         HIDDEN, HK, HV, KD, VD, WC, ndev);

  /* TP1 on GPU 0 */
  double g1[NCONF], e1[NCONF];
  {
    CUDA_OK(cudaSetDevice(0));
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    layer_inst L;
    layer_create(&L, HK, HV, NULL, 0, 1234);
    for (int i = 0; i < NCONF; ++i) {
      run_ctx c;
      set_conf(&c, L.plan, &kConf[i]);
      g1[i] = gdn_bench_median_us(run_graph, &c, s, WARMUP, REPS);
      e1[i] = gdn_bench_median_us(run_eager, &c, s, WARMUP, REPS);
    }
    CUDA_OK(cudaStreamSynchronize(s));
    check_batches(L.plan);
    layer_free(&L);
    CUDA_OK(cudaStreamDestroy(s));
  }

  /* TP2 on GPUs 0 and 1 */
  int have2 = ndev >= 2;
  double g2[NCONF], e2[NCONF];
  if (have2) {
    static tp_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.R = 2;
    gdn_status st = gdn_layer_comm_init_all(2, NULL, sh.comm);
    if (st != GDN_SUCCESS) die("gdn_layer_comm_init_all", st);
    pthread_barrier_init(&sh.barrier, NULL, 2);
    tp_rank tr[2];
    pthread_t th[2];
    for (int r = 0; r < 2; ++r) {
      tr[r].sh = &sh;
      tr[r].rank = r;
      if (pthread_create(&th[r], NULL, tp_main, &tr[r]) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
      }
    }
    for (int r = 0; r < 2; ++r) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&sh.barrier);
    for (int i = 0; i < NCONF; ++i) {
      g2[i] = sh.graph_us[0][i] > sh.graph_us[1][i] ? sh.graph_us[0][i] : sh.graph_us[1][i];
      e2[i] = sh.eager_us[0][i] > sh.eager_us[1][i] ? sh.eager_us[0][i] : sh.eager_us[1][i];
    }
  }

  printf("\n%-10s | %12s %9s %12s %7s | %12s %9s %12s | %8s\n", "batch", "R=1 graph us", "ns/tok", "R=1 eager us",
         "eag/gr", "R=2 graph us", "ns/tok", "R=2 eager us", "R1/R2");
  for (int i = 0; i < NCONF; ++i) {
    const int T = kConf[i].seqs * kConf[i].len;
    char name[32];
    snprintf(name, sizeof name, "%dx%d", kConf[i].seqs, kConf[i].len);
    printf("%-10s | %12.1f %9.1f %12.1f %7.2f | ", name, g1[i], g1[i] * 1e3 / T, e1[i], e1[i] / g1[i]);
    if (have2)
      printf("%12.1f %9.1f %12.1f | %8.2f\n", g2[i], g2[i] * 1e3 / T, e2[i], g1[i] / g2[i]);
    else
      printf("%12s %9s %12s | %8s\n", "n/a", "n/a", "n/a", "n/a");
  }
  if (!have2) printf("(R=2 needs >= 2 visible GPUs)\n");
  printf("R=2: per rank Hk %d, Hv %d, the all-reduce of y [T_b, %d] bf16 inside the graph; slowest rank's median.\n",
         HK / 2, HV / 2, HIDDEN);
  return 0;
}
