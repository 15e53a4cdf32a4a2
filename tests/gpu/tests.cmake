# GPU tests (label gpu): exit 77 (SKIP) without a CUDA device.
gdn_add_test(test_qkv_split LABEL gpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_qkv_split.c)
gdn_add_test(test_conv1d LABEL gpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_conv1d.c)
gdn_add_test(test_gated_rmsnorm LABEL gpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gated_rmsnorm.c)
gdn_add_test(test_linear LABEL gpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_linear.c)
gdn_add_test(test_allreduce LABEL gpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_allreduce.c)
target_link_libraries(test_allreduce PRIVATE NCCL::nccl)
gdn_add_test(test_allreduce_multi LABEL multigpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_allreduce_multi.c)
target_link_libraries(test_allreduce_multi PRIVATE NCCL::nccl pthread)
