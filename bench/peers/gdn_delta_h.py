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
    v_new [T, Hv, V]. The batch is cut into segments where the library's chunk_delta_h
    policy does so (gdn_chunk_delta_h_context_parallel: few chains on the device)."""

    def __init__(self, k, w, u, g, state, cu_seqlens):
        dev = k.device
        n, T = cu_seqlens.numel() - 1, k.shape[0]
        Hv, K, V = w.shape[1], w.shape[2], u.shape[2]
        self.slots = torch.arange(n, dtype=torch.int32, device=dev)
        self.cu = cu_seqlens
        setup = S.BatchSetupArgs(cu_seqlens=cu_seqlens.data_ptr(), slots=self.slots.data_ptr(), num_seqs=n,
                                 max_seqs=n, max_tokens=T, num_slots=state.shape[0])
        info = device_info(dev.index)
        self.segmented = _lib.fn.chunk_delta_h_context_parallel(C.byref(setup), Hv, K, V, C.byref(info)) == 0
        setup.workspace_bytes = _lib.fn.batch_workspace_bytes_for(C.byref(setup))
        self.batch_ws = torch.empty(setup.workspace_bytes, dtype=torch.uint8, device=dev)
        setup.workspace = self.batch_ws.data_ptr()
        check(_lib.fn.batch_setup_launch(C.byref(setup), torch.cuda.current_stream(dev).cuda_stream),
              "gdn_batch_setup_launch")
        batch = S.Batch()
        check(_lib.fn.batch_setup_view(C.byref(setup), C.byref(batch)), "gdn_batch_setup_view")
        self.h = torch.empty(batch.max_chunks, Hv, K, V, dtype=k.dtype, device=dev)
        self.v_new = torch.empty_like(u)
        cp_bytes = _lib.fn.scan_cp_workspace_bytes(C.byref(batch), Hv, V, K)
        self.cp_ws = torch.empty(max(cp_bytes, 16), dtype=torch.uint8, device=dev)
        self.keep = (k, w, u, g, state)  # the descriptors point at these
        self.args = S.ChunkDeltaHArgs(batch=batch, k=gdn_tensor(k, "k"), w=gdn_tensor(w, "w"), u=gdn_tensor(u, "u"),
                                      g=gdn_tensor(g, "g"), state=gdn_tensor(state, "state"),
                                      h=gdn_tensor(self.h, "h"), v_new=gdn_tensor(self.v_new, "v_new"),
                                      cp_workspace=self.cp_ws.data_ptr() if cp_bytes else None,
                                      cp_workspace_bytes=cp_bytes)
        self.cfg = S.ScanConfig()
        check(_lib.fn.chunk_delta_h_plan(C.byref(self.args), C.byref(info), C.byref(self.cfg)),
              "gdn_chunk_delta_h_plan")

    def config(self):
        c = self.cfg
        kernel = {0: "", 1: " col", 2: " wg", 3: " kr"}.get(c.column_split, " ?")  # kr: key rows
        return f"bv{c.bv} w{c.num_warps} s{c.num_stages}{kernel}{' cp' if self.segmented else ''}"

    def __call__(self):
        check(_lib.fn.chunk_delta_h_launch(C.byref(self.args), C.byref(self.cfg),
                                           torch.cuda.current_stream(self.h.device).cuda_stream),
              "gdn_chunk_delta_h_launch")
        return self.h, self.v_new
