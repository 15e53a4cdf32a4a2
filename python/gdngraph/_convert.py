"""torch.Tensor -> gdn_tensor (pointer, dtype, rank, sizes and strides in elements)."""
import torch

from . import _structs as S

DTYPES = {torch.bfloat16: S.DTYPE_BF16, torch.float16: S.DTYPE_F16, torch.float32: S.DTYPE_F32,
          torch.int32: S.DTYPE_I32, torch.int64: S.DTYPE_I64}


def gdn_tensor(t, name="tensor"):
    """The descriptor of `t` (rank 1..4), or the absent tensor for None. The caller keeps
    `t` alive while the C side uses the descriptor."""
    d = S.Tensor()
    if t is None:
        return d
    if t.dtype not in DTYPES:
        raise TypeError(f"gdngraph: {name}: dtype {t.dtype} is not supported (bf16, fp16, fp32, int32, int64)")
    if not 1 <= t.dim() <= S.MAX_RANK:
        raise ValueError(f"gdngraph: {name}: rank {t.dim()}, expected 1..{S.MAX_RANK}")
    d.data = t.data_ptr() or None
    d.dtype = DTYPES[t.dtype]
    d.rank = t.dim()
    for i, (n, st) in enumerate(zip(t.shape, t.stride())):
        d.sizes[i], d.strides[i] = n, st
    return d


def data_ptr(t):
    """Raw device pointer for the int32 slot arrays (None: NULL)."""
    return None if t is None else (t.data_ptr() or None)
