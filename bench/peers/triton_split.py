"""The seed QKV split the fused kernel is compared with, written after SGLang's Triton split:
one program per token, one strided load of the whole mixed row, three masked stores."""
import torch
import triton
import triton.language as tl


@triton.jit
def _split_row(x, q, k, v, stride_t, stride_d, QK: tl.constexpr, D: tl.constexpr, BLOCK: tl.constexpr):
    t = tl.program_id(0).to(tl.int64)
    c = tl.arange(0, BLOCK)
    row = tl.load(x + t * stride_t + c.to(tl.int64) * stride_d, mask=c < D)
    tl.store(q + t * QK + c, row, mask=c < QK)
    tl.store(k + t * QK + (c - QK), row, mask=(c >= QK) & (c < 2 * QK))
    tl.store(v + t * (D - 2 * QK) + (c - 2 * QK), row, mask=(c >= 2 * QK) & (c < D))


def triton_split(mixed, Hk, K, Hv, V):
    """mixed [T, D] with any strides -> contiguous q, k [T, Hk, K], v [T, Hv, V]."""
    T, D = mixed.shape
    q = mixed.new_empty(T, Hk, K)
    k = mixed.new_empty(T, Hk, K)
    v = mixed.new_empty(T, Hv, V)
    block = triton.next_power_of_2(D)
    _split_row[(T,)](mixed, q, k, v, mixed.stride(0), mixed.stride(1), QK=Hk * K, D=D, BLOCK=block,
                     num_warps=8 if block >= 4096 else 4)
    return q, k, v


def torch_split(mixed, Hk, K, Hv, V):
    """The framework path: split + view + .contiguous() (one copy per output)."""
    T = mixed.shape[0]
    q, k, v = torch.split(mixed, [Hk * K, Hk * K, Hv * V], dim=1)
    return q.reshape(T, Hk, K).contiguous(), k.reshape(T, Hk, K).contiguous(), v.reshape(T, Hv, V).contiguous()
