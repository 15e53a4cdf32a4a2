"""PrefillGraph (the bucketed prefill plan) on the GPU against the float64 recurrence:
outputs, in-place pool states, bucket choice, device-side batch rejection."""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

import gdngraph  # noqa: E402
from conftest import needs_cuda  # noqa: E402
from reference import assert_same, gates_from_raw, random_batch, recurrence, rel_l2  # noqa: E402

pytestmark = needs_cuda


Hk, Hv, K, V = 2, 8, 128, 128


@pytest.fixture(scope="module")
def graph():
    pg = gdngraph.PrefillGraph(Hk, Hv, K, V, buckets=[(1024, 4), (4096, 16)], num_slots=16)
    yield pg
    torch.cuda.synchronize()
    pg.close()


def _load(pg, b, slots):
    T = b["cu_list"][-1]
    for name in ("q", "k", "v", "a", "b"):
        getattr(pg, name)[:T].copy_(b[name][0].reshape(getattr(pg, name)[:T].shape))
    pg.A_log.copy_(b["A_log"])
    pg.dt_bias.copy_(b["dt_bias"])
    for i, s in enumerate(slots):
        if s >= 0:
            pg.state[s].copy_(b["h0"][i].transpose(-1, -2))  # pool rows are [Hv, V, K]


@pytest.mark.parametrize("lengths", [[1, 63, 64, 65, 300], [2000, 7, 0, 900, 1, 64, 128, 130]])
def test_matches_reference(graph, lengths):
    b = random_batch(lengths, Hk, Hv, K, V, "cuda", seed=len(lengths), raw=True)
    slots = list(range(len(lengths)))[::-1]
    slots[1] = -1  # zero initial state, no write-back
    _load(graph, b, slots)
    before = graph.state.clone()
    graph.run(b["cu_list"], slots)
    torch.cuda.synchronize()
    graph.check_error()
    h0 = b["h0"].clone()
    h0[1] = 0
    T = b["cu_list"][-1]
    g, beta = gates_from_raw(graph.a[:T], graph.b[:T], graph.A_log, graph.dt_bias)  # the buffers' bf16 values
    o_ref, s_ref = recurrence(b["q"][0], b["k"][0], b["v"][0], g, beta, b["cu_list"], h0, l2norm=True)
    assert rel_l2(graph.o[:T], o_ref) < 2e-2
    for i, s in enumerate(slots):
        if s >= 0:
            assert rel_l2(graph.state[s].transpose(-1, -2), s_ref[i]) < 2e-2, f"sequence {i}"
    for s in set(range(graph.state.shape[0])) - set(slots):
        assert torch.equal(graph.state[s], before[s]), f"slot {s} is not used by the batch"


def test_bucket_choice_and_invalid_batch(graph):
    assert graph.pick_bucket(1000, 4) == 0 and graph.pick_bucket(1025, 4) == 1 and graph.pick_bucket(5000, 1) == -1
    with pytest.raises(gdngraph.GdnError):
        graph.run([0, 5000])  # larger than every bucket: refused on the host
    graph.run([0, 10, 20], slots=[3, 3])  # a slot named twice: refused on the device
    torch.cuda.synchronize()
    with pytest.raises(gdngraph.GdnError) as e:
        graph.check_error()
    assert e.value.status == 7
    graph.check_error()  # cleared


def test_run_device_matches_host_run(graph):
    b = random_batch([100, 200], Hk, Hv, K, V, "cuda", seed=5, raw=True)
    _load(graph, b, [-1, -1])
    graph.run(b["cu_list"])
    torch.cuda.synchronize()
    o_host = graph.o[:300].clone()
    graph.run_device(b["cu"], None, num_tokens=300)
    torch.cuda.synchronize()
    graph.check_error()
    assert_same(graph.o[:300], o_host, "o")


def test_output_norm_matches_reference():
    """output_norm: o = RMSNormGated(the core's o, z), against the float64 recurrence and
    norm. On an H200 the plan puts the 4-sequence bucket's norm (64 pairs) after the scan and
    the 16-sequence bucket's (256 pairs) in the scan's epilogue; elsewhere both after it."""
    Hk2, Hv2, eps = 4, 16, 1e-5
    pg = gdngraph.PrefillGraph(Hk2, Hv2, K, V, buckets=[(1024, 4), (4096, 16)], num_slots=4, output_norm=True,
                               norm_eps=eps)
    try:
        gen = torch.Generator().manual_seed(11)
        pg.norm_weight.copy_(0.5 + torch.rand(V, generator=gen))
        batches = ([300, 64, 1], [1000, 900, 700, 500, 300, 200, 100, 65, 64, 63, 2, 1, 0, 128, 1])
        for seed, lengths in enumerate(batches):
            b = random_batch(lengths, Hk2, Hv2, K, V, "cuda", seed=seed, raw=True)
            T = b["cu_list"][-1]
            for name in ("q", "k", "v", "a", "b"):
                getattr(pg, name)[:T].copy_(b[name][0].reshape(getattr(pg, name)[:T].shape))
            pg.A_log.copy_(b["A_log"])
            pg.dt_bias.copy_(b["dt_bias"])
            z = (2 * torch.randn(T, Hv2, V, generator=gen)).to(torch.bfloat16).cuda()
            pg.norm_z[:T].copy_(z)
            pg.run(b["cu_list"])
            torch.cuda.synchronize()
            pg.check_error()
            g, beta = gates_from_raw(pg.a[:T], pg.b[:T], pg.A_log, pg.dt_bias)
            o_ref, _ = recurrence(b["q"][0], b["k"][0], b["v"][0], g, beta, b["cu_list"], None, l2norm=True)
            x, zd = o_ref.to(torch.bfloat16).double(), z.double()  # the norm reads the 16-bit o
            ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * pg.norm_weight.double() * zd * torch.sigmoid(zd)
            assert rel_l2(pg.o[:T], ref) < 2e-2, f"batch {seed}"
            cap = 1024 if T <= 1024 else 4096
            assert torch.count_nonzero(pg.o[T:cap]) == 0, f"batch {seed}: rows past the batch"
    finally:
        torch.cuda.synchronize()
        pg.close()
