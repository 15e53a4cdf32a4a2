"""Loads libgdngraph.so (shipped inside the package) and declares the C prototypes.

No torch here: the layout and validation tests use this module alone. Symbols that an
older library lacks are bound to None; `require` turns that into a clear error."""
import ctypes as C
import os

from . import _structs as S

P = C.POINTER
_vp, _int, _i32, _size, _str = C.c_void_p, C.c_int, C.c_int32, C.c_size_t, C.c_char_p


class GdnError(RuntimeError):
    """A gdngraph call failed; .status is the gdn_status code, the message is the library's."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)


def _library_path():
    override = os.environ.get("GDNGRAPH_LIBRARY")  # a build tree's library (the CTest run)
    return override or os.path.join(os.path.dirname(os.path.abspath(__file__)), "libgdngraph.so")


def _load():
    path = _library_path()
    if not os.path.exists(path):
        raise ImportError(f"gdngraph: {path} does not exist. Install the package with `pip install .` from the "
                          "gdngraph source tree on a machine with the CUDA Toolkit (or set GDNGRAPH_LIBRARY to a "
                          "built libgdngraph.so).")
    try:  # torch, when present, loads the CUDA runtime, cuBLAS and NCCL first: the library then uses those
        import torch  # noqa: F401
    except ImportError:
        pass
    try:
        return C.CDLL(path), path
    except OSError as e:
        raise ImportError(f"gdngraph: cannot load {path}: {e}. It needs the CUDA 13 runtime, cuBLAS/cuBLASLt 13 "
                          "and NCCL 2 (torch's CUDA wheels or the CUDA Toolkit provide them).") from e


lib, path = _load()

# name: (restype, argtypes)
_PROTOTYPES = {
    "gdn_status_string": (_str, [_int]),
    "gdn_get_last_error": (_str, []),
    "gdn_clear_last_error": (None, []),
    "gdn_dtype_name": (_str, [_int]),
    "gdn_tensor_check": (_int, [P(S.Tensor), _str]),
    "gdn_device_available": (_int, []),
    "gdn_device_info_query": (_int, [_int, P(S.DeviceInfo)]),
    "gdn_device_info_hopper": (S.DeviceInfo, []),
    # per-call forward (include/gdn/forward.h)
    "gdn_forward_plan_create": (_int, [P(_vp), P(S.PrefillShape), S.PrefillBucket, _int]),
    "gdn_forward_plan_destroy": (None, [_vp]),
    "gdn_forward_workspace_bytes": (_size, [_vp]),
    "gdn_forward": (_int, [_vp, P(S.ForwardArgs), _vp, _size, _vp]),
    "gdn_forward_validate": (_int, [_vp, P(S.ForwardArgs)]),
    "gdn_forward_check_error": (_int, [_vp]),
    # bucketed prefill graph (include/gdn/prefill.h)
    "gdn_prefill_plan_create": (_int, [P(_vp), P(S.PrefillShape), P(S.PrefillIO), P(S.PrefillBucket), _int, _int]),
    "gdn_prefill_plan_destroy": (None, [_vp]),
    "gdn_prefill_run": (_int, [_vp, P(_i32), P(_i32), _int, _vp]),
    "gdn_prefill_run_device": (_int, [_vp, _vp, _vp, _int, _int, _vp]),
    "gdn_prefill_run_eager": (_int, [_vp, P(_i32), P(_i32), _int, _vp]),
    "gdn_prefill_check_error": (_int, [_vp]),
    "gdn_prefill_num_buckets": (_int, [_vp]),
    "gdn_prefill_bucket_at": (S.PrefillBucket, [_vp, _int]),
    "gdn_prefill_pick_bucket": (_int, [_vp, _int, _int]),
    # fused QKV split (include/gdn/qkv_split.h)
    "gdn_qkv_split_validate": (_int, [P(S.QkvSplitArgs)]),
    "gdn_qkv_split_plan": (_int, [P(S.QkvSplitArgs), P(S.DeviceInfo), P(S.QkvSplitConfig)]),
    "gdn_qkv_split_launch": (_int, [P(S.QkvSplitArgs), P(S.QkvSplitConfig), _vp]),
    "gdn_qkv_split_layout_name": (_str, [_int]),
    # batch tables + chunk state recurrence (bench/peers)
    "gdn_batch_workspace_bytes": (_size, [_i32, _i32, _i32]),
    "gdn_batch_setup_validate": (_int, [P(S.BatchSetupArgs)]),
    "gdn_batch_setup_view": (_int, [P(S.BatchSetupArgs), P(S.Batch)]),
    "gdn_batch_setup_launch": (_int, [P(S.BatchSetupArgs), _vp]),
    "gdn_batch_workspace_bytes_for": (_size, [P(S.BatchSetupArgs)]),
    "gdn_chunk_delta_h_context_parallel": (_int, [P(S.BatchSetupArgs), _int, _int, _int, P(S.DeviceInfo)]),
    "gdn_scan_cp_workspace_bytes": (_size, [P(S.Batch), _int, _int, _int]),
    "gdn_chunk_delta_h_validate": (_int, [P(S.ChunkDeltaHArgs)]),
    "gdn_chunk_delta_h_plan": (_int, [P(S.ChunkDeltaHArgs), P(S.DeviceInfo), P(S.ScanConfig)]),
    "gdn_chunk_delta_h_launch": (_int, [P(S.ChunkDeltaHArgs), P(S.ScanConfig), _vp]),
}


class _Functions:
    pass


fn = _Functions()
for _name, (_res, _args) in _PROTOTYPES.items():
    _f = getattr(lib, _name, None)
    if _f is not None:
        _f.restype, _f.argtypes = _res, _args
    setattr(fn, _name[len("gdn_"):], _f)


def has(name):
    """True when the loaded library exports gdn_<name>."""
    return getattr(fn, name, None) is not None


def require(name):
    f = getattr(fn, name, None)
    if f is None:
        raise NotImplementedError(f"gdngraph: {path} has no gdn_{name}: it was built from sources without it "
                                  "(rebuild the package from a source tree that has it)")
    return f


def status_string(status):
    return fn.status_string(int(status)).decode()


def last_error():
    return fn.get_last_error().decode()


def check(status, what):
    """Raises GdnError carrying gdn_get_last_error() when status is not GDN_SUCCESS."""
    if status != S.SUCCESS:
        detail = last_error()
        raise GdnError(status, f"{what}: {status_string(status)}" + (f": {detail}" if detail else ""))
