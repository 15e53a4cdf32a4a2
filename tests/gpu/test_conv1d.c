/* conv1d + SiLU with the conv-state pool vs the float64 reference: varlen batches with
 * short sequences (shorter than W-1, empty, many in one tile), slot -1, slots outside the
 * pool (that sequence skipped: its rows stay poison), untouched slots, strided outputs,
 * several tile sizes (tiles not dividing T, the owner block crossing tile ends, partial
 * row steps), channel blocks not dividing D, eager + graph, two consecutive batches (state
 * carried over), invalid batch status (nothing written). Outputs start poisoned.
 *
 * Tolerance: inputs, weights, bias and state are exactly representable (rounded on the
 * host); the kernel sums <= 4 products in fp32 and rounds once to the output dtype, so an
 * element may differ by one rounding (<= 2^-9 relative for bf16, 2^-11 for fp16) plus fp32
 * noise: we allow |err| <= 1e-5 + 2^-8 |ref| (bf16) or 1e-5 + 2^-10 |ref| (fp16), and the
 * relative L2 error must stay below 2^-8 / 2^-10. The state is a copy: compared bit-exact. */
#include <string.h>
#include "batch_host.h"
#include "gdn/conv1d.h"
#include "gdn/reference.h"
#include "gpu_util.h"

typedef struct conv_case {
  const char *name;
  gdn_dtype dt, wdt;
  int bias_mode; /* 0 none, 1 fp32, 2 dtype of mixed */
  int W, Hk, K, Hv, V;
  int extra_cols, row_pad; /* mixed: Dtot = D + extra_cols, row stride = Dtot + row_pad */
  int head_pad, tok_pad;   /* outputs: head stride = hd + head_pad, token stride = H*(hd+head_pad) + tok_pad */
  int slot_pad;            /* conv_state slot stride = (W-1)*D + slot_pad */
  int tile;                /* 0: planned */
  int use_state, no_slots;
  int expect_vec;          /* 0: don't check */
  int threads;             /* 0: planned */
  int nseq;                /* 0: the default batch below */
  const int *lens, *slots; /* nseq entries; a slot outside [-1, num_slots) skips that sequence */
  int num_slots;           /* 0: 8 */
} conv_case;

#define MAX_SEQS 16

static uint16_t *download_raw(const void *dev, size_t n) {
  uint16_t *h = (uint16_t *)gdn_xmalloc(n * 2);
  CUDA_OK(cudaMemcpy(h, dev, n * 2, cudaMemcpyDeviceToHost));
  return h;
}

static double widen(gdn_dtype dt, uint16_t v) { return dt == GDN_DTYPE_BF16 ? gdn_bf16_to_f32(v) : gdn_f16_to_f32(v); }

typedef struct outbuf {
  int H, hd, off; /* off: first channel */
  int64_t st, sh;
  size_t elems;
  void *dev;
} outbuf;

/* Compares valid rows with ref [T, D]; every other element (pad rows, gaps, rows of skipped
 * sequences: skip[t] != 0) must still be poison. */
static void check_out(const conv_case *c, const char *what, const outbuf *o, int T, int T_cap, int D, const double *ref,
                      const char *skip, const char *tag) {
  uint16_t *raw = download_raw(o->dev, o->elems);
  size_t n = (size_t)T * o->H * o->hd;
  double *got = gdn_dalloc(n ? n : 1), *want = gdn_dalloc(n ? n : 1);
  size_t k = 0, bad_poison = 0;
  char *valid = (char *)calloc(o->elems, 1);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < o->H && !skip[t]; ++h)
      for (int d = 0; d < o->hd; ++d) {
        size_t idx = (size_t)t * o->st + (size_t)h * o->sh + d;
        valid[idx] = 1;
        got[k] = widen(c->dt, raw[idx]);
        want[k] = ref[(size_t)t * D + o->off + h * o->hd + d];
        ++k;
      }
  for (size_t i = 0; i < o->elems; ++i)
    if (!valid[i] && raw[i] != 0xFFFFu) ++bad_poison;
  double rtol = c->dt == GDN_DTYPE_BF16 ? 1.0 / 256 : 1.0 / 1024;
  double rel = n ? gdn_rel_l2(got, want, n) : 0.0;
  double sc = n ? gdn_max_scaled_err(got, want, n, 1e-5, rtol) : 0.0;
  CHECK(rel <= rtol, "%s %s %s: rel L2 %.3g > %.3g", c->name, tag, what, rel, rtol);
  CHECK(sc <= 1.0, "%s %s %s: max scaled error %.3g > 1", c->name, tag, what, sc);
  CHECK(bad_poison == 0, "%s %s %s: %zu elements outside the valid rows were written", c->name, tag, what, bad_poison);
  (void)T_cap;
  free(raw);
  free(got);
  free(want);
  free(valid);
}

static void run_case(const conv_case *c, gdn_rng *rng, cudaStream_t stream) {
  static const int def_lens[] = {1, 0, 2, 3, 64, 100, 17};
  static const int def_slots[] = {3, 1, -1, 0, 5, 2, 6};
  const int N = c->nseq ? c->nseq : 7, num_slots = c->num_slots ? c->num_slots : 8;
  const int *lens = c->nseq ? c->lens : def_lens, *slots_h = c->nseq ? c->slots : def_slots;
  int32_t cu[MAX_SEQS + 1], ref_slots_h[MAX_SEQS];
  cu[0] = 0;
  for (int i = 0; i < N; ++i) {
    cu[i + 1] = cu[i] + lens[i];
    /* The reference indexes its pool by slot: a skipped sequence runs there without one. */
    ref_slots_h[i] = slots_h[i] < -1 || slots_h[i] >= num_slots ? -1 : slots_h[i];
  }
  const int T = cu[N], T_cap = T + 13, W = c->W, S = W - 1;
  char *skip = (char *)calloc((size_t)T_cap, 1);
  for (int i = 0; i < N; ++i)
    if (c->use_state && !c->no_slots && ref_slots_h[i] != slots_h[i])
      for (int t = cu[i]; t < cu[i + 1]; ++t) skip[t] = 1;
  const int HkK = c->Hk * c->K, D = 2 * HkK + c->Hv * c->V;
  const int Dtot = D + c->extra_cols;
  const int64_t row = Dtot + c->row_pad;
  const size_t es = 2;

  /* mixed: every element random (including z/b/a columns and pad rows). */
  size_t nm = (size_t)T_cap * row;
  double *mixed_h = gdn_dalloc(nm);
  gdn_fill_normal(rng, mixed_h, nm, 1.0);
  gdn_round_to(c->dt, mixed_h, nm);
  double *x = gdn_dalloc((size_t)T * D);
  for (int t = 0; t < T; ++t) memcpy(x + (size_t)t * D, mixed_h + (size_t)t * row, (size_t)D * sizeof(double));
  double *w = gdn_dalloc((size_t)D * W), *bias = gdn_dalloc(D);
  gdn_fill_normal(rng, w, (size_t)D * W, 0.5);
  gdn_round_to(c->wdt, w, (size_t)D * W);
  gdn_fill_normal(rng, bias, D, 0.2);
  gdn_round_to(c->bias_mode == 1 ? GDN_DTYPE_F32 : c->dt, bias, D);
  const int64_t slot_stride = (int64_t)S * D + c->slot_pad;
  size_t nst = (size_t)num_slots * slot_stride;
  double *state_h = gdn_dalloc(nst);
  gdn_fill_normal(rng, state_h, nst, 1.0);
  gdn_round_to(c->dt, state_h, nst);
  /* Reference state: contiguous [num_slots, S, D]. */
  double *state_ref = gdn_dalloc((size_t)num_slots * S * D);
  for (int s = 0; s < num_slots; ++s)
    memcpy(state_ref + (size_t)s * S * D, state_h + (size_t)s * slot_stride, (size_t)S * D * sizeof(double));

  void *mixed_d = gdn_upload(c->dt, mixed_h, nm);
  void *w_d = gdn_upload(c->wdt, w, (size_t)D * W);
  void *bias_d = c->bias_mode ? gdn_upload(c->bias_mode == 1 ? GDN_DTYPE_F32 : c->dt, bias, D) : NULL;
  void *state_d = gdn_upload(c->dt, state_h, nst);
  uint16_t *state0 = download_raw(state_d, nst);
  uint16_t *mixed0 = download_raw(mixed_d, nm);

  outbuf o[3];
  const int Hs[3] = {c->Hk, c->Hk, c->Hv}, hds[3] = {c->K, c->K, c->V}, offs[3] = {0, HkK, 2 * HkK};
  for (int i = 0; i < 3; ++i) {
    o[i].H = Hs[i];
    o[i].hd = hds[i];
    o[i].off = offs[i];
    o[i].sh = hds[i] + c->head_pad;
    o[i].st = Hs[i] * o[i].sh + c->tok_pad;
    o[i].elems = (size_t)T_cap * o[i].st;
    o[i].dev = gdn_dmalloc(o[i].elems * es);
  }

  gdn_batch batch = gdn_test_batch_upload(N, cu, c->no_slots ? NULL : slots_h, N + 2, T_cap);
  gdn_conv1d_args a;
  memset(&a, 0, sizeof a);
  a.mixed = gdn_tensor_2d(mixed_d, c->dt, T_cap, Dtot);
  a.mixed.strides[0] = row;
  a.weight = gdn_tensor_2d(w_d, c->wdt, D, W);
  a.bias = c->bias_mode ? gdn_tensor_1d(bias_d, c->bias_mode == 1 ? GDN_DTYPE_F32 : c->dt, D) : gdn_tensor_none();
  if (c->use_state) {
    a.conv_state = gdn_tensor_3d(state_d, c->dt, num_slots, S, D);
    a.conv_state.strides[0] = slot_stride;
  } else {
    a.conv_state = gdn_tensor_none();
  }
  gdn_tensor *outs[3] = {&a.q, &a.k, &a.v};
  for (int i = 0; i < 3; ++i) {
    *outs[i] = gdn_tensor_3d(o[i].dev, c->dt, T_cap, o[i].H, o[i].hd);
    outs[i]->strides[0] = o[i].st;
    outs[i]->strides[1] = o[i].sh;
  }
  a.batch = batch;

  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  gdn_conv1d_config cfg;
  CHECK_OK(gdn_conv1d_plan(&a, &dev, &cfg));
  if (c->tile > 0) cfg.tile_tokens = c->tile;
  if (c->threads > 0) cfg.threads = c->threads;
  if (c->expect_vec) CHECK(cfg.vec == c->expect_vec, "%s: planned vec %d, expected %d", c->name, cfg.vec, c->expect_vec);
  printf("  %s: D %d W %d T %d vec %d threads %d tile %d\n", c->name, D, W, T, cfg.vec, cfg.threads, cfg.tile_tokens);

  double *out_ref = gdn_dalloc((size_t)T * D);
  const int32_t *ref_slots = c->no_slots ? NULL : ref_slots_h;
  double *ref_state = c->use_state ? state_ref : NULL;

  /* Pass 1: eager. */
  for (int i = 0; i < 3; ++i) gdn_poison(o[i].dev, o[i].elems * es);
  gdn_ref_conv1d(N, cu, ref_slots, D, W, x, w, c->bias_mode ? bias : NULL, ref_state, out_ref);
  CHECK_OK(gdn_conv1d_launch(&a, &cfg, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  const char *names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) check_out(c, names[i], &o[i], T, T_cap, D, out_ref, skip, "eager");

  /* State: used slots == reference (bit-exact copies), every other element untouched. */
  uint16_t *st1 = download_raw(state_d, nst);
  size_t st_bad = 0, untouched_bad = 0;
  for (int s = 0; s < num_slots; ++s)
    for (int64_t e = 0; e < slot_stride; ++e) {
      size_t idx = (size_t)s * slot_stride + e;
      int used = c->use_state && !c->no_slots && e < (int64_t)S * D;
      int in_batch = 0;
      for (int n = 0; n < N; ++n) in_batch |= slots_h[n] == s;
      if (used && in_batch) {
        double want = state_ref[(size_t)s * S * D + e];
        if (widen(c->dt, st1[idx]) != want) ++st_bad;
      } else if (st1[idx] != state0[idx]) {
        ++untouched_bad;
      }
    }
  CHECK(st_bad == 0, "%s: %zu conv-state elements differ from the reference", c->name, st_bad);
  CHECK(untouched_bad == 0, "%s: %zu conv-state elements outside the batch's slots changed", c->name, untouched_bad);
  free(st1);

  /* Pass 2 and 3: the same batch through a graph, continuing from the updated state. */
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaGraphNode_t node;
  CUDA_OK(cudaGraphCreate(&graph, 0));
  CHECK_OK(gdn_conv1d_add_node(&a, &cfg, graph, NULL, 0, &node));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int pass = 2; pass <= 3; ++pass) {
    for (int i = 0; i < 3; ++i) gdn_poison(o[i].dev, o[i].elems * es);
    gdn_ref_conv1d(N, cu, ref_slots, D, W, x, w, c->bias_mode ? bias : NULL, ref_state, out_ref);
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    for (int i = 0; i < 3; ++i)
      check_out(c, names[i], &o[i], T, T_cap, D, out_ref, skip, pass == 2 ? "graph pass 2" : "graph pass 3");
  }
  uint16_t *st3 = download_raw(state_d, nst);
  st_bad = 0;
  if (c->use_state && !c->no_slots)
    for (int n = 0; n < N; ++n) {
      int s = ref_slots_h[n];
      if (s < 0) continue;
      for (size_t e = 0; e < (size_t)S * D; ++e)
        if (widen(c->dt, st3[(size_t)s * slot_stride + e]) != state_ref[(size_t)s * S * D + e]) ++st_bad;
    }
  CHECK(st_bad == 0, "%s: after 3 batches %zu conv-state elements differ from the reference", c->name, st_bad);

  /* Invalid batch status: nothing is written. */
  gdn_test_batch_set_status(&batch, GDN_BATCH_SLOT_REUSED);
  for (int i = 0; i < 3; ++i) gdn_poison(o[i].dev, o[i].elems * es);
  CHECK_OK(gdn_conv1d_launch(&a, &cfg, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  size_t written = 0;
  for (int i = 0; i < 3; ++i) {
    uint16_t *raw = download_raw(o[i].dev, o[i].elems);
    for (size_t e = 0; e < o[i].elems; ++e) written += raw[e] != 0xFFFFu;
    free(raw);
  }
  uint16_t *st4 = download_raw(state_d, nst);
  CHECK(written == 0, "%s: invalid batch: %zu output elements written", c->name, written);
  CHECK(memcmp(st3, st4, nst * es) == 0, "%s: invalid batch: the conv state changed", c->name);
  uint16_t *mixed1 = download_raw(mixed_d, nm);
  CHECK(memcmp(mixed0, mixed1, nm * es) == 0, "%s: mixed (an input) was modified", c->name);

  free(st3);
  free(st4);
  free(mixed1);
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  gdn_test_batch_free(&batch);
  for (int i = 0; i < 3; ++i) CUDA_OK(cudaFree(o[i].dev));
  CUDA_OK(cudaFree(mixed_d));
  CUDA_OK(cudaFree(w_d));
  if (bias_d) CUDA_OK(cudaFree(bias_d));
  CUDA_OK(cudaFree(state_d));
  free(state0);
  free(mixed0);
  free(mixed_h);
  free(x);
  free(w);
  free(bias);
  free(state_h);
  free(state_ref);
  free(out_ref);
  free(skip);
}

int main(void) {
  gdn_gpu_test_init("test_conv1d", 1);
  gdn_rng rng;
  gdn_rng_seed(&rng, gdn_test_seed("test_conv1d"));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  /* Many short sequences (several per tile, lengths 0..W and just above), slots -1 and
   * outside the pool (num_slots 12: 12 and -2 are skipped), one sequence over several
   * tiles with a partial last row step. */
  static const int short_lens[] = {1, 3, 2, 1, 0, 4, 5, 1, 2, 3, 9, 1, 37, 6};
  static const int short_slots[] = {0, -1, 2, 3, 4, 12, 5, -1, 7, 1, 6, -2, 8, 9};
  /* Sequences starting 1, 2 and 3 tokens before a tile end (the owner computes past it), tile 4. */
  static const int edge_lens[] = {3, 10, 1, 4, 5, 11};
  static const int edge_slots[] = {1, 0, 3, -1, 2, 4};
  const conv_case cases[] = {
      /* name        dt              wdt             bias W  Hk K   Hv V    extra rpad hpad tpad spad tile st ns vec thr nseq lens slots nslots */
      {"bf16_w4",    GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1,   4, 2, 32, 4, 32,  40,   8,   0,   0,   0,   0,   1, 0, 8, 0, 0, NULL, NULL, 0},
      {"fp16_w4_t1", GDN_DTYPE_F16,  GDN_DTYPE_F32,  2,   4, 2, 32, 4, 32,  24,   0,   8,   8,   0,   1,   1, 0, 8, 0, 0, NULL, NULL, 0},
      {"bf16_w3_t2", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 0,   3, 1, 64, 2, 64,  8,    8,   0,   0,   16,  2,   1, 0, 0, 0, 0, NULL, NULL, 0},
      {"bf16_w2_v1", GDN_DTYPE_BF16, GDN_DTYPE_F32,  1,   2, 2, 16, 3, 16,  5,    1,   1,   0,   0,   5,   1, 0, 1, 0, 0, NULL, NULL, 0},
      {"bf16_nostate", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 2, 4, 2, 32, 4, 32,  40,   0,   0,   0,   0,   64,  0, 0, 8, 0, 0, NULL, NULL, 0},
      {"bf16_noslots", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1, 4, 2, 32, 4, 32,  40,   0,   0,   0,   0,   3,   1, 1, 8, 0, 0, NULL, NULL, 0},
      {"fp16_w4_v4", GDN_DTYPE_F16,  GDN_DTYPE_F16,  1,   4, 2, 12, 2, 20,  0,    4,   4,   0,   0,   7,   1, 0, 4, 0, 0, NULL, NULL, 0},
      {"bf16_qwen3next", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 0, 4, 16, 128, 32, 128, 64 + 32 * 128, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, NULL, NULL, 0},
      /* D = 664: 83 channel groups over 32-thread blocks (3 blocks, the last 19 threads);
       * tile 5 divides neither T nor a sequence. */
      {"bf16_short_varlen", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1, 4, 3, 64, 5, 56, 24, 0, 0, 0, 0, 5, 1, 0, 8, 32,
       14, short_lens, short_slots, 12},
      {"fp16_short_w3_t1", GDN_DTYPE_F16, GDN_DTYPE_F32, 2, 3, 3, 64, 5, 56, 0, 8, 0, 8, 8, 1, 1, 0, 8, 0,
       14, short_lens, short_slots, 12},
      {"bf16_short_w2_planned", GDN_DTYPE_BF16, GDN_DTYPE_F32, 0, 2, 3, 64, 5, 56, 8, 0, 0, 0, 0, 0, 1, 0, 8, 64,
       14, short_lens, short_slots, 12},
      {"bf16_short_nostate", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1, 4, 3, 64, 5, 56, 0, 0, 0, 0, 0, 3, 0, 0, 8, 0,
       14, short_lens, short_slots, 12},
      {"bf16_tile_edges", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1, 4, 2, 32, 4, 32, 8, 0, 0, 0, 0, 4, 1, 0, 8, 0,
       6, edge_lens, edge_slots, 0},
      {"bf16_tile_edges_v2", GDN_DTYPE_BF16, GDN_DTYPE_BF16, 1, 4, 2, 34, 4, 34, 2, 0, 0, 0, 0, 4, 1, 0, 2, 0,
       6, edge_lens, edge_slots, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&cases[i], &rng, stream);

  /* Validation: an invalid call writes nothing and names the argument. */
  {
    gdn_conv1d_args a;
    memset(&a, 0, sizeof a);
    CHECK_STATUS(gdn_conv1d_validate(&a), GDN_ERROR_INVALID_ARGUMENT);
  }
  CUDA_OK(cudaStreamDestroy(stream));
  return gdn_test_finish("test_conv1d");
}
