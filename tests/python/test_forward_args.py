"""The gdn_forward descriptors the torch op builds from FLA-layout tensors (host only, CPU
tensors): flattened [T, H, D] views, the state layouts by strides, the generated
cu_seqlens of B > 1 batches, gates by mode, slot pointers."""
import ctypes as C

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from gdngraph import _lib  # noqa: E402
from gdngraph import _structs as S  # noqa: E402
from gdngraph._forward import build_args  # noqa: E402

B, T, Hk, Hv, K, V, N = 1, 96, 2, 4, 64, 32, 3


def desc(t):
    return tuple(t.sizes[:t.rank]), tuple(t.strides[:t.rank])


def make(batch=B, tokens=T, n=N, state_v_first=False, raw=False, g_dtype=torch.float32, cu_dtype=torch.int32):
    q = torch.zeros(batch, tokens, Hk, K, dtype=torch.bfloat16)
    v = torch.zeros(batch, tokens, Hv, V, dtype=torch.bfloat16)
    o = torch.empty(batch, tokens, Hv, V, dtype=torch.bfloat16)
    gate = torch.zeros(batch, tokens, Hv, dtype=g_dtype)
    h0 = torch.zeros(n, Hv, V, K) if state_v_first else torch.zeros(n, Hv, K, V)
    cu = torch.zeros(n + 1, dtype=cu_dtype) if batch == 1 else None
    gates = dict(g=None, beta=None, a=gate, b=gate.clone(), A_log=torch.zeros(Hv), dt_bias=torch.zeros(Hv)) if raw \
        else dict(g=gate, beta=gate.clone(), a=None, b=None, A_log=None, dt_bias=None)
    out = build_args(q, q.clone(), v, o, cu_seqlens=cu, state_in=h0, state_out=h0, slots=None, scale=0.5, l2norm=True,
                     gate_raw=raw, use_g=True, state_v_first=state_v_first, **gates)
    return (q, v, o, h0) + out


def test_varlen_fla_layout():
    q, v, o, h0, shape, args, keep, tokens, seqs = make()
    assert (tokens, seqs) == (T, N)
    assert desc(args.q) == ((T, Hk, K), (Hk * K, K, 1)) and args.q.data == q.data_ptr()
    assert desc(args.v) == ((T, Hv, V), (Hv * V, V, 1)) and args.o.data == o.data_ptr()
    # FLA's [N, Hv, K, V] is the library's [N, Hv, V, K] with the last two strides swapped
    assert desc(args.state_in) == ((N, Hv, V, K), (Hv * K * V, K * V, 1, V))
    assert args.state_in.data == h0.data_ptr() and desc(args.state_out) == desc(args.state_in)
    assert desc(args.g) == ((T, Hv), (Hv, 1)) and args.g.dtype == S.DTYPE_F32 and args.beta.data
    assert not args.a.data and not args.b.data and not args.A_log.data and not args.slots_in
    assert args.cu_seqlens.dtype == S.DTYPE_I32 and desc(args.cu_seqlens) == ((N + 1,), (1,))
    assert (shape.Hk, shape.Hv, shape.K, shape.V, shape.dtype) == (Hk, Hv, K, V, S.DTYPE_BF16)
    assert (shape.use_g, shape.l2norm_qk, shape.scale, shape.gate) == (1, 1, 0.5, S.GATE_PRECOMPUTED)
    for name, _ in S.ForwardArgs._fields_:
        t = getattr(args, name)
        if isinstance(t, S.Tensor) and t.data:
            assert _lib.fn.tensor_check(C.byref(t), name.encode()) == S.SUCCESS, _lib.last_error()


def test_pool_layout_raw_gates_and_int64():
    *_, shape, args, keep, tokens, seqs = make(state_v_first=True, raw=True, cu_dtype=torch.int64)
    assert desc(args.state_in) == ((N, Hv, V, K), (Hv * V * K, V * K, K, 1))
    assert shape.gate == S.GATE_RAW and args.a.data and args.b.data and args.A_log.data and args.dt_bias.data
    assert not args.g.data and not args.beta.data
    assert args.cu_seqlens.dtype == S.DTYPE_I64


def test_batched_generates_cu_seqlens_and_converts_g():
    *_, shape, args, keep, tokens, seqs = make(batch=3, tokens=50, g_dtype=torch.bfloat16)
    assert (tokens, seqs) == (150, 3)
    views, _ = keep
    assert views["cu_seqlens"].tolist() == [0, 50, 100, 150] and args.cu_seqlens.dtype == S.DTYPE_I32
    assert args.g.dtype == S.DTYPE_F32 and desc(args.q) == ((150, Hk, K), (Hk * K, K, 1))


def test_non_viewable_batch_is_copied_inner_contiguous():
    q = torch.zeros(T, 2, Hk, K, dtype=torch.bfloat16).transpose(0, 1)  # [2, T, Hk, K], not flattenable
    v = torch.zeros(2, T, Hv, V, dtype=torch.bfloat16)
    g = torch.zeros(2, T, Hv)
    _, args, keep, _, _ = build_args(q, q, v, torch.empty_like(v), g, g, None, None, None, None, None, None, None, None,
                                     0.0, False, False, True, False)
    assert desc(args.q) == ((2 * T, Hk, K), (Hk * K, K, 1)) and args.q.data != q.data_ptr()


def test_rejects_fp32_qkv():
    q = torch.zeros(1, 8, Hk, K)
    with pytest.raises(TypeError, match="bf16 or fp16"):
        build_args(q, q, q, q, None, q, None, None, None, None, None, None, None, None, 0.0, False, False, False, False)
