/* gdn-prefill: the GDN prefill graph (gdn_prefill_plan) on random inputs of a chosen shape
 * and batch: builds the plan, times the replay (GPU and host time), checks a sample against
 * the float64 CPU reference, prints a summary table and exits non-zero when the check
 * fails. Without a GPU it runs the CPU reference's recurrent and chunked forms instead.
 * `gdn-prefill --help` lists the options; the steps live in tools/prefill_*.c. */
#include <string.h>
#include "gdn/device.h"
#include "tools/prefill_tool.h"

int main(int argc, char **argv) {
  tool_opts o;
  const int parsed = tool_parse(argc, argv, &o);
  if (parsed != 0) return parsed == 1 ? 0 : 2;

  tool_result r;
  memset(&r, 0, sizeof r);
  r.bucket = -1;
  r.inputs_s = r.plan_ms = r.gpu_us = r.host_us = r.ref_s = -1;
  const char *no_gpu = gdn_device_unavailable_reason();
  const int seqs = no_gpu && !o.seqs_given ? 2 : o.seqs, len = no_gpu && !o.len_given ? 256 : o.len;
  tool_batch b;
  tool_batch_make(&o, seqs, len, &b);
  printf("gdn-prefill: %d sequences, %d tokens; Hk %d Hv %d K %d V %d per rank (TP %d), %s, seed %llu\n", b.num_seqs,
         b.num_tokens, tool_rank_hk(&o), tool_rank_hv(&o), o.K, o.V, o.tp, gdn_dtype_name(o.dtype),
         (unsigned long long)o.seed);

  int failed;
  if (no_gpu) {
    printf("%s: running the CPU reference instead (recurrent vs chunked form)\n", no_gpu);
    snprintf(r.device, sizeof r.device, "none (%s): CPU reference", no_gpu);
    failed = tool_run_cpu(&o, &b, &r);
  } else {
    failed = tool_run_gpu(&o, &b, &r);
  }
  tool_summary(&o, &b, &r, failed);
  tool_batch_free(&b);
  return failed ? 1 : 0;
}
