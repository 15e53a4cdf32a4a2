"""The torch ops over gdn_forward (include/gdn/forward.h).

Two custom ops, both capturable by torch.cuda.graph and traceable by torch.compile:
  gdngraph::chunk_gated_delta_rule       functional: initial states row i -> fresh final states
  gdngraph::chunk_gated_delta_rule_pool  in place: sequence i reads and writes pool row
                                         state_indices[i] (mutates the pool)
The Python entries in gdngraph/api.py map FLA's arguments onto them."""
import ctypes as C
import os
from typing import Optional

import torch
from torch import Tensor

from . import _lib
from . import _plans
from . import _structs as S
from ._convert import DTYPES, data_ptr, gdn_tensor
from ._lib import check

_SYNC_CHECK = os.environ.get("GDNGRAPH_SYNC_CHECK", "0") not in ("", "0")


def _flat(x):
    """[B, T, ...] -> [B*T, ...] (a view when the strides allow), last dim contiguous."""
    if x is None:
        return None
    x = x.flatten(0, 1)
    return x if x.stride(-1) == 1 or x.shape[-1] == 1 else x.contiguous()


def _pool_view(state, state_v_first):
    """The C library's [rows, Hv, V, K] view of a state tensor (FLA's [.., K, V] by strides)."""
    if state is None:
        return None
    return state if state_v_first else state.transpose(-1, -2)


def build_args(q, k, v, o, g, beta, a, b, A_log, dt_bias, cu_seqlens, state_in, state_out, slots, scale, l2norm,
               gate_raw, use_g, state_v_first):
    """(PrefillShape, ForwardArgs, tensors the descriptors point at, tokens, sequences) of a
    call in FLA's layout; host only (the CPU tests check the descriptors it makes).
    Temporaries made here (a generated cu_seqlens, an fp32 g, contiguous copies) may be
    freed once the call is launched: torch's allocator reuses memory in stream order."""
    B, T, Hk, K = q.shape
    Hv, V = v.shape[2], v.shape[3]
    if q.dtype not in (torch.bfloat16, torch.float16):
        raise TypeError(f"gdngraph: q is {q.dtype}; q, k, v must be bf16 or fp16")
    if cu_seqlens is None:  # B sequences of T tokens each
        cu_seqlens = torch.arange(B + 1, dtype=torch.int32, device=q.device) * T
    if g is not None and g.dtype != torch.float32:
        g = g.float()  # the library takes the log-space gate in fp32
    shape = S.PrefillShape(Hk=Hk, Hv=Hv, K=K, V=V, dtype=DTYPES[q.dtype], use_g=int(use_g), use_gk=0,
                           l2norm_qk=int(l2norm), scale=scale, gate=S.GATE_RAW if gate_raw else S.GATE_PRECOMPUTED)
    views = dict(q=_flat(q), k=_flat(k), v=_flat(v), o=o.view(B * T, Hv, V), cu_seqlens=cu_seqlens,
                 state_in=_pool_view(state_in, state_v_first), state_out=_pool_view(state_out, state_v_first))
    if gate_raw:
        views.update(a=_flat(a), b=_flat(b), A_log=A_log, dt_bias=dt_bias)
    else:
        views.update(g=_flat(g), beta=_flat(beta))
    args = S.ForwardArgs()
    for name, t in views.items():
        setattr(args, name, gdn_tensor(t, name))
    args.slots_in = args.slots_out = data_ptr(slots)
    return shape, args, (views, slots), B * T, cu_seqlens.numel() - 1


def _run(q, k, v, g, beta, a, b, A_log, dt_bias, cu_seqlens, state_in, state_out, slots,
         scale, l2norm, gate_raw, use_g, state_v_first):
    """Launches gdn_forward on the current stream; returns o [B, T, Hv, V]."""
    dev = q.device
    if dev.type != "cuda":
        raise ValueError(f"gdngraph: q is on {dev}; the ops run on CUDA tensors")
    for name, t in (("k", k), ("v", v), ("g", g), ("beta", beta), ("a", a), ("b", b), ("A_log", A_log),
                    ("dt_bias", dt_bias), ("cu_seqlens", cu_seqlens), ("state", state_in), ("state_out", state_out),
                    ("state_indices", slots)):
        if t is not None and t.device != dev:
            raise ValueError(f"gdngraph: {name} is on {t.device}, q on {dev}")
    with torch.cuda.device(dev):
        o = torch.empty((q.shape[0], q.shape[1], v.shape[2], v.shape[3]), dtype=q.dtype, device=dev)
        shape, args, keep, tokens, seqs = build_args(q, k, v, o, g, beta, a, b, A_log, dt_bias, cu_seqlens, state_in,
                                                     state_out, slots, scale, l2norm, gate_raw, use_g, state_v_first)
        plan = _plans.forward_plan(shape, tokens, seqs, dev.index)
        ws = torch.empty(plan.workspace_bytes, dtype=torch.uint8, device=dev) if plan.workspace_bytes else None
        stream = torch.cuda.current_stream(dev).cuda_stream
        check(_lib.require("forward")(plan.handle, C.byref(args), data_ptr(ws), plan.workspace_bytes, stream),
              "gdn_forward")
        if _SYNC_CHECK and not torch.cuda.is_current_stream_capturing():
            torch.cuda.current_stream(dev).synchronize()
            check(_lib.fn.forward_check_error(plan.handle), "gdn_forward (device-side batch check)")
    return o


def _final_state_shape(q, v, cu_seqlens, state_v_first):
    n = cu_seqlens.shape[0] - 1 if cu_seqlens is not None else q.shape[0]
    Hv, K, V = v.shape[2], q.shape[3], v.shape[3]
    return (n, Hv, V, K) if state_v_first else (n, Hv, K, V)


@torch.library.custom_op("gdngraph::chunk_gated_delta_rule", mutates_args=())
def chunk_gated_delta_rule_op(
        q: Tensor, k: Tensor, v: Tensor, g: Optional[Tensor], beta: Optional[Tensor], a: Optional[Tensor],
        b: Optional[Tensor], A_log: Optional[Tensor], dt_bias: Optional[Tensor], initial_state: Optional[Tensor],
        cu_seqlens: Optional[Tensor], scale: float, use_qk_l2norm: bool, gate_raw: bool, use_g: bool,
        state_v_first: bool, output_final_state: bool) -> tuple[Tensor, Tensor]:
    """Returns (o, final_state); final_state is empty (numel 0) unless output_final_state."""
    if output_final_state:
        final = torch.empty(_final_state_shape(q, v, cu_seqlens, state_v_first), dtype=torch.float32, device=q.device)
    else:
        final = torch.empty(0, dtype=torch.float32, device=q.device)
    o = _run(q, k, v, g, beta, a, b, A_log, dt_bias, cu_seqlens, initial_state, final if output_final_state else None,
             None, scale, use_qk_l2norm, gate_raw, use_g, state_v_first)
    return o, final


@chunk_gated_delta_rule_op.register_fake
def _(q, k, v, g, beta, a, b, A_log, dt_bias, initial_state, cu_seqlens, scale, use_qk_l2norm, gate_raw, use_g,
      state_v_first, output_final_state):
    o = q.new_empty((q.shape[0], q.shape[1], v.shape[2], v.shape[3]))
    shape = _final_state_shape(q, v, cu_seqlens, state_v_first) if output_final_state else (0,)
    return o, q.new_empty(shape, dtype=torch.float32)


@torch.library.custom_op("gdngraph::chunk_gated_delta_rule_pool", mutates_args=("state_pool",))
def chunk_gated_delta_rule_pool_op(
        q: Tensor, k: Tensor, v: Tensor, g: Optional[Tensor], beta: Optional[Tensor], a: Optional[Tensor],
        b: Optional[Tensor], A_log: Optional[Tensor], dt_bias: Optional[Tensor], state_pool: Tensor,
        state_indices: Tensor, cu_seqlens: Optional[Tensor], scale: float, use_qk_l2norm: bool, gate_raw: bool,
        use_g: bool, state_v_first: bool) -> Tensor:
    """Returns o; sequence i's final state overwrites state_pool[state_indices[i]] (-1: none)."""
    slots = state_indices if state_indices.dtype == torch.int32 else state_indices.to(torch.int32)
    return _run(q, k, v, g, beta, a, b, A_log, dt_bias, cu_seqlens, state_pool, state_pool, slots.contiguous(),
                scale, use_qk_l2norm, gate_raw, use_g, state_v_first)


@chunk_gated_delta_rule_pool_op.register_fake
def _(q, k, v, g, beta, a, b, A_log, dt_bias, state_pool, state_indices, cu_seqlens, scale, use_qk_l2norm, gate_raw,
      use_g, state_v_first):
    return q.new_empty((q.shape[0], q.shape[1], v.shape[2], v.shape[3]))
