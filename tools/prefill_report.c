/* gdn-prefill: progress of long steps and the closing summary table. */
#include <string.h>
#include <unistd.h>
#include "bench_util.h"
#include "tools/prefill_tool.h"

/* Silent for steps shorter than a second; then a terminal gets one line updated in place
 * (at most twice a second) and a log one line per quarter. */
void tool_progress(const char *what, double done, double total) {
  static const char *cur = NULL;
  static double t0 = 0, last = 0;
  static int quarter = 0, shown = 0;
  const double now = gdn_bench_now_us();
  if (what != cur) {
    cur = what, t0 = now, last = 0, quarter = 0, shown = 0;
  }
  const double frac = total > 0 ? done / total : 1.0;
  if (now - t0 < 1e6 && !shown) return;
  const int tty = isatty(2);
  if (frac >= 1.0) {
    fprintf(stderr, "%s%s: 100%% (%.1f s)\n", tty ? "\r" : "", what, (now - t0) * 1e-6);
    cur = NULL;
    return;
  }
  if (tty ? now - last >= 5e5 : (int)(frac * 4) > quarter) {
    fprintf(stderr, tty ? "\r%s: %3.0f%%" : "%s: %3.0f%%\n", what, 100.0 * frac);
    last = now, quarter = (int)(frac * 4), shown = 1;
  }
}

static const char *gate_name(const tool_opts *o) {
  return o->use_g && o->use_gk ? "g+gk" : o->use_g ? "g" : o->use_gk ? "gk" : "none";
}

void tool_summary(const tool_opts *o, const tool_batch *b, const tool_result *r, int failed) {
  const int T = b->num_tokens, S = b->num_seqs;
  printf("\n== summary\n");
  printf("  %-12s %s\n", "device", r->device);
  printf("  %-12s %d sequences, %d tokens", "batch", S, T);
  if (r->bucket >= 0) printf(" (bucket %d: %d tokens x %d seqs)", r->bucket, r->cap.max_tokens, r->cap.max_seqs);
  printf("\n  %-12s Hk %d  Hv %d  K %d  V %d  %s  gate %s  %s  TP %d (per rank)\n", "shape", tool_rank_hk(o),
         tool_rank_hv(o), o->K, o->V, gdn_dtype_name(o->dtype), gate_name(o), o->l2norm ? "l2norm" : "no l2norm", o->tp);
  if (r->inputs_s >= 0) printf("  %-12s %.1f s to generate and upload\n", "inputs", r->inputs_s);
  if (r->plan_ms >= 0) printf("  %-12s %.1f ms to build and instantiate the graphs\n", "plan", r->plan_ms);
  if (r->gpu_us >= 0)
    printf("  %-12s GPU %.1f us (median of %d)   %.2f ns/token   %.2f Mtokens/s\n", "replay", r->gpu_us, o->reps,
           T > 0 ? r->gpu_us * 1e3 / T : 0.0, T > 0 ? T / r->gpu_us : 0.0);
  if (r->host_us >= 0) printf("  %-12s host %.2f us per replay (median of %d)\n", "", r->host_us, o->reps);
  if (r->ref_s >= 0) printf("  %-12s %.1f s\n", "reference", r->ref_s);
  for (int i = 0; i < r->num_checks; ++i) {
    const tool_check *c = &r->checks[i];
    char what[64];
    if (c->seq < 0) snprintf(what, sizeof what, "chunked vs recurrent, all heads");
    else snprintf(what, sizeof what, "seq %d head %d vs reference", c->seq, c->head);
    printf("  %-12s %s: o rel L2 %.3e, state %.3e (bound %.0e)  %s\n", i == 0 ? "check" : "", what, c->err_o,
           c->err_state, c->bound, c->ok ? "PASS" : "FAIL");
  }
  if (r->num_checks == 0) printf("  %-12s not run\n", "check");
  printf("  %-12s %s\n", "result", failed ? "FAIL" : "PASS");
  printf("%s\n", failed ? "FAIL" : "PASS");
}
