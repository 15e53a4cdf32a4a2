"""FLA-compatible entries of the chunked gated delta rule (see python/README.md for every
difference from FLA's chunk_gated_delta_rule and FlashInfer's layouts)."""
from typing import Optional

import torch
from torch import Tensor

from ._forward import chunk_gated_delta_rule_op, chunk_gated_delta_rule_pool_op

# FLA keywords accepted for compatibility that change nothing here
_IGNORED_KWARGS = ("cu_seqlens_cpu", "chunk_indices")


def _check_dims(q, k, v, cu_seqlens, per_token):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"gdngraph: {name} must be [B, T, H, D], got shape {tuple(t.shape)}")
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"q and k must have the same number of heads, but got q.shape[2]={q.shape[2]} "
                         f"and k.shape[2]={k.shape[2]}")
    B, T, Hv = q.shape[0], q.shape[1], v.shape[2]
    if cu_seqlens is not None:
        if B != 1:
            raise ValueError(f"The batch size is expected to be 1 rather than {B} when using `cu_seqlens`.")
        if cu_seqlens.dim() != 1 or cu_seqlens.dtype not in (torch.int32, torch.int64):
            raise ValueError("gdngraph: cu_seqlens must be a 1-D int32 or int64 device tensor")
    for name, t in per_token.items():
        if t is not None and tuple(t.shape) != (B, T, Hv):
            raise ValueError(f"gdngraph: {name} must be [B, T, HV] = {(B, T, Hv)}, got {tuple(t.shape)}")
    return cu_seqlens.shape[0] - 1 if cu_seqlens is not None else B


def _dispatch(q, k, v, gates, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm_in_kernel,
              state_indices, state_v_first, gate_raw, use_g):
    n = _check_dims(q, k, v, cu_seqlens, {n: gates[n] for n in ("g", "beta", "a", "b")})
    common = dict(scale=0.0 if scale is None else float(scale), use_qk_l2norm=bool(use_qk_l2norm_in_kernel),
                  gate_raw=gate_raw, use_g=use_g, state_v_first=bool(state_v_first))
    if state_indices is None:
        if initial_state is not None and initial_state.shape[0] != n:
            raise ValueError(f"The number of initial states is expected to be equal to the number of input "
                             f"sequences, i.e., {n} rather than {initial_state.shape[0]}.")
        o, final = chunk_gated_delta_rule_op(q, k, v, initial_state=initial_state, cu_seqlens=cu_seqlens,
                                             output_final_state=bool(output_final_state), **gates, **common)
        return o, (final if output_final_state else None)
    if initial_state is None:
        raise ValueError("gdngraph: state_indices needs initial_state: the state pool [P, HV, K, V]")
    if output_final_state:
        raise ValueError("gdngraph: with state_indices the final states are written into the pool "
                         "(initial_state) in place; pass output_final_state=False")
    if state_indices.dim() != 1 or state_indices.shape[0] != n:
        raise ValueError(f"gdngraph: state_indices must be [N] = [{n}], got {tuple(state_indices.shape)}")
    o = chunk_gated_delta_rule_pool_op(q, k, v, state_pool=initial_state, state_indices=state_indices,
                                       cu_seqlens=cu_seqlens, **gates, **common)
    return o, None


def chunk_gated_delta_rule(q: Tensor, k: Tensor, v: Tensor, g: Optional[Tensor], beta: Tensor,
                           scale: Optional[float] = None, initial_state: Optional[Tensor] = None,
                           output_final_state: bool = False, *, cu_seqlens: Optional[Tensor] = None,
                           use_qk_l2norm_in_kernel: bool = False, state_indices: Optional[Tensor] = None,
                           state_v_first: bool = False, use_gate_in_kernel: bool = False,
                           A_log: Optional[Tensor] = None, dt_bias: Optional[Tensor] = None,
                           use_beta_sigmoid_in_kernel: bool = False, allow_neg_eigval: bool = False,
                           chunk_size: int = 64, **kwargs):
    """FLA's chunk_gated_delta_rule (forward only), as a CUDA-graph-capturable torch op.

    q, k [B, T, H, K]; v [B, T, HV, V]; g [B, T, HV] log-space gate (fp32; None: no gate);
    beta [B, T, HV]. B = 1 with cu_seqlens [N+1] (int32/int64, on the device) for varlen,
    else B sequences of T tokens. initial_state [N, HV, K, V] (or [N, HV, V, K] with
    state_v_first=True). Returns (o [B, T, HV, V], final_state [N, HV, K, V] fp32 or None).

    state_indices (int32/int64 [N], device): initial_state is then a state pool
    [P, HV, K, V] (state_v_first: [P, HV, V, K]); sequence i starts from row
    state_indices[i] (-1: zeros) and its final state overwrites that row in place (-1:
    not written). final_state is None then.

    use_gate_in_kernel=True (FLA's fused gate): g is the raw gate input a and beta the raw
    logit b; needs A_log, dt_bias and use_beta_sigmoid_in_kernel=True (see
    chunk_gated_delta_rule_raw)."""
    if "transpose_state_layout" in kwargs:
        state_v_first = kwargs.pop("transpose_state_layout")
    for name in _IGNORED_KWARGS:
        kwargs.pop(name, None)
    if kwargs.pop("cp_context", None) is not None:
        raise NotImplementedError("gdngraph: context parallelism (cp_context) is not supported")
    if "head_first" in kwargs:
        raise DeprecationWarning("head_first has been removed. Inputs must be in `[B, T, H, ...]` format.")
    if kwargs:
        raise TypeError(f"gdngraph.chunk_gated_delta_rule: unexpected arguments {sorted(kwargs)}")
    if chunk_size != 64:
        raise ValueError(f"gdngraph: chunk_size is 64, got {chunk_size}")
    if allow_neg_eigval:
        raise NotImplementedError("gdngraph: allow_neg_eigval (beta in [0, 2)) is not supported")
    if use_gate_in_kernel:
        if not use_beta_sigmoid_in_kernel or A_log is None:
            raise NotImplementedError("gdngraph: use_gate_in_kernel needs A_log and use_beta_sigmoid_in_kernel=True "
                                      "(the library applies sigmoid to the raw beta logit itself)")
        if dt_bias is None:
            dt_bias = torch.zeros_like(A_log)
        return chunk_gated_delta_rule_raw(q, k, v, g, beta, A_log, dt_bias, scale, initial_state, output_final_state,
                                          cu_seqlens=cu_seqlens, use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel,
                                          state_indices=state_indices, state_v_first=state_v_first)
    if use_beta_sigmoid_in_kernel:
        raise NotImplementedError("gdngraph: use_beta_sigmoid_in_kernel without use_gate_in_kernel is not supported "
                                  "(pass beta = sigmoid(b), or the raw-gate entry)")
    gates = dict(g=g, beta=beta, a=None, b=None, A_log=None, dt_bias=None)
    return _dispatch(q, k, v, gates, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm_in_kernel,
                     state_indices, state_v_first, gate_raw=False, use_g=g is not None)


def chunk_gated_delta_rule_raw(q: Tensor, k: Tensor, v: Tensor, a: Optional[Tensor], b: Tensor,
                               A_log: Optional[Tensor] = None, dt_bias: Optional[Tensor] = None,
                               scale: Optional[float] = None, initial_state: Optional[Tensor] = None,
                               output_final_state: bool = False, *, cu_seqlens: Optional[Tensor] = None,
                               use_qk_l2norm_in_kernel: bool = False, state_indices: Optional[Tensor] = None,
                               state_v_first: bool = False, use_g: bool = True):
    """The same from the model's raw gate projections (Qwen3-Next's fused_gdn_gating inputs):
    g = -exp(A_log) * softplus(a + dt_bias) and beta = sigmoid(b), computed in the kernels.
    a, b [B, T, HV] any float dtype; A_log, dt_bias [HV]. use_g=False: no decay (a, A_log
    and dt_bias unused). Everything else as chunk_gated_delta_rule."""
    if use_g and (a is None or A_log is None or dt_bias is None):
        raise ValueError("gdngraph: use_g needs a, A_log and dt_bias")
    gates = dict(g=None, beta=None, a=a if use_g else None, b=b, A_log=A_log if use_g else None,
                 dt_bias=dt_bias if use_g else None)
    return _dispatch(q, k, v, gates, scale, initial_state, output_final_state, cu_seqlens, use_qk_l2norm_in_kernel,
                     state_indices, state_v_first, gate_raw=True, use_g=use_g)
