"""gdngraph::qkv_split on the GPU: both input layouts against torch's split, dtypes,
padded rows, CUDA-graph capture with new data, opcheck."""
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

import gdngraph  # noqa: E402
from conftest import needs_cuda  # noqa: E402

pytestmark = needs_cuda


def _torch_split(mixed, Hk, K, Hv, V):
    q, k, v = torch.split(mixed, [Hk * K, Hk * K, Hv * V], dim=1)
    T = mixed.shape[0]
    return q.reshape(T, Hk, K).contiguous(), k.reshape(T, Hk, K).contiguous(), v.reshape(T, Hv, V).contiguous()


def _mixed(T, D, dtype, layout):
    if layout == "token-major":
        return torch.randn(T, D, device="cuda").to(dtype)
    if layout == "padded-rows":
        return torch.randn(T, D + 24, device="cuda").to(dtype)[:, :D]
    return torch.randn(D, T, device="cuda").to(dtype).t()  # channel-major: the conv's [D, T]


@pytest.mark.parametrize("layout", ["token-major", "padded-rows", "channel-major"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("T,Hk,K,Hv,V", [(1000, 4, 128, 8, 128), (77, 16, 128, 32, 128), (5, 1, 3, 1, 5)])
def test_matches_torch_split(layout, dtype, T, Hk, K, Hv, V):
    mixed = _mixed(T, 2 * Hk * K + Hv * V, dtype, layout)
    for got, want in zip(gdngraph.qkv_split(mixed, Hk, K, Hv, V), _torch_split(mixed, Hk, K, Hv, V)):
        assert got.is_contiguous() and got.shape == want.shape
        assert torch.equal(got, want)


def test_graph_capture_replays_new_data():
    Hk, K, Hv, V, T = 4, 128, 8, 128, 512
    static = _mixed(T, 2 * Hk * K + Hv * V, torch.bfloat16, "channel-major")
    gdngraph.qkv_split(static, Hk, K, Hv, V)  # warm-up
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = gdngraph.qkv_split(static, Hk, K, Hv, V)
    for _ in range(2):
        static.copy_(torch.randn_like(static))
        graph.replay()
        for got, want in zip(outs, _torch_split(static, Hk, K, Hv, V)):
            assert torch.equal(got, want)


def test_opcheck():
    mixed = _mixed(64, 2 * 2 * 64 + 4 * 64, torch.bfloat16, "token-major")
    torch.library.opcheck(torch.ops.gdngraph.qkv_split.default, (mixed, 2, 64, 4, 64))


def test_bad_shape_raises_library_message():
    mixed = _mixed(8, 100, torch.bfloat16, "token-major")
    with pytest.raises(gdngraph.GdnError, match="mixed_qkv") as e:
        gdngraph.qkv_split(mixed, 2, 16, 2, 16)  # D = 96, not 100
    assert e.value.status == 1
