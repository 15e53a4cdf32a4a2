"""gdngraph's chunk_delta_h (gdn_chunk_delta_h_*: FLA's chunk_gated_delta_rule_fwd_h) from
torch tensors, through the package's ctypes mirrors: the batch tables come from one
gdn_batch_setup launch, then each call is one kernel on the current stream (capturable)."""
import ctypes as C

import torch

from gdngraph import _lib
from gdngraph import _structs as S
from gdngraph._convert import gdn_tensor
from gdngraph._lib import check
from gdngraph._qkv_split import device_info


class ChunkDeltaH:
    """k [T, Hk, K] bf16; w [T, Hv, K]; u [T, Hv, V]; g [T, Hv] fp32 chunk-local cumsum of the
    log gate; state: pool [N, Hv, V, K] fp32 (sequence i uses row i, read and written in
    place); cu_seqlens int32 [N+1] on the device. Writes h [NT, Hv, K, V] (k's dtype) and
    v_new [T, Hv, V]."""

    def __init__(self, k, w, u, g, state, cu_seqlens):
        dev = k.device
        n, T = cu_seqlens.numel() - 1, k.shape[0]
        self.slots = torch.arange(n, dtype=torch.int32, device=dev)
        self.cu = cu_seqlens
        setup = S.BatchSetupArgs(cu_seqlens=cu_seqlens.data_ptr(), slots=self.slots.data_ptr(), num_seqs=n,
                                 max_seqs=n, max_tokens=T, num_slots=state.shape[0])
        setup.workspace_bytes = _lib.fn.batch_workspace_bytes(n, T, state.shape[0])
        self.batch_ws = torch.empty(setup.workspace_bytes, dtype=torch.uint8, device=dev)
        setup.workspace = self.batch_ws.data_ptr()
        check(_lib.fn.batch_setup_launch(C.byref(setup), torch.cuda.current_stream(dev).cuda_stream),
              "gdn_batch_setup_launch")
        batch = S.Batch()
        check(_lib.fn.batch_setup_view(C.byref(setup), C.byref(batch)), "gdn_batch_setup_view")
        Hv, K, V = w.shape[1], w.shape[2], u.shape[2]
        self.h = torch.empty(batch.max_chunks, Hv, K, V, dtype=k.dtype, device=dev)
        self.v_new = torch.empty_like(u)
        self.keep = (k, w, u, g, state)  # the descriptors point at these
        self.args = S.ChunkDeltaHArgs(batch=batch, k=gdn_tensor(k, "k"), w=gdn_tensor(w, "w"), u=gdn_tensor(u, "u"),
                                      g=gdn_tensor(g, "g"), state=gdn_tensor(state, "state"),
                                      h=gdn_tensor(self.h, "h"), v_new=gdn_tensor(self.v_new, "v_new"))
        self.cfg = S.ScanConfig()
        check(_lib.fn.chunk_delta_h_plan(C.byref(self.args), C.byref(device_info(dev.index)), C.byref(self.cfg)),
              "gdn_chunk_delta_h_plan")

    def config(self):
        c = self.cfg
        return f"bv{c.bv} w{c.num_warps} s{c.num_stages}{' wg' if c.column_split == 2 else ' col' if c.column_split else ''}"

    def __call__(self):
        check(_lib.fn.chunk_delta_h_launch(C.byref(self.args), C.byref(self.cfg),
                                           torch.cuda.current_stream(self.h.device).cuda_stream),
              "gdn_chunk_delta_h_launch")
        return self.h, self.v_new
