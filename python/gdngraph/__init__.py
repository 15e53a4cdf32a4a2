"""gdngraph: CUDA-graph-capturable Gated DeltaNet prefill operators for PyTorch.

    import gdngraph
    o, final_state = gdngraph.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0,
                                                     output_final_state=True, cu_seqlens=cu)

The ops are torch.library custom ops (torch.ops.gdngraph.*): they can be captured by
torch.cuda.graph and traced by torch.compile. python/README.md lists the differences
from FLA. Without torch only the C API mirrors load (gdngraph._lib, gdngraph._structs)."""
from ._lib import GdnError, path as library_path

__version__ = "0.1.0"

try:
    import torch as _torch  # noqa: F401
except ImportError:  # the ctypes layer alone (layout and validation tests without torch)
    _torch = None

if _torch is not None:
    from ._plans import capacity, check_errors, clear_plan_cache
    from ._qkv_split import qkv_split
    from .api import chunk_gated_delta_rule, chunk_gated_delta_rule_raw
    from .prefill import PrefillGraph
else:
    def __getattr__(name):
        raise ImportError(f"gdngraph.{name} needs torch, which is not installed")


def has_forward():
    """True when the loaded library has the per-call forward (gdn_forward)."""
    from . import _lib
    return _lib.has("forward")


__all__ = ["GdnError", "PrefillGraph", "capacity", "check_errors", "chunk_gated_delta_rule",
           "chunk_gated_delta_rule_raw", "clear_plan_cache", "has_forward", "library_path", "qkv_split"]
