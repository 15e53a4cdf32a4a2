/* Gated RMSNorm vs the float64 reference: dtypes, z as a strided column slice of a
 * projection output, strided out, V not a multiple of the vector width, batch header
 * (pad rows zeroed, invalid status writes nothing), no batch, in place, graph replay.
 *
 * Tolerance: the kernel computes in fp32 (fast rsqrt/exp, ~1e-6 relative) and rounds once
 * to out's dtype, so per element |err| <= atol + rtol |ref| with rtol = 2^-8 (bf16, one
 * rounding is <= 2^-9), 2^-10 (fp16) or 2e-5 (fp32), atol = 1e-5 (1e-6 for fp32); the
 * relative L2 error must be below the same rtol. */
#include <math.h>
#include <string.h>
#include "batch_host.h"
#include "gdn/gated_rmsnorm.h"
#include "gdn/reference.h"
#include "gpu_util.h"

typedef struct rms_case {
  const char *name;
  gdn_dtype xdt, gdt, wdt; /* x; z and out; weight */
  int H, V;
  int z_cols, z_off;       /* z: column slice [z_off, z_off + H*V) of a [T_cap, z_cols] buffer */
  int o_head_pad, o_tok_pad;
  int use_batch, in_place; /* in_place: out is x (needs xdt == gdt) */
  double eps;              /* 0: default 1e-6 */
  int expect_vec;
} rms_case;

static double rtol_of(gdn_dtype d) { return d == GDN_DTYPE_BF16 ? 1.0 / 256 : d == GDN_DTYPE_F16 ? 1.0 / 1024 : 2e-5; }

static void run_case(const rms_case *c, gdn_rng *rng, cudaStream_t stream) {
  const int T_cap = 77, T = c->use_batch ? 53 : T_cap, H = c->H, V = c->V;
  const size_t gs = gdn_dtype_size(c->gdt);
  /* x: [T_cap, H, V] contiguous. */
  size_t nx = (size_t)T_cap * H * V;
  double *x = gdn_dalloc(nx);
  gdn_fill_normal(rng, x, nx, 1.5);
  gdn_round_to(c->xdt, x, nx);
  size_t nz = (size_t)T_cap * c->z_cols;
  double *zbuf = gdn_dalloc(nz), *z = gdn_dalloc(nx);
  gdn_fill_normal(rng, zbuf, nz, 2.0);
  gdn_round_to(c->gdt, zbuf, nz);
  for (int t = 0; t < T_cap; ++t) memcpy(z + (size_t)t * H * V, zbuf + (size_t)t * c->z_cols + c->z_off, (size_t)H * V * sizeof(double));
  double *w = gdn_dalloc(V);
  gdn_fill_normal(rng, w, V, 0.5);
  for (int i = 0; i < V; ++i) w[i] += 1.0;
  gdn_round_to(c->wdt, w, V);
  double eps = c->eps > 0 ? c->eps : 1e-6;
  double *ref = gdn_dalloc(nx);
  gdn_ref_gated_rmsnorm(T_cap, H, V, x, z, w, eps, ref);

  void *x_d = gdn_upload(c->xdt, x, nx);
  void *z_d = gdn_upload(c->gdt, zbuf, nz);
  void *w_d = gdn_upload(c->wdt, w, V);
  int64_t osh = V + c->o_head_pad, ost = (int64_t)H * osh + c->o_tok_pad;
  size_t no = c->in_place ? nx : (size_t)T_cap * ost;
  void *o_d = c->in_place ? x_d : gdn_dmalloc(no * gs);

  gdn_batch batch;
  memset(&batch, 0, sizeof batch);
  if (c->use_batch) {
    int32_t cu[4] = {0, 20, 21, T};
    int32_t slots[3] = {0, 1, 2};
    batch = gdn_test_batch_upload(3, cu, slots, 4, T_cap);
  }
  gdn_gated_rmsnorm_args a;
  memset(&a, 0, sizeof a);
  a.x = gdn_tensor_3d(x_d, c->xdt, T_cap, H, V);
  a.z = gdn_tensor_3d((char *)z_d + (size_t)c->z_off * gs, c->gdt, T_cap, H, V);
  a.z.strides[0] = c->z_cols;
  a.weight = gdn_tensor_1d(w_d, c->wdt, V);
  if (c->in_place) {
    a.out = a.x;
  } else {
    a.out = gdn_tensor_3d(o_d, c->gdt, T_cap, H, V);
    a.out.strides[0] = ost;
    a.out.strides[1] = osh;
  }
  a.eps = c->eps;
  a.batch = batch;

  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  gdn_gated_rmsnorm_config cfg;
  CHECK_OK(gdn_gated_rmsnorm_plan(&a, &dev, &cfg));
  if (c->expect_vec) CHECK(cfg.vec == c->expect_vec, "%s: planned vec %d, expected %d", c->name, cfg.vec, c->expect_vec);
  printf("  %s: H %d V %d vec %d warps %d\n", c->name, H, V, cfg.vec, cfg.warps_per_block);

  cudaGraph_t graph;
  cudaGraphExec_t exec = NULL;
  cudaGraphNode_t node;
  CUDA_OK(cudaGraphCreate(&graph, 0));
  CHECK_OK(gdn_gated_rmsnorm_add_node(&a, &cfg, graph, NULL, 0, &node));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  size_t nv = (size_t)T * H * V;
  double *got = gdn_dalloc(no), *g = gdn_dalloc(nv), *want = gdn_dalloc(nv);
  for (int mode = 0; mode < 2; ++mode) { /* 0 eager, 1 graph */
    if (c->in_place) {
      void *h = gdn_xmalloc(nx * gs);
      gdn_pack(c->xdt, x, nx, h);
      CUDA_OK(cudaMemcpy(x_d, h, nx * gs, cudaMemcpyHostToDevice));
      free(h);
    } else {
      gdn_poison(o_d, no * gs);
    }
    if (mode == 0) CHECK_OK(gdn_gated_rmsnorm_launch(&a, &cfg, stream));
    else CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    gdn_download(c->gdt, o_d, no, got);
    size_t k = 0, pad_bad = 0, gap_bad = 0;
    for (int t = 0; t < T_cap; ++t)
      for (int h = 0; h < H; ++h)
        for (int d = 0; d < V; ++d) {
          size_t idx = c->in_place ? ((size_t)t * H + h) * V + d : (size_t)t * ost + (size_t)h * osh + d;
          if (t < T) {
            g[k] = got[idx];
            want[k] = ref[((size_t)t * H + h) * V + d];
            ++k;
          } else if (got[idx] != 0.0) {
            ++pad_bad;
          }
        }
    if (!c->in_place) /* gaps between heads/tokens stay poison (NaN) */
      for (size_t i = 0; i < no; ++i) {
        int64_t t = (int64_t)(i / ost), r = (int64_t)(i % ost), h = r / osh, d = r % osh;
        if ((t >= T_cap || h >= H || d >= V) && !isnan(got[i])) ++gap_bad;
      }
    double rtol = rtol_of(c->gdt), atol = c->gdt == GDN_DTYPE_F32 ? 1e-6 : 1e-5;
    double rel = gdn_rel_l2(g, want, nv), sc = gdn_max_scaled_err(g, want, nv, atol, rtol);
    const char *m = mode ? "graph" : "eager";
    CHECK(rel <= rtol, "%s %s: rel L2 %.3g > %.3g", c->name, m, rel, rtol);
    CHECK(sc <= 1.0, "%s %s: max scaled error %.3g > 1", c->name, m, sc);
    CHECK(pad_bad == 0, "%s %s: %zu elements of pad rows are not zero", c->name, m, pad_bad);
    CHECK(gap_bad == 0, "%s %s: %zu elements between rows/heads were written", c->name, m, gap_bad);
  }

  if (c->use_batch && !c->in_place) { /* invalid status: nothing written */
    gdn_test_batch_set_status(&batch, GDN_BATCH_NOT_MONOTONIC);
    gdn_poison(o_d, no * gs);
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    gdn_download(c->gdt, o_d, no, got);
    CHECK(gdn_count_nonfinite(got, no) == no, "%s: invalid batch: %zu elements written", c->name,
          no - gdn_count_nonfinite(got, no));
  }

  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  if (c->use_batch) gdn_test_batch_free(&batch);
  if (!c->in_place) CUDA_OK(cudaFree(o_d));
  CUDA_OK(cudaFree(x_d));
  CUDA_OK(cudaFree(z_d));
  CUDA_OK(cudaFree(w_d));
  free(x);
  free(zbuf);
  free(z);
  free(w);
  free(ref);
  free(got);
  free(g);
  free(want);
}

int main(void) {
  gdn_gpu_test_init("test_gated_rmsnorm", 1);
  gdn_rng rng;
  gdn_rng_seed(&rng, gdn_test_seed("test_gated_rmsnorm"));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const rms_case cases[] = {
      /* name            x               z/out           weight          H   V    zcols          zoff  hpad tpad batch inpl eps   vec */
      {"bf16_batch",     GDN_DTYPE_BF16, GDN_DTYPE_BF16, GDN_DTYPE_F32,  8,  128, 3 * 8 * 128,   1024, 0,   8,   1,    0,   0,    8},
      {"fp32x_nobatch",  GDN_DTYPE_F32,  GDN_DTYPE_BF16, GDN_DTYPE_BF16, 4,  128, 4 * 128 + 8,   8,    8,   0,   0,    0,   1e-5, 4},
      {"fp16_batch",     GDN_DTYPE_F16,  GDN_DTYPE_F16,  GDN_DTYPE_F16,  3,  96,  3 * 96 + 40,   32,   0,   0,   1,    0,   0,    8},
      {"bf16_v100",      GDN_DTYPE_BF16, GDN_DTYPE_BF16, GDN_DTYPE_F32,  2,  100, 2 * 100 + 4,   4,    4,   0,   1,    0,   0,    4},
      {"bf16_v30_odd",   GDN_DTYPE_BF16, GDN_DTYPE_BF16, GDN_DTYPE_F32,  5,  30,  5 * 30 + 3,    3,    1,   0,   1,    0,   0,    1},
      {"fp32_all",       GDN_DTYPE_F32,  GDN_DTYPE_F32,  GDN_DTYPE_F32,  4,  64,  4 * 64,        0,    0,   4,   1,    0,   0,    4},
      {"bf16_inplace",   GDN_DTYPE_BF16, GDN_DTYPE_BF16, GDN_DTYPE_BF16, 4,  128, 4 * 128 + 16,  16,   0,   0,   0,    1,   0,    8},
      {"bf16_v512",      GDN_DTYPE_BF16, GDN_DTYPE_BF16, GDN_DTYPE_F32,  2,  512, 2 * 512,       0,    0,   0,   1,    0,   0,    8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&cases[i], &rng, stream);
  CUDA_OK(cudaStreamDestroy(stream));
  return gdn_test_finish("test_gated_rmsnorm");
}
