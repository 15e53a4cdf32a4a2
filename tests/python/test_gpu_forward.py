"""gdngraph.chunk_gated_delta_rule (gdn_forward) on the GPU: against the float64
recurrence (FLA and pool state layouts, in-place pools, raw gates, B > 1), CUDA-graph
capture with new data and new batches, torch.compile, opcheck, and error reporting."""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

import gdngraph  # noqa: E402
from conftest import needs_cuda, needs_forward  # noqa: E402
from reference import assert_same, gates_from_raw, random_batch, recurrence, rel_l2  # noqa: E402

pytestmark = needs_cuda


Hk, Hv, K, V = 2, 8, 128, 128
LENGTHS = [1, 63, 64, 65, 300, 0, 129]


@pytest.fixture(autouse=True)
def _forward():
    needs_forward()
    yield
    torch.cuda.synchronize()
    gdngraph.check_errors()  # no test leaves a rejected batch behind unless it checks it


def _call(b, **kw):
    return gdngraph.chunk_gated_delta_rule(b["q"], b["k"], b["v"], b["g"], b["beta"], cu_seqlens=b["cu"],
                                           use_qk_l2norm_in_kernel=True, **kw)


def _ref(b, h0=None, g=None, beta=None):
    return recurrence(b["q"][0], b["k"][0], b["v"][0], b["g"][0] if g is None else g, b["beta"][0] if beta is None
                      else beta, b["cu_list"], h0, l2norm=True)


@pytest.mark.parametrize("state_v_first", [False, True])
def test_varlen_gva_matches_reference(state_v_first):
    b = random_batch(LENGTHS, Hk, Hv, K, V, "cuda", seed=1)
    h0 = b["h0"].transpose(-1, -2).contiguous() if state_v_first else b["h0"]
    o, ht = _call(b, initial_state=h0, output_final_state=True, state_v_first=state_v_first)
    o_ref, ht_ref = _ref(b, b["h0"])
    assert o.shape == (1, sum(LENGTHS), Hv, V) and o.dtype == torch.bfloat16
    assert rel_l2(o[0], o_ref) < 2e-2
    assert rel_l2(ht.transpose(-1, -2) if state_v_first else ht, ht_ref) < 2e-2


@pytest.mark.parametrize("state_v_first", [False, True])
def test_pool_in_place(state_v_first):
    b = random_batch(LENGTHS, Hk, Hv, K, V, "cuda", seed=2)
    n, P = len(LENGTHS), 12
    idx = [9, -1, 2, 7, 0, 11, 4]
    pool = torch.randn(P, Hv, K, V, device="cuda") * 0.1
    h0 = torch.stack([pool[i] if i >= 0 else torch.zeros_like(pool[0]) for i in idx])
    before = pool.clone()
    view = pool.transpose(-1, -2).contiguous() if state_v_first else pool
    o, ht = _call(b, initial_state=view, state_indices=torch.tensor(idx, dtype=torch.int32, device="cuda"),
                  state_v_first=state_v_first)
    assert ht is None
    after = view.transpose(-1, -2) if state_v_first else view
    o_ref, ht_ref = _ref(b, h0)
    assert rel_l2(o[0], o_ref) < 2e-2
    for i, row in enumerate(idx):
        if row >= 0:
            assert rel_l2(after[row], ht_ref[i]) < 2e-2, f"sequence {i} -> row {row}"
    for row in set(range(P)) - set(idx):
        assert torch.equal(after[row], before[row]), f"row {row} is not in the batch"
    assert n == len(idx)


def test_raw_gates_and_fla_fused_gate_flag():
    b = random_batch(LENGTHS, Hk, Hv, K, V, "cuda", seed=3, raw=True)
    o, ht = gdngraph.chunk_gated_delta_rule_raw(b["q"], b["k"], b["v"], b["a"], b["b"], b["A_log"], b["dt_bias"],
                                                initial_state=b["h0"], output_final_state=True, cu_seqlens=b["cu"],
                                                use_qk_l2norm_in_kernel=True)
    g, beta = gates_from_raw(b["a"][0], b["b"][0], b["A_log"], b["dt_bias"])
    o_ref, ht_ref = _ref(b, b["h0"], g, beta)
    assert rel_l2(o[0], o_ref) < 2e-2 and rel_l2(ht, ht_ref) < 2e-2
    o2, ht2 = gdngraph.chunk_gated_delta_rule(b["q"], b["k"], b["v"], b["a"], b["b"], initial_state=b["h0"],
                                              output_final_state=True, cu_seqlens=b["cu"], use_qk_l2norm_in_kernel=True,
                                              use_gate_in_kernel=True, use_beta_sigmoid_in_kernel=True,
                                              A_log=b["A_log"], dt_bias=b["dt_bias"])
    assert_same(o, o2, "o")
    assert_same(ht, ht2, "final state")


def test_batched_equals_varlen_and_int64_cu_seqlens():
    Bn, T = 3, 100
    b = random_batch([T] * Bn, Hk, Hv, K, V, "cuda", seed=4)
    o_var, ht_var = _call(b, initial_state=b["h0"], output_final_state=True)
    o_64, ht_64 = gdngraph.chunk_gated_delta_rule(b["q"], b["k"], b["v"], b["g"], b["beta"], cu_seqlens=b["cu"].long(),
                                                  initial_state=b["h0"], output_final_state=True,
                                                  use_qk_l2norm_in_kernel=True)
    shaped = {n: b[n].reshape(Bn, T, *b[n].shape[2:]) for n in ("q", "k", "v", "g", "beta")}
    o_b, ht_b = gdngraph.chunk_gated_delta_rule(**shaped, initial_state=b["h0"], output_final_state=True,
                                                use_qk_l2norm_in_kernel=True)
    assert o_b.shape == (Bn, T, Hv, V)
    assert_same(o_b.reshape(o_var.shape), o_var, "o batched")
    assert_same(ht_b, ht_var, "final state batched")
    assert_same(o_64, o_var, "o int64 cu_seqlens")
    assert_same(ht_64, ht_var, "final state int64 cu_seqlens")


def test_cuda_graph_replays_new_data_and_batches():
    T, n = 1024, 5
    gen = torch.Generator().manual_seed(6)
    static = random_batch([T // n] * (n - 1) + [T - (n - 1) * (T // n)], Hk, Hv, K, V, "cuda", seed=6)
    pool = torch.randn(8, Hv, K, V, device="cuda") * 0.1
    idx = torch.tensor([3, 0, -1, 6, 5], dtype=torch.int32, device="cuda")

    def step():
        o, ht = _call(static, initial_state=static["h0"], output_final_state=True)
        o2, _ = _call(static, initial_state=pool, state_indices=idx)
        return o, ht, o2

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: makes the plan
        step()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    pool_start = pool.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = step()
    torch.cuda.synchronize()
    pool.copy_(pool_start)  # capture launched nothing, but start from a known pool anyway
    for trial in range(3):
        lengths = [int(x) for x in torch.randint(0, T // n + 1, (n,), generator=gen)]  # sum <= T
        fresh = random_batch(lengths, Hk, Hv, K, V, "cuda", seed=100 + trial)
        total = sum(lengths)
        for name in ("q", "k", "v", "g", "beta"):
            static[name].zero_()
            static[name][:, :total].copy_(fresh[name])
        static["h0"].copy_(fresh["h0"])
        static["cu"].copy_(fresh["cu"])  # new batch, same shapes: cu_seqlens[N] <= T
        pool_before = pool.clone()
        graph.replay()
        torch.cuda.synchronize()
        replayed = [t.clone() for t in outs]
        pool_replayed = pool.clone()
        pool.copy_(pool_before)
        eager = step()
        torch.cuda.synchronize()
        for got, want, what in zip(replayed, eager, ("o", "final state", "o (pool)")):
            assert_same(got, want, f"batch {trial}: {what}")
        assert_same(pool_replayed, pool, f"batch {trial}: pool")
        assert torch.count_nonzero(replayed[0][0, total:]) == 0  # rows past cu_seqlens[N] zeroed


def test_capture_without_warmup_makes_plan():
    b = random_batch([70, 30], Hk, Hv, K, V, "cuda", seed=7)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # scale 0.25: a shape no other test planned
        o, ht = _call(b, initial_state=b["h0"], output_final_state=True, scale=0.25)
    graph.replay()
    torch.cuda.synchronize()
    o2, ht2 = _call(b, initial_state=b["h0"], output_final_state=True, scale=0.25)
    assert_same(o, o2, "o")
    assert_same(ht, ht2, "final state")


def test_torch_compile_fullgraph():
    class Layer(torch.nn.Module):
        def forward(self, q, k, v, g, beta, h0, cu, pool, idx):
            o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                                    cu_seqlens=cu, use_qk_l2norm_in_kernel=True)
            o2, _ = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=pool, state_indices=idx,
                                                    cu_seqlens=cu, use_qk_l2norm_in_kernel=True)
            return o * 2 + o2, ht

    b = random_batch(LENGTHS, Hk, Hv, K, V, "cuda", seed=8)
    pool = torch.randn(10, Hv, K, V, device="cuda") * 0.1
    idx = torch.tensor([1, 2, 3, -1, 5, 6, 7], dtype=torch.int32, device="cuda")
    args = [b[n] for n in ("q", "k", "v", "g", "beta", "h0", "cu")]
    pool_e = pool.clone()
    want = Layer()(*args, pool_e, idx)
    got = torch.compile(Layer(), fullgraph=True)(*args, pool, idx)
    for x, y in zip(got, want):
        assert_same(x, y, "compiled vs eager")
    assert_same(pool, pool_e, "pool")


def test_opcheck():
    b = random_batch([40, 90], Hk, Hv, K, V, "cuda", seed=9)
    common = (b["q"], b["k"], b["v"], b["g"], b["beta"], None, None, None, None)
    torch.library.opcheck(torch.ops.gdngraph.chunk_gated_delta_rule.default,
                          common + (b["h0"], b["cu"], 0.0, True, False, True, False, True))
    pool = torch.randn(4, Hv, K, V, device="cuda") * 0.1
    idx = torch.tensor([2, 0], dtype=torch.int32, device="cuda")
    torch.library.opcheck(torch.ops.gdngraph.chunk_gated_delta_rule_pool.default,
                          common + (pool, idx, b["cu"], 0.0, True, False, True, False))


def test_errors_carry_library_messages():
    b = random_batch([40, 90], Hk, Hv, K, V, "cuda", seed=10)
    with pytest.raises(gdngraph.GdnError, match="k") as e:
        gdngraph.chunk_gated_delta_rule(b["q"], b["k"][..., :64], b["v"], b["g"], b["beta"], cu_seqlens=b["cu"])
    assert e.value.status in (1, 2)
    bad = torch.tensor([0, 90, 40], dtype=torch.int32, device="cuda")  # not monotonic: rejected on the device
    gdngraph.chunk_gated_delta_rule(b["q"], b["k"], b["v"], b["g"], b["beta"], cu_seqlens=bad)
    torch.cuda.synchronize()
    with pytest.raises(gdngraph.GdnError) as e:
        gdngraph.check_errors()
    assert e.value.status == 7
