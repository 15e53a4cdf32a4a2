/* gdn-prefill: command line, usage, and the batch it describes. */
#include <stdlib.h>
#include <string.h>
#include "core/params.h"
#include "tools/prefill_tool.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: gdn-prefill [options]\n"
          "Runs the GDN prefill graph (gdn_prefill_plan) on random inputs, times the replay and checks\n"
          "sequence 0's first and last value heads against the float64 CPU reference. Exit status:\n"
          "0 pass, 1 check failed or error, 2 bad options. Without a GPU it runs the CPU reference\n"
          "(recurrent vs chunked form) on the same options, on 2 x 256 tokens unless --seqs / --len say.\n"
          "\n"
          "batch\n"
          "  --seqs S        sequences (default 8); sequence i uses state-pool slot i\n"
          "  --len L         tokens per sequence (default 8192)\n"
          "  --tokens N      N tokens in all instead, spread over the sequences\n"
          "  --buckets LIST  capacity buckets TOKENS:SEQS,... (default 512:1,2048:4,8192:8,65536:64;\n"
          "                  one that holds the batch is added when none does)\n"
          "shape (Qwen3-Next by default)\n"
          "  --hk H          key heads of the whole layer (default 16)\n"
          "  --hv H          value heads of the whole layer (default 32; a multiple of --hk)\n"
          "  --k K           key head dim: 64, 128 or 256 (default 128)\n"
          "  --v V           value head dim: a multiple of 32 (default 128)\n"
          "  --tp R          tensor-parallel ranks: one rank has Hk/R key and Hv/R value heads (default 1)\n"
          "  --dtype T       bf16 or fp16 for q, k, v, a, b, o (default bf16)\n"
          "  --gate G        g (scalar gate, default), gk (per-key gate), g+gk, or none\n"
          "  --no-l2norm     no q/k l2 normalization (default: on)\n"
          "run\n"
          "  --reps R        timed replays (default 20)\n"
          "  --device D      CUDA device (default 0)\n"
          "  --seed X        input seed (default 1)\n"
          "  --no-check      skip the reference check\n"
          "  -h, --help      this text\n"
          "\n"
          "environment (read when the plan is built)\n");
  for (int p = 0; p < GDN_NUM_PARAMS; ++p) {
    const gdn_param_desc *d = gdn_param_info((gdn_param)p);
    fprintf(f, "  %-26s %s (default %d)\n", d->name, d->doc, d->default_value);
  }
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
  char *end = NULL;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || *end || v < lo || v > hi) {
    fprintf(stderr, "gdn-prefill: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s ? s : "");
    return 0;
  }
  *out = (int)v;
  return 1;
}

static int parse_buckets(const char *s, tool_opts *o) {
  o->num_buckets = 0;
  while (s && *s) {
    char *end = NULL;
    long t = strtol(s, &end, 10), n = 0;
    if (end == s || *end != ':') break;
    s = end + 1;
    n = strtol(s, &end, 10);
    if (end == s || t < 1 || t > (1 << 30) || n < 1 || n > (1 << 20) || o->num_buckets == TOOL_MAX_BUCKETS) break;
    o->buckets[o->num_buckets++] = (gdn_prefill_bucket){(int32_t)t, (int32_t)n};
    s = *end == ',' ? end + 1 : end;
    if (*end == '\0') return 1;
  }
  fprintf(stderr, "gdn-prefill: --buckets expects up to %d TOKENS:SEQS pairs, e.g. 512:1,8192:8\n", TOOL_MAX_BUCKETS);
  return 0;
}

static int check_opts(const tool_opts *o) {
  const char *bad = NULL;
  if (o->len_given && o->tokens >= 0) bad = "give --len or --tokens, not both";
  else if (o->Hv % o->Hk != 0) bad = "--hv must be a multiple of --hk";
  else if (o->Hk % o->tp != 0 || o->Hv % o->tp != 0) bad = "--tp must divide --hk and --hv";
  else if (o->K != 64 && o->K != 128 && o->K != 256) bad = "--k must be 64, 128 or 256";
  else if (o->V % 32 != 0) bad = "--v must be a multiple of 32";
  if (bad) fprintf(stderr, "gdn-prefill: %s (see --help)\n", bad);
  return bad == NULL;
}

int tool_parse(int argc, char **argv, tool_opts *o) {
  static const gdn_prefill_bucket def[4] = {{512, 1}, {2048, 4}, {8192, 8}, {65536, 64}};
  memset(o, 0, sizeof *o);
  o->seqs = 8, o->len = 8192, o->tokens = -1;
  o->Hk = 16, o->Hv = 32, o->K = 128, o->V = 128, o->tp = 1;
  o->dtype = GDN_DTYPE_BF16, o->use_g = 1, o->l2norm = 1;
  o->reps = 20, o->check = 1, o->seed = 1;
  memcpy(o->buckets, def, sizeof def);
  o->num_buckets = 4;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1, seed = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 1;
    } else if (!strcmp(a, "--no-l2norm")) {
      o->l2norm = 0;
      continue;
    } else if (!strcmp(a, "--no-check")) {
      o->check = 0;
      continue;
    }
    ++i; /* every other option takes a value */
    if (!strcmp(a, "--seqs")) ok = parse_int(a, v, 1, 1 << 20, &o->seqs), o->seqs_given = 1;
    else if (!strcmp(a, "--len")) ok = parse_int(a, v, 0, 1 << 30, &o->len), o->len_given = 1;
    else if (!strcmp(a, "--tokens")) ok = parse_int(a, v, 0, 1 << 30, &o->tokens);
    else if (!strcmp(a, "--buckets")) ok = parse_buckets(v, o);
    else if (!strcmp(a, "--hk")) ok = parse_int(a, v, 1, 1024, &o->Hk);
    else if (!strcmp(a, "--hv")) ok = parse_int(a, v, 1, 1024, &o->Hv);
    else if (!strcmp(a, "--k")) ok = parse_int(a, v, 1, 4096, &o->K);
    else if (!strcmp(a, "--v")) ok = parse_int(a, v, 1, 4096, &o->V);
    else if (!strcmp(a, "--tp")) ok = parse_int(a, v, 1, 1024, &o->tp);
    else if (!strcmp(a, "--reps")) ok = parse_int(a, v, 1, 100000, &o->reps);
    else if (!strcmp(a, "--device")) ok = parse_int(a, v, 0, 1024, &o->device);
    else if (!strcmp(a, "--seed")) ok = parse_int(a, v, 0, 0x7fffffff, &seed), o->seed = (uint64_t)seed;
    else if (!strcmp(a, "--dtype") && v && (!strcmp(v, "bf16") || !strcmp(v, "fp16")))
      o->dtype = !strcmp(v, "bf16") ? GDN_DTYPE_BF16 : GDN_DTYPE_F16;
    else if (!strcmp(a, "--gate") && v && (!strcmp(v, "g") || !strcmp(v, "gk") || !strcmp(v, "g+gk") || !strcmp(v, "none")))
      o->use_g = !strcmp(v, "g") || !strcmp(v, "g+gk"), o->use_gk = !strcmp(v, "gk") || !strcmp(v, "g+gk");
    else {
      fprintf(stderr, "gdn-prefill: unknown option or value '%s%s%s' (see --help)\n", a, v ? " " : "", v ? v : "");
      return 2;
    }
    if (!ok) return 2;
  }
  return check_opts(o) ? 0 : 2;
}

int tool_rank_hk(const tool_opts *o) { return o->Hk / o->tp; }
int tool_rank_hv(const tool_opts *o) { return o->Hv / o->tp; }

void tool_batch_make(const tool_opts *o, int seqs, int len, tool_batch *b) {
  b->num_seqs = seqs;
  b->cu = (int32_t *)tool_alloc(sizeof(int32_t) * (size_t)(seqs + 1));
  b->slots = (int32_t *)tool_alloc(sizeof(int32_t) * (size_t)seqs);
  for (int i = 0; i < seqs; ++i) {
    const int64_t n = o->tokens >= 0 ? o->tokens / seqs + (i < o->tokens % seqs) : len;
    if ((int64_t)b->cu[i] + n > (1 << 30)) tool_die("the batch has more than 2^30 tokens", NULL);
    b->cu[i + 1] = b->cu[i] + (int32_t)n;
    b->slots[i] = i;
  }
  b->num_tokens = b->cu[seqs];
}

void tool_batch_free(tool_batch *b) {
  free(b->cu);
  free(b->slots);
}
