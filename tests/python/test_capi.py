"""The ctypes layer without torch or a GPU: status strings, last-error messages and the C
validation functions (host code) reached through the mirrors."""
import ctypes as C

import pytest

import gdngraph
from gdngraph import _lib
from gdngraph import _structs as S


def tensor(ptr, dtype, *sizes, strides=None):
    t = S.Tensor(data=ptr, dtype=dtype, rank=len(sizes))
    if strides is None:  # row-major
        strides, acc = [], 1
        for n in reversed(sizes):
            strides.insert(0, acc)
            acc *= n
    for i, (n, s) in enumerate(zip(sizes, strides)):
        t.sizes[i], t.strides[i] = n, s
    return t


def test_status_strings():
    assert _lib.status_string(S.SUCCESS)
    assert _lib.status_string(S.ERROR_INVALID_ARGUMENT) != _lib.status_string(S.ERROR_INVALID_BATCH)


def test_check_raises_with_library_message():
    bad = tensor(None, S.DTYPE_BF16, 4, 8)  # no data but elements
    status = _lib.fn.tensor_check(C.byref(bad), b"x")
    with pytest.raises(gdngraph.GdnError) as e:
        _lib.check(status, "gdn_tensor_check")
    assert e.value.status == S.ERROR_INVALID_ARGUMENT
    assert "x" in str(e.value) and _lib.status_string(status) in str(e.value)


def _split_args(Hk=2, K=64, Hv=4, V=64, T=16, k_heads=None):
    D = 2 * Hk * K + Hv * V
    base = 1 << 20  # validation reads only pointers, never memory
    return S.QkvSplitArgs(tensor(base, S.DTYPE_BF16, T, D), tensor(base * 2, S.DTYPE_BF16, T, Hk, K),
                          tensor(base * 3, S.DTYPE_BF16, T, k_heads or Hk, K), tensor(base * 4, S.DTYPE_BF16, T, Hv, V))


def test_qkv_split_validate():
    assert _lib.fn.qkv_split_validate(C.byref(_split_args())) == S.SUCCESS
    status = _lib.fn.qkv_split_validate(C.byref(_split_args(k_heads=3)))
    assert status == S.ERROR_INVALID_ARGUMENT
    assert _lib.last_error().startswith("k: sizes")


def test_qkv_split_plan_without_device():
    args, cfg = _split_args(), S.QkvSplitConfig()
    dev = _lib.fn.device_info_hopper()
    _lib.check(_lib.fn.qkv_split_plan(C.byref(args), C.byref(dev), C.byref(cfg)), "gdn_qkv_split_plan")
    assert _lib.fn.qkv_split_layout_name(cfg.layout) == b"token-major"
    assert (cfg.Hk, cfg.K, cfg.Hv, cfg.V) == (2, 64, 4, 64)


def test_prefill_plan_rejects_bad_shape():
    shape = S.PrefillShape(Hk=3, Hv=32, K=128, V=128, dtype=S.DTYPE_BF16, use_g=1, l2norm_qk=1)
    io, bucket, plan = S.PrefillIO(), S.PrefillBucket(1024, 4), C.c_void_p()
    status = _lib.fn.prefill_plan_create(C.byref(plan), C.byref(shape), C.byref(io), C.byref(bucket), 1, 0)
    assert status == S.ERROR_INVALID_ARGUMENT
    assert "Hk = 3 must divide Hv = 32" in _lib.last_error()
    assert not plan.value


def test_chunk_delta_h_validate_names_argument():
    args = S.ChunkDeltaHArgs()  # everything absent
    assert _lib.fn.chunk_delta_h_validate(C.byref(args)) != S.SUCCESS
    assert _lib.last_error()


def test_forward_symbols_bound_or_reported():
    if gdngraph.has_forward():
        assert _lib.fn.forward_workspace_bytes is not None
    else:
        with pytest.raises(NotImplementedError, match="gdn_forward"):
            _lib.require("forward")
