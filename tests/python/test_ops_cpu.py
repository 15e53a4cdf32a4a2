"""The torch ops without a GPU: registration and schemas, fake-tensor shapes, torch.compile
tracing (fullgraph) through the fake implementations, argument errors, and the C
validation reached with torch tensors."""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

import gdngraph  # noqa: E402
from gdngraph import _qkv_split  # noqa: E402

B, T, Hk, Hv, K, V = 1, 200, 2, 4, 64, 32


def _inputs(dev="cuda", batch=B, tokens=T, n=3):
    q = torch.empty(batch, tokens, Hk, K, dtype=torch.bfloat16, device=dev)
    k = torch.empty_like(q)
    v = torch.empty(batch, tokens, Hv, V, dtype=torch.bfloat16, device=dev)
    g = torch.empty(batch, tokens, Hv, dtype=torch.float32, device=dev)
    beta = torch.empty_like(g)
    h0 = torch.empty(n, Hv, K, V, dtype=torch.float32, device=dev)
    cu = torch.empty(n + 1, dtype=torch.int32, device=dev)
    return q, k, v, g, beta, h0, cu


def test_ops_registered_with_mutation_declared():
    ops = torch.ops.gdngraph
    for name in ("chunk_gated_delta_rule", "chunk_gated_delta_rule_pool", "qkv_split"):
        assert hasattr(ops, name)
    pool = ops.chunk_gated_delta_rule_pool.default._schema
    mutated = [a.name for a in pool.arguments if a.alias_info is not None and a.alias_info.is_write]
    assert mutated == ["state_pool"]
    functional = ops.chunk_gated_delta_rule.default._schema
    assert not any(a.alias_info is not None for a in functional.arguments)


def test_fake_shapes_varlen():
    with FakeTensorMode():
        q, k, v, g, beta, h0, cu = _inputs()
        o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                                cu_seqlens=cu, use_qk_l2norm_in_kernel=True)
        assert o.shape == (B, T, Hv, V) and o.dtype == torch.bfloat16 and o.device.type == "cuda"
        assert ht.shape == (3, Hv, K, V) and ht.dtype == torch.float32
        o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu, initial_state=h0.transpose(-1, -2),
                                                output_final_state=True, state_v_first=True)
        assert ht.shape == (3, Hv, V, K)
        o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu)
        assert ht is None


def test_fake_shapes_batched_pool_raw_and_split():
    with FakeTensorMode():
        q, k, v, g, beta, _, _ = _inputs(batch=2, tokens=64)
        pool = torch.empty(10, Hv, K, V, device="cuda")
        idx = torch.empty(2, dtype=torch.int32, device="cuda")
        o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=pool, state_indices=idx)
        assert o.shape == (2, 64, Hv, V) and ht is None
        A_log, dt_bias = torch.empty(Hv, device="cuda"), torch.empty(Hv, device="cuda")
        o, ht = gdngraph.chunk_gated_delta_rule_raw(q, k, v, g, beta, A_log, dt_bias, output_final_state=True)
        assert o.shape == (2, 64, Hv, V) and ht.shape == (2, Hv, K, V)
        mixed = torch.empty(T, 2 * Hk * K + Hv * V, dtype=torch.bfloat16, device="cuda")
        qs, ks, vs = gdngraph.qkv_split(mixed, Hk, K, Hv, V)
        assert qs.shape == (T, Hk, K) and ks.shape == (T, Hk, K) and vs.shape == (T, Hv, V)
        assert vs.is_contiguous()


def test_compile_fullgraph_traces_ops():
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)

        def run(*args):  # the fake implementations: the kernels need a GPU
            with FakeTensorMode(allow_non_fake_inputs=True):
                return gm(*args)
        return run

    def f(q, k, v, g, beta, h0, cu, mixed):
        o, ht = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                                cu_seqlens=cu, use_qk_l2norm_in_kernel=True)
        return o, ht, gdngraph.qkv_split(mixed, Hk, K, Hv, V)

    mixed = torch.zeros(T, 2 * Hk * K + Hv * V, dtype=torch.bfloat16)
    torch.compile(f, fullgraph=True, backend=backend)(*_inputs("cpu"), mixed)
    code = graphs[0].code
    assert "gdngraph.chunk_gated_delta_rule" in code and "gdngraph.qkv_split" in code


def test_argument_errors():
    q, k, v, g, beta, h0, cu = _inputs("cpu")
    with pytest.raises(ValueError, match="batch size is expected to be 1"):
        gdngraph.chunk_gated_delta_rule(q.expand(2, -1, -1, -1), k, v, g, beta, cu_seqlens=cu)
    with pytest.raises(ValueError, match="number of initial states"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0[:2], cu_seqlens=cu)
    with pytest.raises(ValueError, match="in place"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, cu_seqlens=cu, output_final_state=True,
                                        state_indices=torch.zeros(3, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"\[B, T, HV\]"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g[:, :10], beta, cu_seqlens=cu)
    with pytest.raises(NotImplementedError, match="allow_neg_eigval"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, allow_neg_eigval=True)
    with pytest.raises(TypeError, match="unexpected"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, not_an_argument=1)
    with pytest.raises(ValueError, match="CUDA tensors"):
        gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu)
    with pytest.raises(ValueError, match="CUDA tensors"):
        gdngraph.qkv_split(torch.zeros(4, 2 * Hk * K + Hv * V, dtype=torch.bfloat16), Hk, K, Hv, V)


def test_qkv_split_validation_message_from_c():
    mixed = torch.zeros(8, 2 * Hk * K + Hv * V, dtype=torch.bfloat16)
    q, k, v = torch.zeros(8, Hk, K, dtype=torch.bfloat16), torch.zeros(8, Hk, K, dtype=torch.bfloat16), \
        torch.zeros(8, Hv, V, dtype=torch.bfloat16)
    _qkv_split.validate(mixed, q, k, v)
    with pytest.raises(gdngraph.GdnError, match="v: size") as e:
        _qkv_split.validate(mixed, q, k, torch.zeros(7, Hv, V, dtype=torch.bfloat16))
    assert e.value.status == 1
    with pytest.raises(gdngraph.GdnError, match="must match"):
        _qkv_split.validate(mixed, q.float(), k, v)


def test_capacity_buckets():
    assert gdngraph.capacity(1, 1) == (64, 1)
    assert gdngraph.capacity(65, 3) == (128, 4)
    assert gdngraph.capacity(8192, 8) == (8192, 8)
    assert gdngraph.capacity(8193, 9) == (16384, 16)


@pytest.mark.parametrize("layout,expected", [("token", b"token-major"), ("padded", b"token-major"),
                                             ("channel", b"channel-major")])
def test_qkv_split_plan_sees_layout_from_torch_strides(layout, expected):
    import ctypes as C
    from gdngraph import _lib, _structs as S
    from gdngraph._convert import gdn_tensor
    D, n = 2 * Hk * K + Hv * V, 40
    mixed = {"token": torch.zeros(n, D), "padded": torch.zeros(n, D + 8)[:, :D],
             "channel": torch.zeros(D, n).t()}[layout].to(torch.bfloat16)
    outs = gdngraph._qkv_split._outputs(mixed, Hk, K, Hv, V)
    args = S.QkvSplitArgs(gdn_tensor(mixed), *(gdn_tensor(t) for t in outs))
    cfg, dev = S.QkvSplitConfig(), _lib.fn.device_info_hopper()
    _lib.check(_lib.fn.qkv_split_plan(C.byref(args), C.byref(dev), C.byref(cfg)), "gdn_qkv_split_plan")
    assert _lib.fn.qkv_split_layout_name(cfg.layout) == expected
    assert (cfg.D, cfg.Hk, cfg.K, cfg.Hv, cfg.V) == (D, Hk, K, Hv, V)
