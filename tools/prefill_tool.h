/* gdn-prefill's steps (tools/): options and batch, inputs, GPU run, reference check, CPU
 * fallback, report. */
#ifndef GDN_TOOLS_PREFILL_TOOL_H
#define GDN_TOOLS_PREFILL_TOOL_H

#include <stdint.h>
#include <stdio.h>
#include "gdn/prefill.h"

#define TOOL_MAX_BUCKETS 16
#define TOOL_MAX_CHECKS 2
#define TOOL_GPU_BOUND 2e-2 /* rel L2 of o and of the final state vs the float64 reference */
#define TOOL_CPU_BOUND 1e-9 /* chunked vs recurrent reference, both float64 */

typedef struct tool_opts {
  int seqs, len, tokens;     /* tokens >= 0: spread over the sequences instead of len each */
  int seqs_given, len_given; /* the CPU fallback keeps a small batch unless told otherwise */
  int Hk, Hv, K, V, tp;      /* Hk, Hv: the whole layer's heads; a rank has Hk / tp, Hv / tp */
  gdn_dtype dtype;
  int use_g, use_gk, l2norm;
  gdn_prefill_bucket buckets[TOOL_MAX_BUCKETS];
  int num_buckets;
  int reps, device, check;
  uint64_t seed;
} tool_opts;

/* The batch: cu_seqlens[num_seqs + 1] and slots[num_seqs] (sequence i -> pool slot i). */
typedef struct tool_batch {
  int num_seqs, num_tokens;
  int32_t *cu, *slots;
} tool_batch;

/* One checked (sequence, value head): rel L2 of o and of the final state. */
typedef struct tool_check {
  int seq, head;
  double err_o, err_state, bound;
  int ok;
} tool_check;

/* What the summary table prints (a time < 0 was not measured). */
typedef struct tool_result {
  char device[320];
  int bucket;
  gdn_prefill_bucket cap;
  double inputs_s, plan_ms, gpu_us, host_us, ref_s;
  int num_checks;
  tool_check checks[TOOL_MAX_CHECKS];
} tool_result;

/* Prints the message and exits 1. */
void tool_die(const char *what, const char *detail);
#define TOOL_CU(expr)                                                \
  do {                                                               \
    cudaError_t tool_e_ = (expr);                                    \
    if (tool_e_ != cudaSuccess) tool_die(#expr, cudaGetErrorString(tool_e_)); \
  } while (0)
#define TOOL_GDN(expr)                                               \
  do {                                                               \
    gdn_status tool_s_ = (expr);                                     \
    if (tool_s_ != GDN_SUCCESS) tool_die(#expr, gdn_get_last_error()); \
  } while (0)
void *tool_alloc(size_t bytes); /* calloc or exit */

/* 0: parsed; 1: --help printed (exit 0); 2: bad options, message printed (exit 2). */
int tool_parse(int argc, char **argv, tool_opts *o);
int tool_rank_hk(const tool_opts *o); /* heads of one tensor-parallel rank */
int tool_rank_hv(const tool_opts *o);
/* The batch of the options: `seqs` sequences of `len` tokens, or o->tokens spread. */
void tool_batch_make(const tool_opts *o, int seqs, int len, tool_batch *b);
void tool_batch_free(tool_batch *b);

/* Counter-based inputs: element i of tensor `id` is the same wherever it is generated, so
 * the check regenerates a sample without keeping the (GB-sized) inputs on the host. */
enum { TOOL_ID_Q = 1, TOOL_ID_K, TOOL_ID_V, TOOL_ID_A, TOOL_ID_B, TOOL_ID_STATE, TOOL_ID_GK };
/* Element i of input `id` as stored: rounded to o->dtype (the state pool: fp32). Index
 * order is the tensor's: q, k [T, Hk, K], v [T, Hv, V], a, b [T, Hv], gk [T, Hv, K],
 * state [slots, Hv, V, K]. */
double tool_input(const tool_opts *o, int id, uint64_t i);
/* Gate parameters of the rank's value heads, rounded to fp32. */
void tool_gate_params(const tool_opts *o, double *A_log, double *dt_bias);

/* Device buffers of the GPU run, at the largest bucket's token capacity. */
typedef struct tool_gpu_bufs {
  void *q, *k, *v, *o, *a, *b, *gk;
  float *A_log, *dt_bias, *state;
  int T_cap;
} tool_gpu_bufs;
/* Fills the first `tokens` rows of every input (the rest zero) and the state pool. */
void tool_upload_inputs(const tool_opts *o, const tool_gpu_bufs *d, int tokens, int slots);
void tool_upload_state(const tool_opts *o, const tool_gpu_bufs *d, int slots);

/* The GPU run: plan, timed replays, check. Returns 0 when the check passed (or was off). */
int tool_run_gpu(const tool_opts *o, const tool_batch *b, tool_result *r);
/* Runs one replay from the initial pool and compares sequence 0's first and last value
 * heads with gdn_ref_prefill; fills r->checks. Returns the number that failed. */
int tool_check_gpu(const tool_opts *o, const tool_batch *b, const tool_gpu_bufs *d, gdn_prefill_plan *plan,
                   cudaStream_t stream, tool_result *r);
/* ||a - b|| / ||b|| over n values; NaN when a holds a non-finite value. */
double tool_rel_l2(const double *a, const double *b, size_t n);
/* Without a GPU: the reference's recurrent and chunked forms on the batch must agree. */
int tool_run_cpu(const tool_opts *o, const tool_batch *b, tool_result *r);

/* Progress of a long step on stderr: one updated line on a terminal, else a line per quarter. */
void tool_progress(const char *what, double done, double total);
void tool_summary(const tool_opts *o, const tool_batch *b, const tool_result *r, int failed);

#endif
