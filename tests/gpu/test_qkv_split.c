/* GPU test of the fused QKV split: every layout kind (token-major, padded and odd-padded
 * rows, channel-major, padded channel rows, generic strides), every dtype, odd T, D not a
 * multiple of 8, padded / head-major outputs, misaligned pointers (narrower vectors),
 * graph replay == eager, update_node to a new T and new pointers, T == 0, and calls that
 * must be refused. The channel-major transpose (tiles of 128 channels x 256 bytes of
 * tokens) is run with T below, at and past whole tiles, with 16-byte aligned channel rows
 * (its direct-load kernel, also with rows padded so that the last row ends inside a
 * 16-byte chunk) and unaligned ones (odd T, padded rows, offset input: its realigning
 * kernel), with q / k / v boundaries and D inside a tile, and update_node switching
 * between the two kernels. The oracle is a CPU split compared BITWISE over the whole output
 * allocations, which are poisoned first: any write outside q / k / v shows up too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gpu_util.h"
#include "gdn/device.h"
#include "gdn/qkv_split.h"

static gdn_rng g_rng;
static gdn_device_info g_dev;
static cudaStream_t g_stream;

enum {
  IN_TOKEN,       /* [T, D] contiguous */
  IN_TOKEN_PAD,   /* row stride D + 64 */
  IN_TOKEN_ODD,   /* row stride D + 3: rows not 16-byte aligned */
  IN_CHANNEL,     /* [D, T] memory viewed as [T, D]: strides (1, T) */
  IN_CHANNEL_PAD, /* strides (1, T + 37) */
  IN_CHANNEL_PAD8,/* strides (1, T + 1 rounded up to 8): 16-byte aligned rows, T not a multiple of 8 */
  IN_GENERIC_ROW, /* strides (2D + 1, 2) */
  IN_GENERIC_COL, /* strides (3, 3T + 2) */
  IN_KINDS
};
static const char *in_names[IN_KINDS] = {"token", "token-pad", "token-odd", "channel", "channel-pad",
                                         "channel-pad8", "generic-row", "generic-col"};

enum { OUT_CONTIG, OUT_PADDED, OUT_HEAD_MAJOR, OUT_KINDS };
static const char *out_names[OUT_KINDS] = {"contig", "padded", "head-major"};

typedef struct tcase {
  gdn_dtype dtype;
  int Hk, K, Hv, V;
  int64_t T;
  int in_kind, out_kind;
  int in_off, out_off; /* element offsets from the (256-byte aligned) allocation */
  int expect_vec;      /* expected cfg.vec_bytes, 0: not checked */
} tcase;

typedef struct dbuf {
  void *dev;
  size_t bytes;
} dbuf;

typedef struct problem {
  tcase c;
  int64_t D;
  size_t E;
  dbuf in;
  unsigned char *in_host; /* the whole input allocation */
  dbuf out[3];
  gdn_qkv_split_args args;
} problem;

static int64_t extent_elems(const gdn_tensor *t) {
  int64_t last = 0;
  for (int d = 0; d < t->rank; ++d) {
    if (t->sizes[d] == 0) return 0;
    last += (t->sizes[d] - 1) * t->strides[d];
  }
  return last + 1;
}

static void case_name(const tcase *c, char *buf, size_t n) {
  snprintf(buf, n, "%s Hk=%d K=%d Hv=%d V=%d T=%lld in=%s+%d out=%s+%d", gdn_dtype_name(c->dtype), c->Hk, c->K, c->Hv,
           c->V, (long long)c->T, in_names[c->in_kind], c->in_off, out_names[c->out_kind], c->out_off);
}

static void input_strides(int kind, int64_t T, int64_t D, int64_t *s) {
  switch (kind) {
    case IN_TOKEN: s[0] = D; s[1] = 1; break;
    case IN_TOKEN_PAD: s[0] = D + 64; s[1] = 1; break;
    case IN_TOKEN_ODD: s[0] = D + 3; s[1] = 1; break;
    case IN_CHANNEL: s[0] = 1; s[1] = T; break;
    case IN_CHANNEL_PAD: s[0] = 1; s[1] = T + 37; break;
    case IN_CHANNEL_PAD8: s[0] = 1; s[1] = (T + 8) / 8 * 8; break;
    case IN_GENERIC_ROW: s[0] = 2 * D + 1; s[1] = 2; break;
    default: s[0] = 3; s[1] = 3 * T + 2; break;
  }
}

static void output_strides(int kind, int64_t T, int64_t H, int64_t hd, int64_t *s) {
  s[2] = 1;
  switch (kind) {
    case OUT_CONTIG: s[1] = hd; s[0] = H * hd; break;
    case OUT_PADDED: s[1] = hd + 8; s[0] = H * (hd + 8) + 24; break;
    default: s[1] = (T > 0 ? T : 1) * hd; s[0] = hd; break; /* memory [H, T, hd] */
  }
}

/* Random bits, never the all-ones poison pattern (NaN payloads included: the copy is bitwise). */
static void fill_random(unsigned char *p, size_t n_elems, size_t E) {
  for (size_t i = 0; i < n_elems; ++i) {
    uint64_t r = gdn_rng_next(&g_rng);
    if (E == 2) {
      uint16_t v = (uint16_t)r;
      if (v == 0xFFFFu) v = 0xFFFEu;
      memcpy(p + i * 2, &v, 2);
    } else {
      uint32_t v = (uint32_t)r;
      if (v == 0xFFFFFFFFu) v = 0xFFFFFFFEu;
      memcpy(p + i * 4, &v, 4);
    }
  }
}

static dbuf alloc_poisoned(size_t bytes) {
  dbuf b;
  b.bytes = bytes < 16 ? 16 : bytes;
  b.dev = gdn_dmalloc(b.bytes);
  gdn_poison(b.dev, b.bytes);
  return b;
}

static problem make_problem(const tcase *c) {
  problem p;
  memset(&p, 0, sizeof p);
  p.c = *c;
  p.E = gdn_dtype_size(c->dtype);
  p.D = 2LL * c->Hk * c->K + (int64_t)c->Hv * c->V;
  gdn_tensor *x = &p.args.mixed_qkv;
  *x = gdn_tensor_2d(NULL, c->dtype, c->T, p.D);
  input_strides(c->in_kind, c->T, p.D, x->strides);
  const size_t in_elems = (size_t)(c->in_off + extent_elems(x));
  p.in.bytes = in_elems * p.E < 16 ? 16 : in_elems * p.E;
  p.in_host = (unsigned char *)gdn_xmalloc(p.in.bytes);
  fill_random(p.in_host, p.in.bytes / p.E, p.E);
  p.in.dev = gdn_dmalloc(p.in.bytes);
  CUDA_OK(cudaMemcpy(p.in.dev, p.in_host, p.in.bytes, cudaMemcpyHostToDevice));
  x->data = (char *)p.in.dev + (size_t)c->in_off * p.E;

  const int64_t H[3] = {c->Hk, c->Hk, c->Hv}, hd[3] = {c->K, c->K, c->V};
  gdn_tensor *outs[3] = {&p.args.q, &p.args.k, &p.args.v};
  for (int i = 0; i < 3; ++i) {
    *outs[i] = gdn_tensor_3d(NULL, c->dtype, c->T, H[i], hd[i]);
    output_strides(c->out_kind, c->T, H[i], hd[i], outs[i]->strides);
    p.out[i] = alloc_poisoned((size_t)(c->out_off + extent_elems(outs[i])) * p.E);
    outs[i]->data = (char *)p.out[i].dev + (size_t)c->out_off * p.E;
  }
  return p;
}

static void free_problem(problem *p) {
  CUDA_OK(cudaFree(p->in.dev));
  for (int i = 0; i < 3; ++i) CUDA_OK(cudaFree(p->out[i].dev));
  free(p->in_host);
}

static void repoison(problem *p) {
  for (int i = 0; i < 3; ++i) gdn_poison(p->out[i].dev, p->out[i].bytes);
}

/* The CPU split into poisoned images of the output allocations. */
static unsigned char *expected_output(const problem *p, int which) {
  const tcase *c = &p->c;
  const gdn_tensor *x = &p->args.mixed_qkv;
  const gdn_tensor *o = which == 0 ? &p->args.q : which == 1 ? &p->args.k : &p->args.v;
  unsigned char *img = (unsigned char *)gdn_xmalloc(p->out[which].bytes);
  memset(img, 0xFF, p->out[which].bytes);
  const int64_t c0 = which == 0 ? 0 : which == 1 ? (int64_t)c->Hk * c->K : 2LL * c->Hk * c->K;
  for (int64_t t = 0; t < c->T; ++t)
    for (int64_t h = 0; h < o->sizes[1]; ++h)
      for (int64_t e = 0; e < o->sizes[2]; ++e) {
        const int64_t ch = c0 + h * o->sizes[2] + e;
        const int64_t src = c->in_off + t * x->strides[0] + ch * x->strides[1];
        const int64_t dst = c->out_off + t * o->strides[0] + h * o->strides[1] + e;
        memcpy(img + dst * p->E, p->in_host + src * p->E, p->E);
      }
  return img;
}

static unsigned char *download(const dbuf *b) {
  unsigned char *h = (unsigned char *)gdn_xmalloc(b->bytes);
  CUDA_OK(cudaMemcpy(h, b->dev, b->bytes, cudaMemcpyDeviceToHost));
  return h;
}

/* Compares the outputs with the CPU split; `what` names the run in the message. */
static void check_outputs(const problem *p, const char *what) {
  static const char *names[3] = {"q", "k", "v"};
  char name[256];
  case_name(&p->c, name, sizeof name);
  for (int i = 0; i < 3; ++i) {
    unsigned char *want = expected_output(p, i), *got = download(&p->out[i]);
    size_t bad = p->out[i].bytes;
    for (size_t b = 0; b < p->out[i].bytes; ++b)
      if (want[b] != got[b]) { bad = b; break; }
    CHECK(bad == p->out[i].bytes,
          "%s [%s]: %s allocation differs from the CPU split at element %zu (byte %zu of %zu): got 0x%02x, want "
          "0x%02x%s", what, name, names[i], bad / p->E, bad, p->out[i].bytes, bad < p->out[i].bytes ? got[bad] : 0,
          bad < p->out[i].bytes ? want[bad] : 0,
          bad < p->out[i].bytes && want[bad] == 0xFF ? " (a write outside the tensor, or a missed element)" : "");
    free(want);
    free(got);
  }
}

/* Outputs still all poison (nothing written). */
static void check_untouched(const problem *p, const char *what) {
  char name[256];
  case_name(&p->c, name, sizeof name);
  for (int i = 0; i < 3; ++i) {
    unsigned char *got = download(&p->out[i]);
    size_t bad = p->out[i].bytes;
    for (size_t b = 0; b < p->out[i].bytes; ++b)
      if (got[b] != 0xFF) { bad = b; break; }
    CHECK(bad == p->out[i].bytes, "%s [%s]: output %d was written at byte %zu", what, name, i, bad);
    free(got);
  }
}

static gdn_qkv_split_layout expected_layout(const gdn_tensor *x) {
  if (x->strides[1] == 1) return GDN_QKV_SPLIT_TOKEN_MAJOR;
  if (x->strides[0] == 1) return GDN_QKV_SPLIT_CHANNEL_MAJOR;
  return GDN_QKV_SPLIT_GENERIC;
}

static int plan_checked(const problem *p, gdn_qkv_split_config *cfg) {
  char name[256];
  case_name(&p->c, name, sizeof name);
  gdn_status s = gdn_qkv_split_plan(&p->args, &g_dev, cfg);
  CHECK(s == GDN_SUCCESS, "plan [%s]: %s (%s)", name, gdn_status_string(s), gdn_get_last_error());
  if (s != GDN_SUCCESS) return 0;
  CHECK(cfg->layout == expected_layout(&p->args.mixed_qkv), "plan [%s]: layout %s, expected %s", name,
        gdn_qkv_split_layout_name(cfg->layout), gdn_qkv_split_layout_name(expected_layout(&p->args.mixed_qkv)));
  CHECK(p->c.expect_vec == 0 || cfg->vec_bytes == p->c.expect_vec, "plan [%s]: vec_bytes %d, expected %d", name,
        cfg->vec_bytes, p->c.expect_vec);
  return 1;
}

/* Eager launch on fresh random data == CPU split. */
static void run_case(const tcase *c) {
  problem p = make_problem(c);
  gdn_qkv_split_config cfg;
  if (plan_checked(&p, &cfg)) {
    CHECK_OK(gdn_qkv_split_launch(&p.args, &cfg, g_stream));
    CUDA_OK(cudaStreamSynchronize(g_stream));
    check_outputs(&p, "eager");
  }
  free_problem(&p);
}

static tcase mk(gdn_dtype dt, const int *shape, int64_t T, int in_kind, int out_kind, int in_off, int out_off,
                int expect_vec) {
  tcase c;
  c.dtype = dt;
  c.Hk = shape[0];
  c.K = shape[1];
  c.Hv = shape[2];
  c.V = shape[3];
  c.T = T;
  c.in_kind = in_kind;
  c.out_kind = out_kind;
  c.in_off = in_off;
  c.out_off = out_off;
  c.expect_vec = expect_vec;
  return c;
}

/* Graph: add_node (after an empty dependency) + replay == eager; update_node to a new T and
 * new buffers; update to T == 0; refused updates leave the graph working. */
static void graph_case(gdn_dtype dt, const int *shape, int in_kind, int64_t T1, int64_t T2) {
  tcase c1 = mk(dt, shape, T1, in_kind, OUT_CONTIG, 0, 0, 0), c2 = c1, c0 = c1;
  c2.T = T2;
  c0.T = 0;
  char name[256];
  case_name(&c1, name, sizeof name);
  problem p1 = make_problem(&c1), p2 = make_problem(&c2), p0 = make_problem(&c0);
  gdn_qkv_split_config cfg;
  if (!plan_checked(&p1, &cfg)) {
    free_problem(&p0);
    free_problem(&p1);
    free_problem(&p2);
    return;
  }

  /* eager reference bytes */
  CHECK_OK(gdn_qkv_split_launch(&p1.args, &cfg, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  check_outputs(&p1, "graph-case eager");
  unsigned char *eager[3];
  for (int i = 0; i < 3; ++i) eager[i] = download(&p1.out[i]);
  repoison(&p1);

  cudaGraph_t graph;
  cudaGraphNode_t dep, node;
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphCreate(&graph, 0));
  CUDA_OK(cudaGraphAddEmptyNode(&dep, graph, NULL, 0));
  CHECK_OK(gdn_qkv_split_add_node(&p1.args, &cfg, graph, &dep, 1, &node));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  for (int i = 0; i < 3; ++i) {
    unsigned char *got = download(&p1.out[i]);
    CHECK(memcmp(got, eager[i], p1.out[i].bytes) == 0, "graph replay [%s]: output %d differs from eager", name, i);
    free(got);
    free(eager[i]);
  }

  /* retarget to T2 and new buffers (a channel-major input's stride[1] changes with T) */
  repoison(&p1);
  CHECK_OK(gdn_qkv_split_update_node(&p2.args, &cfg, exec, node));
  CUDA_OK(cudaGraphLaunch(exec, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  check_outputs(&p2, "graph after update_node");
  check_untouched(&p1, "old buffers after update_node");

  /* refused updates: another D, another layout kind, a pointer below the planned vectors */
  {
    int other[4] = {shape[0], shape[1], shape[2], shape[3] + 1};
    tcase cx = mk(dt, other, T2, in_kind, OUT_CONTIG, 0, 0, 0);
    problem px = make_problem(&cx);
    CHECK_STATUS(gdn_qkv_split_update_node(&px.args, &cfg, exec, node), GDN_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(gdn_get_last_error(), "plan must be redone") != NULL, "[%s] other D: message '%s'", name,
          gdn_get_last_error());
    CHECK_STATUS(gdn_qkv_split_launch(&px.args, &cfg, g_stream), GDN_ERROR_INVALID_ARGUMENT);
    CUDA_OK(cudaStreamSynchronize(g_stream));
    check_untouched(&px, "refused launch");
    free_problem(&px);

    /* the other kind over the same T2 * D elements (only the kind matters here) */
    gdn_qkv_split_args relaid = p2.args;
    if (cfg.layout == GDN_QKV_SPLIT_TOKEN_MAJOR) {
      relaid.mixed_qkv.strides[0] = 1;
      relaid.mixed_qkv.strides[1] = T2;
    } else {
      relaid.mixed_qkv.strides[0] = p2.D;
      relaid.mixed_qkv.strides[1] = 1;
    }
    if (cfg.layout != GDN_QKV_SPLIT_GENERIC) {
      CHECK_STATUS(gdn_qkv_split_update_node(&relaid, &cfg, exec, node), GDN_ERROR_INVALID_ARGUMENT);
      CHECK(strstr(gdn_get_last_error(), "plan must be redone") != NULL, "[%s] other layout: message '%s'", name,
            gdn_get_last_error());
    }
    if (cfg.vec_bytes > (int)p2.E) {
      gdn_qkv_split_args shifted = p2.args;
      shifted.v.data = (char *)shifted.v.data + p2.E; /* element-aligned, not vector-aligned */
      shifted.v.sizes[0] = T2 > 1 ? T2 - 1 : T2;      /* stays inside its allocation */
      shifted.q.sizes[0] = shifted.k.sizes[0] = shifted.mixed_qkv.sizes[0] = shifted.v.sizes[0];
      CHECK_STATUS(gdn_qkv_split_update_node(&shifted, &cfg, exec, node), GDN_ERROR_INVALID_ARGUMENT);
      CHECK(strstr(gdn_get_last_error(), "v ") != NULL, "[%s] misaligned v: message '%s' should name v", name,
            gdn_get_last_error());
    }
  }
  /* the graph still holds the last good update */
  repoison(&p2);
  CUDA_OK(cudaGraphLaunch(exec, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  check_outputs(&p2, "graph after refused updates");

  /* T == 0: the node keeps one idle block */
  repoison(&p2);
  CHECK_OK(gdn_qkv_split_update_node(&p0.args, &cfg, exec, node));
  CUDA_OK(cudaGraphLaunch(exec, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  check_untouched(&p0, "graph with T = 0");
  check_untouched(&p2, "previous buffers with T = 0");

  /* and back to a non-empty problem */
  CHECK_OK(gdn_qkv_split_update_node(&p1.args, &cfg, exec, node));
  CUDA_OK(cudaGraphLaunch(exec, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
  check_outputs(&p1, "graph after update back from T = 0");

  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  free_problem(&p0);
  free_problem(&p1);
  free_problem(&p2);
}

/* T == 0 eager with NULL data: a valid no-op. */
static void empty_case(void) {
  static const int shape[4] = {16, 128, 32, 128};
  gdn_qkv_split_args a;
  a.mixed_qkv = gdn_tensor_2d(NULL, GDN_DTYPE_BF16, 0, 8192);
  a.q = gdn_tensor_3d(NULL, GDN_DTYPE_BF16, 0, shape[0], shape[1]);
  a.k = gdn_tensor_3d(NULL, GDN_DTYPE_BF16, 0, shape[0], shape[1]);
  a.v = gdn_tensor_3d(NULL, GDN_DTYPE_BF16, 0, shape[2], shape[3]);
  gdn_qkv_split_config cfg;
  CHECK_OK(gdn_qkv_split_plan(&a, &g_dev, &cfg));
  CHECK_OK(gdn_qkv_split_launch(&a, &cfg, g_stream));
  CUDA_OK(cudaStreamSynchronize(g_stream));
}

int main(void) {
  gdn_gpu_test_init("test_qkv_split", 1);
  gdn_rng_seed(&g_rng, gdn_test_seed("test_qkv_split"));
  CHECK_OK(gdn_device_info_query(0, &g_dev));
  CUDA_OK(cudaStreamCreate(&g_stream));

  enum { NSHAPES = 5 };
  static const int shapes[NSHAPES][4] = {
      {16, 128, 32, 128}, /* Qwen3-Next TP1, D = 8192 */
      {1, 3, 1, 5},       /* D = 11: no vectors at all */
      {2, 64, 4, 64},     /* D = 512 */
      {3, 8, 2, 12},      /* D = 72: bf16 q/k 16-byte, v only 8-byte */
      {1, 136, 3, 40},    /* D = 392: q/k and k/v boundaries and D inside transpose tiles */
  };
  static const gdn_dtype dtypes[3] = {GDN_DTYPE_BF16, GDN_DTYPE_F16, GDN_DTYPE_F32};
  /* odd T; and T = 136, 256: 16-byte aligned channel rows, a partial and whole tiles */
  static const int64_t Ts[6] = {1, 63, 65, 136, 256, 8191};

  /* Every input layout x dtype x shape x T, contiguous outputs. */
  for (int di = 0; di < 3; ++di)
    for (int si = 0; si < NSHAPES; ++si)
      for (int ti = 0; ti < 6; ++ti)
        for (int in = 0; in < IN_KINDS; ++in) {
          /* the 8192-channel shape at T = 8191 only where it matters (time): bf16 token / channel */
          int64_t T = Ts[ti];
          if (si == 0 && T == 8191 && !(dtypes[di] == GDN_DTYPE_BF16 && (in == IN_TOKEN || in == IN_CHANNEL)))
            T = 1000;
          const int E = (int)gdn_dtype_size(dtypes[di]);
          int expect = 0;
          if ((si == 0 || si == 4) && (in == IN_TOKEN || in == IN_TOKEN_PAD || in == IN_CHANNEL ||
                                       in == IN_CHANNEL_PAD || in == IN_CHANNEL_PAD8))
            expect = 16;
          if (si == 1 || in == IN_GENERIC_ROW || in == IN_GENERIC_COL) expect = E;
          if (in == IN_TOKEN_ODD) expect = T > 1 ? (E == 2 ? 2 : 4) : 0;
          tcase c = mk(dtypes[di], shapes[si], T, in, OUT_CONTIG, 0, 0, expect);
          run_case(&c);
        }

  /* Padded and head-major outputs, misaligned input / outputs (narrower paths); the
   * transpose also at T = 136 (aligned rows unless the input is offset). */
  for (int di = 0; di < 3; ++di)
    for (int si = 0; si < NSHAPES; ++si)
      for (int out = 0; out < OUT_KINDS; ++out)
        for (int off = 0; off < 3; ++off) {
          const int ins[4] = {IN_TOKEN, IN_CHANNEL, IN_GENERIC_ROW, IN_CHANNEL};
          for (int ii = 0; ii < 4; ++ii) {
            const int in = ins[ii], E = (int)gdn_dtype_size(dtypes[di]);
            int expect = 0;
            if (off == 2) expect = E;                            /* outputs element-aligned only */
            if (off == 1 && in == IN_TOKEN) expect = E;          /* input element-aligned only */
            if (off == 1 && in == IN_CHANNEL && si == 0) expect = 16; /* the transpose aligns its reads */
            tcase c = mk(dtypes[di], shapes[si], ii == 3 ? 136 : 65, in, out, off == 1, off == 2, expect);
            run_case(&c);
          }
        }

  /* Outputs 2 elements past 16-byte alignment: the transpose's 4-byte (16-bit) and 8-byte
   * (fp32) stores, over aligned (channel, channel-pad8) and unaligned (channel-pad) rows. */
  for (int di = 0; di < 3; ++di)
    for (int si = 2; si < NSHAPES; si += 2)
      for (int in = IN_CHANNEL; in <= IN_CHANNEL_PAD8; ++in) {
        const int E = (int)gdn_dtype_size(dtypes[di]);
        tcase c = mk(dtypes[di], shapes[si], 136, in, OUT_CONTIG, 0, 2, 2 * E);
        run_case(&c);
      }

  /* Whole transpose tiles in both directions: 16 x 64 tiles (aligned rows) and 16 x 64 with
   * the last token tile one short (unaligned rows). */
  {
    tcase c = mk(GDN_DTYPE_BF16, shapes[0], 2048, IN_CHANNEL, OUT_CONTIG, 0, 0, 16);
    run_case(&c);
    c = mk(GDN_DTYPE_BF16, shapes[0], 2047, IN_CHANNEL, OUT_CONTIG, 0, 0, 16);
    run_case(&c);
  }

  /* Graph replay, update_node, T == 0. */
  for (int di = 0; di < 3; di += 2)
    for (int si = 0; si < 2; ++si) {
      graph_case(dtypes[di], shapes[si], IN_TOKEN, 63, 200);
      graph_case(dtypes[di], shapes[si], IN_CHANNEL, 65, 257);
      graph_case(dtypes[di], shapes[si], IN_GENERIC_ROW, 65, 3);
    }
  graph_case(GDN_DTYPE_F16, shapes[2], IN_CHANNEL_PAD, 1, 8191);
  /* update_node between the transpose's aligned-row and realigning kernels, both ways */
  graph_case(GDN_DTYPE_BF16, shapes[0], IN_CHANNEL, 512, 257);
  graph_case(GDN_DTYPE_F32, shapes[4], IN_CHANNEL, 256, 101);
  graph_case(GDN_DTYPE_BF16, shapes[4], IN_CHANNEL, 131, 136);
  graph_case(GDN_DTYPE_BF16, shapes[0], IN_TOKEN_PAD, 512, 8191);
  empty_case();

  CUDA_OK(cudaStreamDestroy(g_stream));
  return gdn_test_finish("test_qkv_split");
}
