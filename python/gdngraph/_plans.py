"""Cache of gdn_forward plans, keyed by (shape fields, device, capacity bucket).

A plan is host-only (launch configurations and a tiny mapped host record for device-side
batch errors), so one plan serves every call of a shape whose batch fits its capacity.
Plans are never destroyed while the process runs: a captured CUDA graph keeps writing
batch errors into its plan's record, and the cache cannot know when such graphs die."""
import contextlib
import ctypes as C
import threading

import torch

from . import _lib
from . import _structs as S
from ._lib import check

MIN_TOKENS = 64  # one chunk


def next_pow2(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def capacity(num_tokens, num_seqs):
    """The bucket a call runs in: powers of two >= the tokens (min 64) and sequences (min 1)."""
    return next_pow2(max(num_tokens, MIN_TOKENS)), next_pow2(max(num_seqs, 1))


class ForwardPlan:
    __slots__ = ("handle", "workspace_bytes", "key")

    def __init__(self, handle, workspace_bytes, key):
        self.handle, self.workspace_bytes, self.key = handle, workspace_bytes, key


_plans = {}
_lock = threading.Lock()


@contextlib.contextmanager
def _unsafe_calls_allowed():
    """Lets this thread make the plan's cudaHostAlloc while a stream capture is under way.

    Under torch.cuda.graph's default global capture mode a cudaHostAlloc is a prohibited
    'potentially unsafe' call (it fails and invalidates the capture); the CUDA-documented
    way for a library to make one anyway is to switch the calling thread to relaxed mode
    around it. The allocation is host memory, not part of the captured work."""
    try:
        cuda = C.CDLL("libcuda.so.1")
    except OSError:
        yield
        return
    mode = C.c_int(2)  # CU_STREAM_CAPTURE_MODE_RELAXED
    if cuda.cuThreadExchangeStreamCaptureMode(C.byref(mode)) != 0:
        yield
        return
    try:
        yield
    finally:
        cuda.cuThreadExchangeStreamCaptureMode(C.byref(mode))


def _create(shape, max_tokens, max_seqs, device):
    create = _lib.require("forward_plan_create")
    handle = C.c_void_p()
    bucket = S.PrefillBucket(max_tokens, max_seqs)
    status = create(C.byref(handle), C.byref(shape), bucket, device)
    try:
        check(status, f"gdn_forward_plan_create (capacity {max_tokens} tokens, {max_seqs} sequences, device {device})")
    except _lib.GdnError as e:
        if torch.cuda.is_current_stream_capturing():
            raise _lib.GdnError(e.status, f"{e}. The plan was being made during a CUDA graph capture: run the op "
                                          "once with the same shapes before capturing (warm-up)") from None
        raise
    return handle.value


def forward_plan(shape, num_tokens, num_seqs, device):
    """The cached plan for a PrefillShape on device index `device` whose capacity holds
    the call; made on first use (also inside a capture, see _unsafe_calls_allowed)."""
    max_tokens, max_seqs = capacity(num_tokens, num_seqs)
    key = (tuple(getattr(shape, f) for f, _ in S.PrefillShape._fields_), device, max_tokens, max_seqs)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    with _lock:
        plan = _plans.get(key)
        if plan is None:
            if torch.cuda.is_current_stream_capturing():
                with _unsafe_calls_allowed():
                    handle = _create(shape, max_tokens, max_seqs, device)
            else:
                handle = _create(shape, max_tokens, max_seqs, device)
            plan = ForwardPlan(handle, int(_lib.fn.forward_workspace_bytes(handle)), key)
            _plans[key] = plan
    return plan


def check_errors():
    """Raises GdnError when the device rejected a batch of any cached plan since the last
    check (call it after the work completed, e.g. after torch.cuda.synchronize())."""
    if not _lib.has("forward_check_error"):
        return
    for plan in list(_plans.values()):
        check(_lib.fn.forward_check_error(plan.handle), "gdn_forward (device-side batch check)")


def clear_plan_cache():
    """Destroys every cached plan. Only when no CUDA graph captured with them is replayed again."""
    with _lock:
        for plan in _plans.values():
            _lib.fn.forward_plan_destroy(plan.handle)
        _plans.clear()
