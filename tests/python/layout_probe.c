/* Prints sizeof / offsetof of every C struct the Python package mirrors with ctypes,
 * one "struct.field offset" line each, for tests/python/test_layout.py to compare. */
#include <stddef.h>
#include <stdio.h>
#include "gdn/batch_setup.h"
#include "gdn/chunk_delta_h.h"
#include "gdn/forward.h"
#include "gdn/prefill.h"
#include "gdn/qkv_split.h"
#include "gdn/reference.h"

#define SIZE(s) printf(#s ".sizeof %zu\n", sizeof(s))
#define OFF(s, f) printf(#s "." #f " %zu\n", offsetof(s, f))

int main(void) {
  SIZE(gdn_tensor);
  OFF(gdn_tensor, data); OFF(gdn_tensor, dtype); OFF(gdn_tensor, rank); OFF(gdn_tensor, sizes); OFF(gdn_tensor, strides);

  SIZE(gdn_device_info);
  OFF(gdn_device_info, device); OFF(gdn_device_info, cc_major); OFF(gdn_device_info, cc_minor);
  OFF(gdn_device_info, sm_count); OFF(gdn_device_info, smem_per_block_optin); OFF(gdn_device_info, smem_per_sm);
  OFF(gdn_device_info, l2_bytes); OFF(gdn_device_info, max_threads_per_sm);

  SIZE(gdn_prefill_shape);
  OFF(gdn_prefill_shape, Hk); OFF(gdn_prefill_shape, Hv); OFF(gdn_prefill_shape, K); OFF(gdn_prefill_shape, V);
  OFF(gdn_prefill_shape, dtype); OFF(gdn_prefill_shape, use_g); OFF(gdn_prefill_shape, use_gk);
  OFF(gdn_prefill_shape, l2norm_qk); OFF(gdn_prefill_shape, scale); OFF(gdn_prefill_shape, gate);

  SIZE(gdn_prefill_bucket);
  OFF(gdn_prefill_bucket, max_tokens); OFF(gdn_prefill_bucket, max_seqs);

  SIZE(gdn_prefill_io);
  OFF(gdn_prefill_io, q); OFF(gdn_prefill_io, k); OFF(gdn_prefill_io, v); OFF(gdn_prefill_io, a);
  OFF(gdn_prefill_io, b); OFF(gdn_prefill_io, A_log); OFF(gdn_prefill_io, dt_bias); OFF(gdn_prefill_io, gk);
  OFF(gdn_prefill_io, state); OFF(gdn_prefill_io, o); OFF(gdn_prefill_io, g); OFF(gdn_prefill_io, beta);
  OFF(gdn_prefill_io, checkpoints); OFF(gdn_prefill_io, checkpoint_every); OFF(gdn_prefill_io, norm_z);
  OFF(gdn_prefill_io, norm_weight); OFF(gdn_prefill_io, norm_eps);

  SIZE(gdn_forward_args);
  OFF(gdn_forward_args, q); OFF(gdn_forward_args, k); OFF(gdn_forward_args, v); OFF(gdn_forward_args, o);
  OFF(gdn_forward_args, a); OFF(gdn_forward_args, b); OFF(gdn_forward_args, A_log); OFF(gdn_forward_args, dt_bias);
  OFF(gdn_forward_args, g); OFF(gdn_forward_args, beta); OFF(gdn_forward_args, gk);
  OFF(gdn_forward_args, cu_seqlens); OFF(gdn_forward_args, state_in); OFF(gdn_forward_args, state_out);
  OFF(gdn_forward_args, slots_in); OFF(gdn_forward_args, slots_out); OFF(gdn_forward_args, checkpoints);
  OFF(gdn_forward_args, checkpoint_offsets); OFF(gdn_forward_args, checkpoint_every);

  SIZE(gdn_qkv_split_args);
  OFF(gdn_qkv_split_args, mixed_qkv); OFF(gdn_qkv_split_args, q); OFF(gdn_qkv_split_args, k); OFF(gdn_qkv_split_args, v);

  SIZE(gdn_qkv_split_config);
  OFF(gdn_qkv_split_config, layout); OFF(gdn_qkv_split_config, elem_bytes); OFF(gdn_qkv_split_config, vec_bytes);
  OFF(gdn_qkv_split_config, block_x); OFF(gdn_qkv_split_config, block_y); OFF(gdn_qkv_split_config, rows_per_thread);
  OFF(gdn_qkv_split_config, tile_tokens); OFF(gdn_qkv_split_config, tile_channels); OFF(gdn_qkv_split_config, smem_bytes);
  OFF(gdn_qkv_split_config, dtype); OFF(gdn_qkv_split_config, D); OFF(gdn_qkv_split_config, Hk);
  OFF(gdn_qkv_split_config, K); OFF(gdn_qkv_split_config, Hv); OFF(gdn_qkv_split_config, V);

  SIZE(gdn_batch);
  OFF(gdn_batch, cu_seqlens); OFF(gdn_batch, slots); OFF(gdn_batch, slots_out); OFF(gdn_batch, chunk_offsets);
  OFF(gdn_batch, chunk_seq); OFF(gdn_batch, header); OFF(gdn_batch, checkpoint_offsets); OFF(gdn_batch, segments);
  OFF(gdn_batch, seq_segments); OFF(gdn_batch, max_seqs); OFF(gdn_batch, max_tokens); OFF(gdn_batch, max_chunks);
  OFF(gdn_batch, max_segments); OFF(gdn_batch, when_cut);

  SIZE(gdn_batch_setup_args);
  OFF(gdn_batch_setup_args, cu_seqlens); OFF(gdn_batch_setup_args, cu_seqlens64); OFF(gdn_batch_setup_args, slots); OFF(gdn_batch_setup_args, num_seqs_dev); OFF(gdn_batch_setup_args, num_seqs); OFF(gdn_batch_setup_args, max_seqs); OFF(gdn_batch_setup_args, max_tokens); OFF(gdn_batch_setup_args, num_slots); OFF(gdn_batch_setup_args, workspace); OFF(gdn_batch_setup_args, workspace_bytes); OFF(gdn_batch_setup_args, error_record); OFF(gdn_batch_setup_args, slots_identity); OFF(gdn_batch_setup_args, slots_out); OFF(gdn_batch_setup_args, slots_out_mode); OFF(gdn_batch_setup_args, slots_out_select); OFF(gdn_batch_setup_args, num_slots_out); OFF(gdn_batch_setup_args, state_aliased); OFF(gdn_batch_setup_args, checkpoint_offsets); OFF(gdn_batch_setup_args, checkpoint_every); OFF(gdn_batch_setup_args, num_checkpoints); OFF(gdn_batch_setup_args, cp_min_chunks); OFF(gdn_batch_setup_args, cp_units); OFF(gdn_batch_setup_args, cp_heads); OFF(gdn_batch_setup_args, cp_max_pairs);

  SIZE(gdn_scan_config);
  OFF(gdn_scan_config, bv); OFF(gdn_scan_config, num_warps); OFF(gdn_scan_config, num_stages);
  OFF(gdn_scan_config, smem_bytes); OFF(gdn_scan_config, o_mode); OFF(gdn_scan_config, column_split);
  OFF(gdn_scan_config, cp_stages); OFF(gdn_scan_config, cp_smem_bytes);

  SIZE(gdn_chunk_delta_h_args);
  OFF(gdn_chunk_delta_h_args, batch); OFF(gdn_chunk_delta_h_args, k); OFF(gdn_chunk_delta_h_args, w);
  OFF(gdn_chunk_delta_h_args, u); OFF(gdn_chunk_delta_h_args, g); OFF(gdn_chunk_delta_h_args, gk);
  OFF(gdn_chunk_delta_h_args, state); OFF(gdn_chunk_delta_h_args, h); OFF(gdn_chunk_delta_h_args, v_new);
  OFF(gdn_chunk_delta_h_args, state_out); OFF(gdn_chunk_delta_h_args, checkpoints);
  OFF(gdn_chunk_delta_h_args, checkpoint_every); OFF(gdn_chunk_delta_h_args, cp_workspace);
  OFF(gdn_chunk_delta_h_args, cp_workspace_bytes);

  /* the CPU reference, which tests/python/test_reference.py calls */
  SIZE(gdn_ref_shape);
  OFF(gdn_ref_shape, num_seqs); OFF(gdn_ref_shape, cu_seqlens); OFF(gdn_ref_shape, Hk); OFF(gdn_ref_shape, Hv);
  OFF(gdn_ref_shape, K); OFF(gdn_ref_shape, V);
  SIZE(gdn_ref_prefill_inputs);
  OFF(gdn_ref_prefill_inputs, q); OFF(gdn_ref_prefill_inputs, k); OFF(gdn_ref_prefill_inputs, v);
  OFF(gdn_ref_prefill_inputs, a); OFF(gdn_ref_prefill_inputs, b); OFF(gdn_ref_prefill_inputs, A_log);
  OFF(gdn_ref_prefill_inputs, dt_bias); OFF(gdn_ref_prefill_inputs, gk); OFF(gdn_ref_prefill_inputs, use_g);
  OFF(gdn_ref_prefill_inputs, l2norm_qk); OFF(gdn_ref_prefill_inputs, scale);
  return 0;
}
