"""gdngraph vs FLA in one process, each captured as a CUDA graph (torch.cuda.CUDAGraph) and
timed by replays between CUDA events (median): the whole prefill forward
(chunk_gated_delta_rule), the state recurrence alone (gdn_chunk_delta_h vs FLA's
chunk_gated_delta_rule_fwd_h) and the post-conv QKV split (fused kernel vs a Triton seed
kernel vs torch split + .contiguous(), token-major and channel-major inputs).

Inputs: bf16 q/k/v, fp32 states with initial states, l2norm in the kernel, precomputed
fp32 g / beta for both, packed varlen batches (cu_seqlens). ratio = peer time / gdngraph
time (> 1: gdngraph faster). Run by bench/peers/run.sh (FLA from PYTHONPATH)."""
import argparse
import math
import statistics
import sys

import torch

import gdngraph
from gdn_delta_h import ChunkDeltaH
from triton_split import torch_split, triton_split

K = V = 128
TPS = {"TP1": (16, 32), "TP4": (4, 8)}
SHAPES = [(1, 8192), (8, 8192), (1, 32768), (4, 2048), (64, 128)]
RCP_LN2 = 1.0 / math.log(2.0)  # FLA's recurrence kernels take log2-space gates


def load_fla():
    try:
        from fla.ops.common.chunk_delta_h import chunk_gated_delta_rule_fwd_h
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        return chunk_gated_delta_rule, chunk_gated_delta_rule_fwd_h
    except Exception as e:
        print(f"FLA: not importable ({type(e).__name__}: {e}); its columns are n/a", file=sys.stderr)
        return None, None


def graph_time_us(fn, reps, warmup=3):
    """Captures fn (after eager warm-up calls on a side stream) and times its replays."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    for _ in range(warmup):
        graph.replay()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for start, end in events:
        start.record()
        graph.replay()
        end.record()
    torch.cuda.synchronize()
    us = statistics.median(s.elapsed_time(e) * 1e3 for s, e in events)
    del graph
    return us


def batch(n, length, Hk, Hv, dev):
    T = n * length
    q = torch.randn(1, T, Hk, K, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, T, Hk, K, device=dev, dtype=torch.bfloat16)
    v = torch.randn(1, T, Hv, V, device=dev, dtype=torch.bfloat16)
    g = -(0.01 + 0.09 * torch.rand(1, T, Hv, device=dev))
    beta = torch.rand(1, T, Hv, device=dev)
    h0 = torch.randn(n, Hv, K, V, device=dev) * 0.1
    cu = torch.arange(n + 1, dtype=torch.int32, device=dev) * length
    return q, k, v, g, beta, h0, cu


class Table:
    def __init__(self):
        self.rows = []

    def add(self, op, tp, shape, ours, peer_name, peer, note=""):
        self.rows.append((op, tp, shape, ours, peer_name, peer, note))

    def print(self):
        def f(x):
            return "n/a" if x is None else f"{x:9.1f}"
        head = f"{'op':<14} {'tp':<4} {'shape':<8} {'gdngraph us':>11} {'peer':<14} {'peer us':>9} {'ratio':>6}  note"
        print(head)
        print("-" * len(head))
        for op, tp, shape, ours, pname, peer, note in self.rows:
            ratio = f"{peer / ours:6.2f}" if ours and peer else "   n/a"
            print(f"{op:<14} {tp:<4} {shape:<8} {f(ours):>11} {pname:<14} {f(peer):>9} {ratio}  {note}")


def bench_forward(table, fla_gdr, reps, dev):
    for tp, (Hk, Hv) in TPS.items():
        for n, length in SHAPES:
            q, k, v, g, beta, h0, cu = batch(n, length, Hk, Hv, dev)
            cu64 = cu.long()
            kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
            ours = graph_time_us(lambda: gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=cu, **kw), reps) \
                if gdngraph.has_forward() else None
            peer = graph_time_us(lambda: fla_gdr(q, k, v, g, beta, cu_seqlens=cu64, **kw), reps) if fla_gdr else None
            table.add("forward", tp, f"{n}x{length}", ours, "FLA", peer,
                      "" if ours else "library lacks gdn_forward")
            torch.cuda.empty_cache()


def bench_delta_h(table, fla_fwd_h, reps, dev):
    for tp, (Hk, Hv) in TPS.items():
        for n, length in SHAPES:
            T = n * length
            k = torch.nn.functional.normalize(torch.randn(T, Hk, K, device=dev), dim=-1).to(torch.bfloat16)
            w = (torch.randn(T, Hv, K, device=dev) * 0.05).to(torch.bfloat16)
            u = (torch.randn(T, Hv, V, device=dev) * 0.05).to(torch.bfloat16)
            g = -(0.01 + 0.09 * torch.rand(T // 64, 64, Hv, device=dev))
            g = g.cumsum(1).reshape(T, Hv)  # chunk-local cumsum (every length is a multiple of 64)
            h0 = torch.randn(n, Hv, K, V, device=dev) * 0.1
            pool = h0.transpose(-1, -2).contiguous()  # [N, Hv, V, K], updated in place per replay
            cu = torch.arange(n + 1, dtype=torch.int32, device=dev) * length
            op = ChunkDeltaH(k, w, u, g, pool, cu)
            ours = graph_time_us(op, reps)
            peer = None
            if fla_fwd_h:
                g2, cu64 = (g * RCP_LN2)[None], cu.long()
                peer = graph_time_us(lambda: fla_fwd_h(k[None], w[None], u[None], g=g2, initial_state=h0,
                                                       output_final_state=True, cu_seqlens=cu64), reps)
            table.add("chunk_delta_h", tp, f"{n}x{length}", ours, "FLA fwd_h", peer, op.config())
            torch.cuda.empty_cache()


def bench_split(table, reps, dev):
    for tp, (Hk, Hv) in TPS.items():
        D = 2 * Hk * K + Hv * V
        for n, length in SHAPES:
            T = n * length
            for layout in ("token-major", "channel-major"):
                mixed = torch.randn(T, D, device=dev, dtype=torch.bfloat16) if layout == "token-major" else \
                    torch.randn(D, T, device=dev, dtype=torch.bfloat16).t()
                ours = graph_time_us(lambda: gdngraph.qkv_split(mixed, Hk, K, Hv, V), reps)
                seed = graph_time_us(lambda: triton_split(mixed, Hk, K, Hv, V), reps)
                frame = graph_time_us(lambda: torch_split(mixed, Hk, K, Hv, V), reps)
                gbps = 2 * mixed.numel() * 2 / (ours * 1e-6) / 1e9
                short = "tok" if layout == "token-major" else "chan"
                table.add(f"qkv_split {short}", tp, f"{n}x{length}", ours, "Triton seed", seed, f"{gbps:.0f} GB/s")
                table.add(f"qkv_split {short}", tp, f"{n}x{length}", ours, "torch split", frame)
            torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=50, help="timed replays per case (median)")
    parser.add_argument("--only", choices=["forward", "delta_h", "split"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return 0
    dev = torch.device("cuda")
    torch.manual_seed(0)
    fla_gdr, fla_fwd_h = load_fla()
    print(f"gdngraph {gdngraph.library_path} on {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"K=V={K}, medians of {args.reps} CUDA-graph replays; ratio = peer / gdngraph")
    parts = args.only or ["forward", "delta_h", "split"]
    table = Table()
    if "forward" in parts:
        bench_forward(table, fla_gdr, args.reps, dev)
    if "delta_h" in parts:
        bench_delta_h(table, fla_fwd_h, args.reps, dev)
    if "split" in parts:
        bench_split(table, args.reps, dev)
    table.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
