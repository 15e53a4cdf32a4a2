"""PrefillGraph: the bucketed prefill plan (include/gdn/prefill.h) over torch buffers.

The plan instantiates one CUDA graph per capacity bucket over fixed buffers and replays
the smallest bucket that holds each batch. Write a batch's inputs into the buffers
(q, k, v, a, b: rows [0, cu_seqlens[-1])), call run(), read o; states live in the pool
`state` [num_slots, Hv, V, K] fp32 and are updated in place per sequence slot."""
import ctypes as C

import torch

from . import _lib
from . import _structs as S
from ._convert import DTYPES, gdn_tensor
from ._lib import check


def _host_int32(x, name):
    if x is None:
        return None
    t = torch.as_tensor(x, dtype=torch.int32, device="cpu").contiguous()
    if t.dim() != 1:
        raise ValueError(f"gdngraph: {name} must be 1-D")
    return t


def _i32p(t):
    return None if t is None else C.cast(t.data_ptr(), C.POINTER(C.c_int32))


class PrefillGraph:
    """buckets: [(max_tokens, max_seqs), ...]; the buffers hold the largest max_tokens.
    buffers: optional dict of the caller's tensors (q, k, v, a, b, A_log, dt_bias, state, o,
    and with output_norm norm_z, norm_weight) used instead of new zeroed ones (they must stay
    at the same address: the graphs point at them). Gates are the model's raw projections:
    g = -exp(A_log) softplus(a + dt_bias), beta = sigmoid(b). output_norm=True: o receives the
    gated RMSNorm of the core's output, o * rsqrt(mean(o^2) + norm_eps) * norm_weight *
    silu(norm_z) (Qwen3-Next's RMSNormGated), fused into the scan where the plan can. A plan
    is used on one stream at a time."""

    def __init__(self, Hk, Hv, K, V, buckets, num_slots, *, dtype=torch.bfloat16, use_g=True,
                 use_qk_l2norm=True, scale=None, device=None, buffers=None, output_norm=False, norm_eps=1e-6):
        dev = torch.device("cuda" if device is None else device)
        self.device = dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
        self.buckets = [(int(t), int(n)) for t, n in buckets]
        if not self.buckets:
            raise ValueError("gdngraph: PrefillGraph needs at least one bucket")
        T = max(t for t, _ in self.buckets)
        given = dict(buffers or {})
        shapes = dict(q=((T, Hk, K), dtype), k=((T, Hk, K), dtype), v=((T, Hv, V), dtype), b=((T, Hv), dtype),
                      state=((num_slots, Hv, V, K), torch.float32), o=((T, Hv, V), dtype))
        if use_g:
            shapes.update(a=((T, Hv), dtype), A_log=((Hv,), torch.float32), dt_bias=((Hv,), torch.float32))
        if output_norm:
            shapes.update(norm_z=((T, Hv, V), dtype), norm_weight=((V,), torch.float32))
        unknown = set(given) - set(shapes)
        if unknown:
            raise ValueError(f"gdngraph: PrefillGraph buffers: unknown or unused names {sorted(unknown)}")
        io = S.PrefillIO()
        for name, (shape, dt) in shapes.items():
            t = given.get(name)
            if t is None:
                t = torch.zeros(shape, dtype=dt, device=self.device)
            elif t.device != self.device:
                raise ValueError(f"gdngraph: PrefillGraph buffer {name} is on {t.device}, expected {self.device}")
            setattr(self, name, t)  # kept alive as long as the plan
            setattr(io, name, gdn_tensor(t, name))
        io.norm_eps = float(norm_eps) if output_norm else 0.0
        shape = S.PrefillShape(Hk=Hk, Hv=Hv, K=K, V=V, dtype=DTYPES[dtype], use_g=int(use_g), use_gk=0,
                               l2norm_qk=int(use_qk_l2norm), scale=0.0 if scale is None else float(scale),
                               gate=S.GATE_RAW)
        arr = (S.PrefillBucket * len(self.buckets))(*[S.PrefillBucket(t, n) for t, n in self.buckets])
        handle = C.c_void_p()
        with torch.cuda.device(self.device):
            check(_lib.fn.prefill_plan_create(C.byref(handle), C.byref(shape), C.byref(io), arr, len(self.buckets),
                                              self.device.index), "gdn_prefill_plan_create")
        self._handle = handle.value

    def _stream(self, stream):
        return (stream if stream is not None else torch.cuda.current_stream(self.device)).cuda_stream

    def run(self, cu_seqlens, slots=None, stream=None, eager=False):
        """Runs the batch cu_seqlens [N+1] (host: list, tuple or CPU tensor) with state slots
        [N] (None: all -1 = zero initial state, no write-back) on `stream` (default: the
        current stream): one descriptor upload and one graph launch. eager=True launches
        the same kernels one by one instead (gdn_prefill_run_eager)."""
        cu, sl = _host_int32(cu_seqlens, "cu_seqlens"), _host_int32(slots, "slots")
        n = cu.numel() - 1
        if sl is not None and sl.numel() != n:
            raise ValueError(f"gdngraph: slots has {sl.numel()} entries for {n} sequences")
        run = _lib.fn.prefill_run_eager if eager else _lib.fn.prefill_run
        with torch.cuda.device(self.device):
            check(run(self._handle, _i32p(cu), _i32p(sl), n, self._stream(stream)),
                  "gdn_prefill_run_eager" if eager else "gdn_prefill_run")

    def run_device(self, cu_seqlens, slots, num_tokens, stream=None):
        """The same with the descriptor on the device (int32 tensors); num_tokens (a host
        int >= cu_seqlens[-1]) picks the bucket, the device check verifies the rest."""
        for name, t in (("cu_seqlens", cu_seqlens), ("slots", slots)):
            if t is not None and (t.dtype != torch.int32 or not t.is_contiguous() or t.device != self.device):
                raise ValueError(f"gdngraph: {name} must be a contiguous int32 tensor on {self.device}")
        with torch.cuda.device(self.device):
            check(_lib.fn.prefill_run_device(self._handle, cu_seqlens.data_ptr(),
                                             None if slots is None else slots.data_ptr(), cu_seqlens.numel() - 1,
                                             int(num_tokens), self._stream(stream)), "gdn_prefill_run_device")

    def check_error(self):
        """After the runs completed: raises GdnError (status INVALID_BATCH) with the detail
        when the device rejected a batch since the last check."""
        check(_lib.fn.prefill_check_error(self._handle), "gdn_prefill_run (device-side batch check)")

    def pick_bucket(self, num_tokens, num_seqs):
        """Index of the smallest bucket holding the batch, or -1."""
        return _lib.fn.prefill_pick_bucket(self._handle, num_tokens, num_seqs)

    def close(self):
        """Destroys the plan (after its work completed). Idempotent."""
        if getattr(self, "_handle", None):
            _lib.fn.prefill_plan_destroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
