"""gdngraph::qkv_split: the fused post-conv split of mixed_qkv into q, k, v (one kernel)."""
import ctypes as C
import threading

import torch
from torch import Tensor

from . import _lib
from . import _structs as S
from ._convert import gdn_tensor
from ._lib import check

_device_info = {}
_lock = threading.Lock()


def device_info(index):
    """gdn_device_info of a device, queried once (plans choose configurations from it)."""
    info = _device_info.get(index)
    if info is None:
        with _lock:
            info = S.DeviceInfo()
            check(_lib.fn.device_info_query(index, C.byref(info)), f"gdn_device_info_query({index})")
            _device_info[index] = info
    return info


def _outputs(mixed_qkv, Hk, K, Hv, V):
    T = mixed_qkv.shape[0]
    return (mixed_qkv.new_empty((T, Hk, K)), mixed_qkv.new_empty((T, Hk, K)), mixed_qkv.new_empty((T, Hv, V)))


@torch.library.custom_op("gdngraph::qkv_split", mutates_args=())
def qkv_split(mixed_qkv: Tensor, num_k_heads: int, head_k_dim: int, num_v_heads: int,
              head_v_dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """mixed_qkv [T, D] (D = 2*Hk*K + Hv*V) -> contiguous q [T, Hk, K], k [T, Hk, K], v [T, Hv, V].

    Any strides: token-major ([T, D] rows, possibly padded) or channel-major (the causal
    conv's [D, T] output passed as its transpose, conv_out.t()); the kernel is picked
    from the strides. bf16, fp16 or fp32, bitwise copy."""
    if mixed_qkv.device.type != "cuda":
        raise ValueError(f"gdngraph: mixed_qkv is on {mixed_qkv.device}; the ops run on CUDA tensors")
    if mixed_qkv.dim() != 2:
        raise ValueError(f"gdngraph: mixed_qkv must be [T, D], got shape {tuple(mixed_qkv.shape)}")
    q, k, v = _outputs(mixed_qkv, num_k_heads, head_k_dim, num_v_heads, head_v_dim)
    args = S.QkvSplitArgs(gdn_tensor(mixed_qkv, "mixed_qkv"), gdn_tensor(q, "q"), gdn_tensor(k, "k"),
                          gdn_tensor(v, "v"))
    dev = mixed_qkv.device
    with torch.cuda.device(dev):
        cfg = S.QkvSplitConfig()  # planned per call: the kernel depends on strides and alignment
        info = device_info(dev.index)
        check(_lib.fn.qkv_split_plan(C.byref(args), C.byref(info), C.byref(cfg)), "gdn_qkv_split_plan")
        stream = torch.cuda.current_stream(dev).cuda_stream
        check(_lib.fn.qkv_split_launch(C.byref(args), C.byref(cfg), stream), "gdn_qkv_split_launch")
    return q, k, v


@qkv_split.register_fake
def _(mixed_qkv, num_k_heads, head_k_dim, num_v_heads, head_v_dim):
    return _outputs(mixed_qkv, num_k_heads, head_k_dim, num_v_heads, head_v_dim)


def validate(mixed_qkv, q, k, v):
    """gdn_qkv_split_validate on tensors (host only; any device): raises GdnError."""
    args = S.QkvSplitArgs(gdn_tensor(mixed_qkv, "mixed_qkv"), gdn_tensor(q, "q"), gdn_tensor(k, "k"),
                          gdn_tensor(v, "v"))
    check(_lib.fn.qkv_split_validate(C.byref(args)), "gdn_qkv_split_validate")
