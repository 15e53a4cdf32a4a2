"""ctypes mirrors of the C structs in include/gdn/*.h (field for field, same order).

C enums are ints on every ABI the library targets; tests/python/test_layout.py compares
sizeof / offsetof of each mirror with the C compiler's (tests/python/layout_probe.c)."""
import ctypes as C

MAX_RANK = 4

# gdn_dtype
DTYPE_BF16, DTYPE_F16, DTYPE_F32, DTYPE_I32, DTYPE_I64 = 0, 1, 2, 3, 4
# gdn_gate_mode
GATE_RAW, GATE_PRECOMPUTED = 0, 1
# gdn_status
SUCCESS = 0
ERROR_INVALID_ARGUMENT = 1
ERROR_UNSUPPORTED = 2
ERROR_CUDA = 3
ERROR_OUT_OF_MEMORY = 6
ERROR_INVALID_BATCH = 7
ERROR_NO_DEVICE = 8


class Tensor(C.Structure):
    """gdn_tensor: a strided view; sizes and strides in elements. All zeros = absent."""
    _fields_ = [("data", C.c_void_p), ("dtype", C.c_int), ("rank", C.c_int),
                ("sizes", C.c_int64 * MAX_RANK), ("strides", C.c_int64 * MAX_RANK)]


class DeviceInfo(C.Structure):
    _fields_ = [("device", C.c_int), ("cc_major", C.c_int), ("cc_minor", C.c_int), ("sm_count", C.c_int),
                ("smem_per_block_optin", C.c_size_t), ("smem_per_sm", C.c_size_t), ("l2_bytes", C.c_size_t),
                ("max_threads_per_sm", C.c_int)]


class PrefillShape(C.Structure):
    _fields_ = [("Hk", C.c_int), ("Hv", C.c_int), ("K", C.c_int), ("V", C.c_int), ("dtype", C.c_int),
                ("use_g", C.c_int), ("use_gk", C.c_int), ("l2norm_qk", C.c_int), ("scale", C.c_float),
                ("gate", C.c_int)]


class PrefillBucket(C.Structure):
    _fields_ = [("max_tokens", C.c_int32), ("max_seqs", C.c_int32)]


class PrefillIO(C.Structure):
    _fields_ = ([(n, Tensor) for n in ("q", "k", "v", "a", "b", "A_log", "dt_bias", "gk", "state", "o", "g", "beta",
                                       "checkpoints")]
                + [("checkpoint_every", C.c_int), ("norm_z", Tensor), ("norm_weight", Tensor), ("norm_eps", C.c_double)])


class ForwardArgs(C.Structure):
    _fields_ = ([(n, Tensor) for n in ("q", "k", "v", "o", "a", "b", "A_log", "dt_bias", "g", "beta", "gk",
                                       "cu_seqlens", "state_in", "state_out")]
                + [("slots_in", C.c_void_p), ("slots_out", C.c_void_p), ("checkpoints", Tensor),
                   ("checkpoint_offsets", C.c_void_p), ("checkpoint_every", C.c_int)])


class QkvSplitArgs(C.Structure):
    _fields_ = [(n, Tensor) for n in ("mixed_qkv", "q", "k", "v")]


class QkvSplitConfig(C.Structure):
    _fields_ = ([(n, C.c_int) for n in ("layout", "elem_bytes", "vec_bytes", "block_x", "block_y",
                                        "rows_per_thread", "tile_tokens", "tile_channels", "smem_bytes", "dtype")]
                + [(n, C.c_int64) for n in ("D", "Hk", "K", "Hv", "V")])


class Batch(C.Structure):
    """gdn_batch: device pointers into a batch-setup workspace plus capacities."""
    _fields_ = ([(n, C.c_void_p) for n in ("cu_seqlens", "slots", "slots_out", "chunk_offsets", "chunk_seq", "header",
                                           "checkpoint_offsets", "segments", "seq_segments")]
                + [(n, C.c_int32) for n in ("max_seqs", "max_tokens", "max_chunks", "max_segments", "when_cut")])


class BatchSetupArgs(C.Structure):
    _fields_ = [("cu_seqlens", C.c_void_p), ("cu_seqlens64", C.c_void_p), ("slots", C.c_void_p),
                ("num_seqs_dev", C.c_void_p), ("num_seqs", C.c_int32), ("max_seqs", C.c_int32),
                ("max_tokens", C.c_int32), ("num_slots", C.c_int32), ("workspace", C.c_void_p),
                ("workspace_bytes", C.c_size_t), ("error_record", C.c_void_p), ("slots_identity", C.c_int),
                ("slots_out", C.c_void_p), ("slots_out_mode", C.c_int), ("slots_out_select", C.c_void_p),
                ("num_slots_out", C.c_int32), ("state_aliased", C.c_int), ("checkpoint_offsets", C.c_void_p),
                ("checkpoint_every", C.c_int32), ("num_checkpoints", C.c_int32), ("cp_min_chunks", C.c_int32),
                ("cp_units", C.c_int32), ("cp_heads", C.c_int32), ("cp_max_pairs", C.c_int32)]


class ScanConfig(C.Structure):
    _fields_ = [("bv", C.c_int), ("num_warps", C.c_int), ("num_stages", C.c_int), ("smem_bytes", C.c_size_t),
                ("o_mode", C.c_int), ("column_split", C.c_int), ("cp_stages", C.c_int), ("cp_smem_bytes", C.c_size_t)]


class ChunkDeltaHArgs(C.Structure):
    _fields_ = ([("batch", Batch)] + [(n, Tensor) for n in ("k", "w", "u", "g", "gk", "state", "h", "v_new",
                                                             "state_out", "checkpoints")]
                + [("checkpoint_every", C.c_int), ("cp_workspace", C.c_void_p), ("cp_workspace_bytes", C.c_size_t)])


# C name -> mirror, for the layout test
MIRRORS = {
    "gdn_tensor": Tensor, "gdn_device_info": DeviceInfo, "gdn_prefill_shape": PrefillShape,
    "gdn_prefill_bucket": PrefillBucket, "gdn_prefill_io": PrefillIO, "gdn_forward_args": ForwardArgs,
    "gdn_qkv_split_args": QkvSplitArgs, "gdn_qkv_split_config": QkvSplitConfig, "gdn_batch": Batch,
    "gdn_batch_setup_args": BatchSetupArgs, "gdn_scan_config": ScanConfig, "gdn_chunk_delta_h_args": ChunkDeltaHArgs,
}
