/* chunk_delta_h at sizes where 32-bit index arithmetic breaks, against the CPU float64
 * reference (gdn_ref_chunk_delta_h):
 *
 * 1. 64-bit offsets: Hk = Hv = 16, K = V = 128, bf16, sequence 0 of 2^20 + 192 tokens
 *    (slot -1, zero inputs) followed by sequence 1 of 300 tokens (slot 0 of a 2-slot pool):
 *    T*Hv*K > 2^31, so sequence 1's rows of k/w/u/v_new start past element 2^31 and its h
 *    chunks past element 2^32 of h. About 26 GB of device memory; with less free the
 *    case prints "SKIP: needs N GB of device memory" and the test exits 77 (skipped for
 *    memory, after the other case ran).
 * 2. More than 65535 (sequence x value head) pairs: 4200 short sequences x Hv = 16, GVA 2,
 *    K = V = 64, every sequence its own slot of a 4200-slot pool (some slot -1).
 *
 * Tolerance: bf16 operands, fp32 accumulation, w S and v_new rounded to bf16 for the
 * tensor-core products (as in test_chunk_ops): rel L2 <= 1.5e-2. Outputs are poisoned
 * (NaN) before each launch, so anything not written fails the check. Because a few-token
 * sequence barely changes its state, case 2 also bounds the error of the state change
 * (final - initial) over the named slots, so a (sequence, head) pair that is skipped
 * cannot hide behind the unchanged bulk of the state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gpu_util.h"

#define BOUND_BF16 1.5e-2

static gdn_rng rng;

/* ---- helpers */

/* Running rel L2 error: sqrt(sum (a - b)^2) / sqrt(sum b^2); non-finite a poisons it. */
typedef struct {
  double num, den;
  size_t bad;
} rel_acc;

static void acc_add(rel_acc *acc, const double *a, const double *b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!isfinite(a[i])) {
      ++acc->bad;
      continue;
    }
    double d = a[i] - b[i];
    acc->num += d * d;
    acc->den += b[i] * b[i];
  }
}

static double acc_rel(const rel_acc *acc) {
  if (acc->bad) return NAN;
  return sqrt(acc->num) / (acc->den > 1e-300 ? sqrt(acc->den) : 1e-150);
}

/* Rel L2 of n device elements of dtype at dev against ref, downloaded in blocks (bounded
 * host memory); *nonfinite gets the count of NaN/Inf elements read back. */
static double dev_rel_l2(gdn_dtype dt, const void *dev, const double *ref, size_t n, size_t *nonfinite) {
  const size_t blk = (size_t)1 << 22;
  double *buf = gdn_dalloc(n < blk ? (n ? n : 1) : blk);
  rel_acc acc = {0, 0, 0};
  const size_t es = gdn_dtype_size(dt);
  for (size_t off = 0; off < n; off += blk) {
    size_t m = n - off < blk ? n - off : blk;
    gdn_download(dt, (const char *)dev + off * es, m, buf);
    acc_add(&acc, buf, ref + off, m);
  }
  free(buf);
  if (nonfinite) *nonfinite = acc.bad;
  return acc_rel(&acc);
}

static void check_dev_rel(const char *cname, const char *what, gdn_dtype dt, const void *dev, const double *ref,
                          size_t n, double bound) {
  size_t bad = 0;
  double e = dev_rel_l2(dt, dev, ref, n, &bad);
  CHECK(e <= bound, "[%s] %s: rel L2 error %.3e > %.1e (%zu of %zu elements NaN/Inf)", cname, what, e, bound, bad, n);
  if (getenv("GDN_TEST_VERBOSE")) printf("  [%s] %s: rel %.3e (bound %.1e)\n", cname, what, e, bound);
}

/* Packs n doubles as dtype and copies them to dev_base + elem_off elements (64-bit offset). */
static void upload_at(gdn_dtype dt, void *dev_base, size_t elem_off, const double *x, size_t n) {
  const size_t es = gdn_dtype_size(dt);
  void *host = gdn_xmalloc(n * es + 1);
  gdn_pack(dt, x, n, host);
  CUDA_OK(cudaMemcpy((char *)dev_base + elem_off * es, host, n * es, cudaMemcpyHostToDevice));
  free(host);
}

/* cudaMalloc that reports an out-of-memory failure instead of exiting (NULL, error cleared). */
static void *try_dmalloc(size_t bytes) {
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 16);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return NULL;
  }
  CUDA_OK(e);
  return p;
}

/* Batch tables built on the device by gdn_batch_setup; checks its header. */
typedef struct {
  gdn_batch batch;
  int32_t *d_cu, *d_slots;
  void *ws;
} dev_batch;

static void batch_make(const char *cname, dev_batch *b, int N, const int32_t *cu, const int32_t *slots, int num_slots,
                       int NT) {
  const int32_t T = cu[N];
  b->d_cu = (int32_t *)gdn_dmalloc(sizeof(int32_t) * ((size_t)N + 1));
  b->d_slots = (int32_t *)gdn_dmalloc(sizeof(int32_t) * (size_t)N);
  CUDA_OK(cudaMemcpy(b->d_cu, cu, sizeof(int32_t) * ((size_t)N + 1), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(b->d_slots, slots, sizeof(int32_t) * (size_t)N, cudaMemcpyHostToDevice));
  gdn_batch_setup_args sa;
  memset(&sa, 0, sizeof sa);
  sa.cu_seqlens = b->d_cu;
  sa.slots = b->d_slots;
  sa.num_seqs = N;
  sa.max_seqs = N;
  sa.max_tokens = T;
  sa.num_slots = num_slots;
  sa.workspace_bytes = gdn_batch_workspace_bytes(N, T, num_slots);
  sa.workspace = gdn_dmalloc(sa.workspace_bytes);
  b->ws = sa.workspace;
  CHECK_OK(gdn_batch_setup_view(&sa, &b->batch));
  CHECK_OK(gdn_batch_setup_launch(&sa, 0));
  gdn_batch_header hdr;
  CUDA_OK(cudaMemcpy(&hdr, b->batch.header, sizeof hdr, cudaMemcpyDeviceToHost));
  CHECK(hdr.status == 0 && hdr.num_seqs == N && hdr.num_tokens == T && hdr.num_chunks == NT,
        "[%s] batch header {status %d, N %d, T %d, NT %d}, expected {0, %d, %d, %d}", cname, hdr.status, hdr.num_seqs,
        hdr.num_tokens, hdr.num_chunks, N, T, NT);
}

static void batch_free(dev_batch *b) {
  cudaFree(b->d_cu);
  cudaFree(b->d_slots);
  cudaFree(b->ws);
  memset(b, 0, sizeof *b);
}

/* Launch configurations tried: {0,0,0} is the planned default; the rest are overrides. */
typedef struct {
  int bv, warps, stages;
} scan_cfg;

/* Plans with the override (if any); 0 when the device cannot build it. */
static int plan_config(const char *cname, const gdn_chunk_delta_h_args *da, const gdn_device_info *dev,
                       const scan_cfg *c, gdn_scan_config *out) {
  gdn_test_scan_env(c->bv, c->warps, c->stages, -1);
  gdn_status ps = gdn_chunk_delta_h_plan(da, dev, out);
  gdn_test_scan_env(0, 0, 0, -1);
  if (ps == GDN_ERROR_UNSUPPORTED) return 0;
  CHECK(ps == GDN_SUCCESS, "[%s] plan (BV %d, %d warps, %d stages): %s", cname, c->bv, c->warps, c->stages,
        gdn_get_last_error());
  return ps == GDN_SUCCESS;
}

/* Rows of [T, H, D] normalized to unit L2 norm (then rounded to bf16). */
static void fill_unit_rows(double *x, size_t rows, int D) {
  gdn_fill_normal(&rng, x, rows * (size_t)D, 1.0);
  gdn_ref_l2norm((int)rows, 1, D, x);
  gdn_round_to(GDN_DTYPE_BF16, x, rows * (size_t)D);
}

/* g_cum [T, Hv]: chunk-local cumsum of gates -U(0, 0.05), rounded to fp32. */
static void fill_gcum(const gdn_ref_shape *sh, double *g_cum) {
  const size_t n = (size_t)gdn_ref_num_tokens(sh) * sh->Hv;
  double *g = gdn_dalloc(n ? n : 1);
  gdn_fill_uniform(&rng, g, n, -0.05, 0.0);
  gdn_ref_chunk_cumsum(sh, 1, g, g_cum);
  gdn_round_to(GDN_DTYPE_F32, g_cum, n);
  free(g);
}

/* ---- case 1: 64-bit offsets. Returns 1 when skipped for memory. */
static int case_offsets64(const gdn_device_info *dev) {
  const char *cname = "64-bit offsets";
  enum { N = 2, Hk = 16, Hv = 16, K = 128, V = 128, NSLOT = 2 };
  const int32_t L0 = (1 << 20) + 64 * 3, L1 = 300;
  const int32_t T = L0 + L1;
  const int32_t cu[N + 1] = {0, L0, T};
  const int32_t slots[N] = {GDN_PAD_SLOT, 0};
  const int32_t max_chunks = gdn_batch_max_chunks(T, N);
  const int32_t NC0 = L0 / GDN_CHUNK, NC1 = (L1 + GDN_CHUNK - 1) / GDN_CHUNK, NT = NC0 + NC1;
  const size_t HKV = (size_t)Hv * K * V;           /* elements of one h chunk / one pool slot */
  const size_t rowk = (size_t)Hk * K, rowv = (size_t)Hv * V, roww = (size_t)Hv * K;
  const size_t nk = (size_t)T * rowk, nw = (size_t)T * roww, nv = (size_t)T * rowv, ng = (size_t)T * Hv;
  const size_t nh = (size_t)max_chunks * HKV;

  CHECK((uint64_t)T * Hv * K > ((uint64_t)1 << 31), "[%s] T*Hv*K = %llu does not exceed 2^31", cname,
        (unsigned long long)((uint64_t)T * Hv * K));
  CHECK((uint64_t)L0 * roww >= ((uint64_t)1 << 31) && (uint64_t)NC0 * HKV >= ((uint64_t)1 << 31),
        "[%s] sequence 1 does not start past element 2^31", cname);

  /* ---- memory: k, w, u, v_new [T, 16, 128] bf16, g_cum [T, 16] fp32, h bf16, pool */
  const size_t pool_bytes = 4 * HKV * sizeof(float); /* guard slot, 2 pool slots, guard slot */
  const size_t need = (nk + nw + nv + nv) * 2 + ng * 4 + nh * 2 + pool_bytes +
                      gdn_batch_workspace_bytes(N, T, NSLOT) + ((size_t)512 << 20);
  size_t free_b = 0, total_b = 0;
  CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
  printf("case %s: T = %d, T*Hv*K = %llu, h chunks %d (sequence 1 at chunk %d), needs %.1f GB, %.1f GB free\n", cname,
         T, (unsigned long long)((uint64_t)T * Hv * K), max_chunks, NC0, need / 1e9, free_b / 1e9);
  if (free_b < need) {
    printf("SKIP: needs %.1f GB of device memory (%.1f GB free of %.1f GB): case '%s' rejected/skipped for memory\n",
           need / 1e9, free_b / 1e9, total_b / 1e9, cname);
    return 1;
  }
  void *d_k = try_dmalloc(nk * 2), *d_w = try_dmalloc(nw * 2), *d_u = try_dmalloc(nv * 2),
       *d_vn = try_dmalloc(nv * 2), *d_h = try_dmalloc(nh * 2), *d_g = try_dmalloc(ng * 4),
       *d_pool_all = try_dmalloc(pool_bytes);
  if (!d_k || !d_w || !d_u || !d_vn || !d_h || !d_g || !d_pool_all) {
    cudaFree(d_k); cudaFree(d_w); cudaFree(d_u); cudaFree(d_vn); cudaFree(d_h); cudaFree(d_g); cudaFree(d_pool_all);
    printf("SKIP: needs %.1f GB of device memory (cudaMalloc failed): case '%s' rejected/skipped for memory\n",
           need / 1e9, cname);
    return 1;
  }

  /* ---- inputs: sequence 0 all zeros (k, w, u, g_cum; its state stays exactly 0),
   * sequence 1 fresh random data at rows L0.. */
  CUDA_OK(cudaMemset(d_k, 0, (size_t)L0 * rowk * 2));
  CUDA_OK(cudaMemset(d_w, 0, (size_t)L0 * roww * 2));
  CUDA_OK(cudaMemset(d_u, 0, (size_t)L0 * rowv * 2));
  CUDA_OK(cudaMemset(d_g, 0, (size_t)L0 * Hv * 4));
  const int32_t cu1[2] = {0, L1};
  const int32_t slots1[1] = {0};
  gdn_ref_shape sh1 = {1, cu1, Hk, Hv, K, V};
  const size_t n1k = (size_t)L1 * rowk, n1w = (size_t)L1 * roww, n1v = (size_t)L1 * rowv, n1g = (size_t)L1 * Hv;
  double *k1 = gdn_dalloc(n1k), *w1 = gdn_dalloc(n1w), *u1 = gdn_dalloc(n1v), *g1 = gdn_dalloc(n1g);
  fill_unit_rows(k1, (size_t)L1 * Hk, K);
  gdn_fill_normal(&rng, w1, n1w, 0.05);
  gdn_fill_normal(&rng, u1, n1v, 0.05);
  gdn_round_to(GDN_DTYPE_BF16, w1, n1w);
  gdn_round_to(GDN_DTYPE_BF16, u1, n1v);
  fill_gcum(&sh1, g1);
  upload_at(GDN_DTYPE_BF16, d_k, (size_t)L0 * rowk, k1, n1k);
  upload_at(GDN_DTYPE_BF16, d_w, (size_t)L0 * roww, w1, n1w);
  upload_at(GDN_DTYPE_BF16, d_u, (size_t)L0 * rowv, u1, n1v);
  upload_at(GDN_DTYPE_F32, d_g, (size_t)L0 * Hv, g1, n1g);

  /* pool: [guard | slot 0 | slot 1 | guard], all random; the operator sees slots 0..1 */
  double *pool_d = gdn_dalloc(4 * HKV);
  gdn_fill_normal(&rng, pool_d, 4 * HKV, 0.1);
  float *pool0_f = (float *)gdn_xmalloc(pool_bytes), *pool_got = (float *)gdn_xmalloc(pool_bytes);
  gdn_pack(GDN_DTYPE_F32, pool_d, 4 * HKV, pool0_f);
  float *d_pool = (float *)d_pool_all + HKV;

  /* ---- reference on sequence 1 alone (slot 0's initial state) */
  double *pool_ref = gdn_dalloc(HKV), *h_ref = gdn_dalloc((size_t)NC1 * HKV), *vn_ref = gdn_dalloc(n1v);
  for (size_t i = 0; i < HKV; ++i) pool_ref[i] = pool0_f[HKV + i];
  gdn_ref_chunk_delta_h(&sh1, Hk, k1, w1, u1, g1, NULL, pool_ref, slots1, h_ref, vn_ref);

  /* ---- batch */
  dev_batch db;
  batch_make(cname, &db, N, cu, slots, NSLOT, NT);
  int32_t co[N + 1];
  CUDA_OK(cudaMemcpy(co, db.batch.chunk_offsets, sizeof co, cudaMemcpyDeviceToHost));
  CHECK(co[0] == 0 && co[1] == NC0 && co[2] == NT, "[%s] chunk_offsets {%d, %d, %d}, expected {0, %d, %d}", cname,
        co[0], co[1], co[2], NC0, NT);

  gdn_chunk_delta_h_args da;
  memset(&da, 0, sizeof da);
  da.batch = db.batch;
  da.k = gdn_tensor_3d(d_k, GDN_DTYPE_BF16, T, Hk, K);
  da.w = gdn_tensor_3d(d_w, GDN_DTYPE_BF16, T, Hv, K);
  da.u = gdn_tensor_3d(d_u, GDN_DTYPE_BF16, T, Hv, V);
  da.g = gdn_tensor_2d(d_g, GDN_DTYPE_F32, T, Hv);
  da.state = gdn_tensor_4d(d_pool, GDN_DTYPE_F32, NSLOT, Hv, V, K);
  da.h = gdn_tensor_4d(d_h, GDN_DTYPE_BF16, max_chunks, Hv, K, V);
  da.v_new = gdn_tensor_3d(d_vn, GDN_DTYPE_BF16, T, Hv, V);
  CHECK_OK(gdn_chunk_delta_h_validate(&da));

  /* sequence 0's chunks around element 2^31 and 2^32 of h, and its last one */
  const int32_t zero_chunks[] = {8191, 8192, 16383, 16384, NC0 - 1};
  const int32_t zero_rows0 = (1 << 20) - 64; /* v_new rows [2^20 - 64, L0): across element 2^31 */
  double *tmp = gdn_dalloc(HKV > (size_t)(L0 - zero_rows0) * rowv ? HKV : (size_t)(L0 - zero_rows0) * rowv);

  static const scan_cfg configs[] = {{0, 0, 0}, {32, 4, 2}, {64, 8, 2}, {64, 4, 3}, {32, 2, 3}, {128, 8, 2}};
  for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ++ci) {
    gdn_scan_config scfg;
    if (!plan_config(cname, &da, dev, &configs[ci], &scfg)) continue;
    char what[128];
    printf("  [%s] BV %d, %d warps, %d stages\n", cname, scfg.bv, scfg.num_warps, scfg.num_stages);
    CUDA_OK(cudaMemcpy(d_pool_all, pool0_f, pool_bytes, cudaMemcpyHostToDevice));
    gdn_poison(d_h, nh * 2);
    gdn_poison(d_vn, nv * 2);
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    CUDA_OK(cudaEventRecord(e0, 0));
    CHECK_OK(gdn_chunk_delta_h_launch(&da, &scfg, 0));
    CUDA_OK(cudaEventRecord(e1, 0));
    CUDA_OK(cudaDeviceSynchronize());
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
    printf("  [%s] launch %.2f ms\n", cname, ms);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);

    /* sequence 1: h chunks at batch chunk_offsets[1].., v_new rows L0.., slot 0 */
    snprintf(what, sizeof what, "seq 1 h (chunks %d.., BV %d)", co[1], scfg.bv);
    check_dev_rel(cname, what, GDN_DTYPE_BF16, (const uint16_t *)d_h + (size_t)co[1] * HKV, h_ref,
                  (size_t)NC1 * HKV, BOUND_BF16);
    snprintf(what, sizeof what, "seq 1 v_new (rows %d.., BV %d)", L0, scfg.bv);
    check_dev_rel(cname, what, GDN_DTYPE_BF16, (const uint16_t *)d_vn + (size_t)L0 * rowv, vn_ref, n1v, BOUND_BF16);
    snprintf(what, sizeof what, "slot 0 final state (BV %d)", scfg.bv);
    check_dev_rel(cname, what, GDN_DTYPE_F32, d_pool, pool_ref, HKV, BOUND_BF16);

    /* slot 1 (unused) and the guards bit-identical: sequence 0 (slot -1) wrote no state */
    CUDA_OK(cudaMemcpy(pool_got, d_pool_all, pool_bytes, cudaMemcpyDeviceToHost));
    CHECK(memcmp(pool_got + 2 * HKV, pool0_f + 2 * HKV, HKV * 4) == 0,
          "[%s] unused slot 1 changed (a slot -1 write?) (BV %d)", cname, scfg.bv);
    CHECK(memcmp(pool_got, pool0_f, HKV * 4) == 0 && memcmp(pool_got + 3 * HKV, pool0_f + 3 * HKV, HKV * 4) == 0,
          "[%s] memory next to the pool changed (a write to slot -1 or 2?) (BV %d)", cname, scfg.bv);

    /* sequence 0: zero inputs and state give exact zeros; past 2^31 / 2^32 elements they
     * must have been written (poison gone) at the right place */
    for (size_t z = 0; z < sizeof zero_chunks / sizeof zero_chunks[0]; ++z) {
      gdn_download(GDN_DTYPE_BF16, (const uint16_t *)d_h + (size_t)zero_chunks[z] * HKV, HKV, tmp);
      size_t nz = 0;
      for (size_t i = 0; i < HKV; ++i) nz += !(tmp[i] == 0.0);
      CHECK(nz == 0, "[%s] seq 0 h chunk %d (element %llu): %zu of %zu elements not 0 (BV %d)", cname,
            zero_chunks[z], (unsigned long long)((size_t)zero_chunks[z] * HKV), nz, HKV, scfg.bv);
    }
    {
      const size_t n0 = (size_t)(L0 - zero_rows0) * rowv;
      gdn_download(GDN_DTYPE_BF16, (const uint16_t *)d_vn + (size_t)zero_rows0 * rowv, n0, tmp);
      size_t nz = 0;
      for (size_t i = 0; i < n0; ++i) nz += !(tmp[i] == 0.0);
      CHECK(nz == 0, "[%s] seq 0 v_new rows %d..%d: %zu of %zu elements not 0 (BV %d)", cname, zero_rows0, L0 - 1, nz,
            n0, scfg.bv);
    }
  }
  CUDA_OK(cudaDeviceSynchronize());

  batch_free(&db);
  void *dev_bufs[] = {d_k, d_w, d_u, d_vn, d_h, d_g, d_pool_all};
  for (size_t i = 0; i < sizeof dev_bufs / sizeof dev_bufs[0]; ++i) cudaFree(dev_bufs[i]);
  free(pool0_f);
  free(pool_got);
  double *host_bufs[] = {k1, w1, u1, g1, pool_d, pool_ref, h_ref, vn_ref, tmp};
  for (size_t i = 0; i < sizeof host_bufs / sizeof host_bufs[0]; ++i) free(host_bufs[i]);
  return 0;
}

/* ---- case 2: more than 65535 (sequence x head) pairs */
static void case_many_pairs(const gdn_device_info *dev) {
  const char *cname = "4200 seqs x 16 heads";
  enum { N = 4200, Hk = 8, Hv = 16, K = 64, V = 64, NSLOT = 4200, LONG_SEQ = 4150 };
  static const int zero_len[] = {17, 2048, 4095, 4096, 4190};
  int32_t *cu = (int32_t *)gdn_xmalloc(sizeof(int32_t) * (N + 1)), *slots = (int32_t *)gdn_xmalloc(sizeof(int32_t) * N);
  int32_t *perm = (int32_t *)gdn_xmalloc(sizeof(int32_t) * NSLOT);
  for (int i = 0; i < NSLOT; ++i) perm[i] = i;
  for (int i = NSLOT - 1; i > 0; --i) {
    int j = (int)(gdn_rng_next(&rng) % (uint64_t)(i + 1));
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  cu[0] = 0;
  int nzero = 0, npad = 0;
  for (int n = 0; n < N; ++n) {
    int len = 1 + (int)(gdn_rng_next(&rng) % 3);
    for (size_t z = 0; z < sizeof zero_len / sizeof zero_len[0]; ++z)
      if (zero_len[z] == n) len = 0;
    if (n == LONG_SEQ) len = 130;
    nzero += len == 0;
    cu[n + 1] = cu[n] + len;
    /* ~1 in 12 without state; the last few (pairs near N*Hv) always with one */
    slots[n] = (n < N - 8 && gdn_rng_next(&rng) % 12 == 0) ? GDN_PAD_SLOT : perm[n];
    npad += slots[n] == GDN_PAD_SLOT;
  }
  const int32_t T = cu[N];
  gdn_ref_shape sh = {N, cu, Hk, Hv, K, V};
  const int NT = gdn_ref_num_chunks(&sh);
  const int32_t max_chunks = gdn_batch_max_chunks(T, N);
  const size_t HKV = (size_t)Hv * K * V;
  const size_t nk = (size_t)T * Hk * K, nw = (size_t)T * Hv * K, nv = (size_t)T * Hv * V, ng = (size_t)T * Hv;
  const size_t npool = (size_t)NSLOT * HKV, nhout = (size_t)NT * HKV, nhcap = (size_t)max_chunks * HKV;
  printf("case %s: N*Hv = %d pairs, T = %d, NT = %d, %d empty sequences, %d with slot -1\n", cname, N * Hv, T, NT,
         nzero, npad);
  CHECK((int64_t)N * Hv > 65535, "[%s] N*Hv = %d does not exceed 65535", cname, N * Hv);

  double *k = gdn_dalloc(nk), *w = gdn_dalloc(nw), *u = gdn_dalloc(nv), *g_cum = gdn_dalloc(ng);
  fill_unit_rows(k, (size_t)T * Hk, K);
  gdn_fill_normal(&rng, w, nw, 0.05);
  gdn_fill_normal(&rng, u, nv, 0.05);
  gdn_round_to(GDN_DTYPE_BF16, w, nw);
  gdn_round_to(GDN_DTYPE_BF16, u, nv);
  fill_gcum(&sh, g_cum);

  /* pool: random initial states (fp32, uniform with std ~0.1: 275M normals would cost
   * ~20 s of host time); the reference runs in place on a double copy */
  double *pool_ref = gdn_dalloc(npool);
  gdn_fill_uniform(&rng, pool_ref, npool, -0.17, 0.17);
  float *pool0_f = (float *)gdn_xmalloc(npool * 4), *pool_got = (float *)gdn_xmalloc(npool * 4);
  gdn_pack(GDN_DTYPE_F32, pool_ref, npool, pool0_f);
  for (size_t i = 0; i < npool; ++i) pool_ref[i] = pool0_f[i];
  double *h_ref = gdn_dalloc(nhout), *vn_ref = gdn_dalloc(nv);
  gdn_ref_chunk_delta_h(&sh, Hk, k, w, u, g_cum, NULL, pool_ref, slots, h_ref, vn_ref);
  char *used = (char *)calloc(NSLOT, 1);
  for (int n = 0; n < N; ++n)
    if (slots[n] >= 0) used[slots[n]] = 1;

  void *d_k = gdn_upload(GDN_DTYPE_BF16, k, nk), *d_w = gdn_upload(GDN_DTYPE_BF16, w, nw),
       *d_u = gdn_upload(GDN_DTYPE_BF16, u, nv), *d_g = gdn_upload(GDN_DTYPE_F32, g_cum, ng);
  float *d_pool = (float *)gdn_dmalloc(npool * 4);
  void *d_h = gdn_dmalloc(nhcap * 2), *d_vn = gdn_dmalloc(nv * 2);

  dev_batch db;
  batch_make(cname, &db, N, cu, slots, NSLOT, NT);
  gdn_chunk_delta_h_args da;
  memset(&da, 0, sizeof da);
  da.batch = db.batch;
  da.k = gdn_tensor_3d(d_k, GDN_DTYPE_BF16, T, Hk, K);
  da.w = gdn_tensor_3d(d_w, GDN_DTYPE_BF16, T, Hv, K);
  da.u = gdn_tensor_3d(d_u, GDN_DTYPE_BF16, T, Hv, V);
  da.g = gdn_tensor_2d(d_g, GDN_DTYPE_F32, T, Hv);
  da.state = gdn_tensor_4d(d_pool, GDN_DTYPE_F32, NSLOT, Hv, V, K);
  da.h = gdn_tensor_4d(d_h, GDN_DTYPE_BF16, max_chunks, Hv, K, V);
  da.v_new = gdn_tensor_3d(d_vn, GDN_DTYPE_BF16, T, Hv, V);

  static const scan_cfg configs[] = {{0, 0, 0}, {32, 8, 2}};
  for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ++ci) {
    gdn_scan_config scfg;
    if (!plan_config(cname, &da, dev, &configs[ci], &scfg)) continue;
    char what[128];
    printf("  [%s] BV %d, %d warps, %d stages (grid %lld CTAs)\n", cname, scfg.bv, scfg.num_warps, scfg.num_stages,
           (long long)N * Hv * (V / scfg.bv));
    CUDA_OK(cudaMemcpy(d_pool, pool0_f, npool * 4, cudaMemcpyHostToDevice));
    gdn_poison(d_h, nhcap * 2);
    gdn_poison(d_vn, nv * 2);
    CHECK_OK(gdn_chunk_delta_h_launch(&da, &scfg, 0));
    CUDA_OK(cudaDeviceSynchronize());

    snprintf(what, sizeof what, "h (BV %d)", scfg.bv);
    check_dev_rel(cname, what, GDN_DTYPE_BF16, d_h, h_ref, nhout, BOUND_BF16);
    snprintf(what, sizeof what, "v_new (BV %d)", scfg.bv);
    check_dev_rel(cname, what, GDN_DTYPE_BF16, d_vn, vn_ref, nv, BOUND_BF16);

    /* the whole pool; the named slots' state change; unnamed slots bit-identical */
    CUDA_OK(cudaMemcpy(pool_got, d_pool, npool * 4, cudaMemcpyDeviceToHost));
    double num = 0, den = 0, dden = 0;
    size_t bad = 0;
    int changed = 0, first_changed = -1;
    for (int s = 0; s < NSLOT; ++s) {
      const size_t off = (size_t)s * HKV;
      if (!used[s]) {
        if (memcmp(pool_got + off, pool0_f + off, HKV * 4) != 0) {
          if (!changed) first_changed = s;
          ++changed;
        }
        for (size_t i = 0; i < HKV; ++i) den += pool_ref[off + i] * pool_ref[off + i];
        continue;
      }
      for (size_t i = 0; i < HKV; ++i) {
        const double got = pool_got[off + i], want = pool_ref[off + i], init = pool0_f[off + i];
        if (!isfinite(got)) {
          ++bad;
          continue;
        }
        num += (got - want) * (got - want);
        den += want * want;
        dden += (want - init) * (want - init);
      }
    }
    const double e_pool = bad ? NAN : sqrt(num) / sqrt(den > 1e-300 ? den : 1e-300);
    const double e_delta = bad ? NAN : sqrt(num) / sqrt(dden > 1e-300 ? dden : 1e-300);
    CHECK(e_pool <= BOUND_BF16, "[%s] final pool: rel L2 error %.3e > %.1e (%zu NaN/Inf) (BV %d)", cname, e_pool,
          BOUND_BF16, bad, scfg.bv);
    CHECK(e_delta <= BOUND_BF16, "[%s] named slots' state change: rel L2 error %.3e > %.1e (BV %d)", cname, e_delta,
          BOUND_BF16, scfg.bv);
    CHECK(changed == 0, "[%s] %d unnamed slots changed (first %d) (BV %d)", cname, changed, first_changed, scfg.bv);
    if (getenv("GDN_TEST_VERBOSE"))
      printf("  [%s] pool rel %.3e, state change rel %.3e (BV %d)\n", cname, e_pool, e_delta, scfg.bv);
  }
  CUDA_OK(cudaDeviceSynchronize());

  batch_free(&db);
  void *dev_bufs[] = {d_k, d_w, d_u, d_g, d_pool, d_h, d_vn};
  for (size_t i = 0; i < sizeof dev_bufs / sizeof dev_bufs[0]; ++i) cudaFree(dev_bufs[i]);
  free(cu);
  free(slots);
  free(perm);
  free(used);
  free(pool0_f);
  free(pool_got);
  double *host_bufs[] = {k, w, u, g_cum, pool_ref, h_ref, vn_ref};
  for (size_t i = 0; i < sizeof host_bufs / sizeof host_bufs[0]; ++i) free(host_bufs[i]);
}

int main(void) {
  gdn_gpu_test_init("test_chunk_large", 1);
  if (gdn_test_small()) {
    printf("test_chunk_large: SKIP (GDN_TEST_SMALL: these cases exist to be large)\n");
    return GDN_SKIP_CODE;
  }
  gdn_rng_seed(&rng, gdn_test_seed("test_chunk_large"));
  gdn_device_info dev;
  CHECK_OK(gdn_device_info_query(0, &dev));
  case_many_pairs(&dev);
  const int skipped = case_offsets64(&dev);
  const int rc = gdn_test_finish("test_chunk_large");
  if (skipped && rc == 0) {
    printf("test_chunk_large: SKIP (64-bit offset case rejected/skipped for memory)\n");
    return GDN_SKIP_CODE;
  }
  return rc;
}
