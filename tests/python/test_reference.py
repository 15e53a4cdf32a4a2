"""The tests' float64 recurrence (reference.py) against the library's CPU float64 oracle
gdn_ref_prefill (include/gdn/reference.h): same gating, l2norm, GVA head mapping, scale,
state layout and varlen handling. CPU only."""
import ctypes as C

import pytest

from conftest import check_layout

torch = pytest.importorskip("torch", reason="torch is not installed")

from gdngraph import _lib  # noqa: E402
from reference import gates_from_raw, random_batch, recurrence, rel_l2  # noqa: E402

_dp = C.POINTER(C.c_double)


class RefShape(C.Structure):
    _fields_ = [("num_seqs", C.c_int), ("cu_seqlens", C.POINTER(C.c_int32)), ("Hk", C.c_int), ("Hv", C.c_int),
                ("K", C.c_int), ("V", C.c_int)]


class RefPrefillInputs(C.Structure):
    _fields_ = [(n, _dp) for n in ("q", "k", "v", "a", "b", "A_log", "dt_bias", "gk")] + \
        [("use_g", C.c_int), ("l2norm_qk", C.c_int), ("scale", C.c_double)]


def test_mirrors(probe):
    check_layout(probe, "gdn_ref_shape", RefShape)
    check_layout(probe, "gdn_ref_prefill_inputs", RefPrefillInputs)


def _ptr(t, ctype=_dp):
    return C.cast(t.data_ptr(), ctype)


@pytest.mark.parametrize("Hk,Hv,K,V", [(2, 4, 16, 8), (1, 3, 8, 8)])
def test_recurrence_matches_library_reference(Hk, Hv, K, V):
    lengths = [5, 0, 17, 9]
    b = random_batch(lengths, Hk, Hv, K, V, "cpu", seed=11, raw=True, dtype=torch.float64)
    n, T = len(lengths), sum(lengths)
    cu = torch.tensor(b["cu_list"], dtype=torch.int32)
    slots = torch.tensor([2, -1, 0, 4], dtype=torch.int32)
    pool = torch.randn(5, Hv, V, K, dtype=torch.float64) * 0.3  # the library's [slots, Hv, V, K]
    h0 = torch.stack([pool[s].transpose(-1, -2) if s >= 0 else torch.zeros(Hv, K, V, dtype=torch.float64)
                      for s in slots.tolist()])
    x = {name: b[name][0].double().contiguous() for name in ("q", "k", "v", "a", "b")}
    A_log, dt_bias = b["A_log"].double(), b["dt_bias"].double()
    o_lib = torch.zeros(T, Hv, V, dtype=torch.float64)
    shape = RefShape(n, _ptr(cu, C.POINTER(C.c_int32)), Hk, Hv, K, V)
    inputs = RefPrefillInputs(q=_ptr(x["q"]), k=_ptr(x["k"]), v=_ptr(x["v"]), a=_ptr(x["a"]), b=_ptr(x["b"]),
                              A_log=_ptr(A_log), dt_bias=_ptr(dt_bias), use_g=1, l2norm_qk=1, scale=0.3)
    state = pool.clone()
    _lib.lib.gdn_ref_prefill(C.byref(shape), C.byref(inputs), _ptr(state), _ptr(slots, C.POINTER(C.c_int32)),
                             _ptr(o_lib))
    g, beta = gates_from_raw(x["a"], x["b"], A_log, dt_bias)
    o, final = recurrence(x["q"], x["k"], x["v"], g, beta, b["cu_list"], h0, scale=0.3, l2norm=True)
    assert rel_l2(o, o_lib) < 1e-12
    for i, s in enumerate(slots.tolist()):
        if s >= 0:
            assert rel_l2(final[i], state[s].transpose(-1, -2)) < 1e-12
    assert torch.equal(state[1], pool[1]) and torch.equal(state[3], pool[3])
