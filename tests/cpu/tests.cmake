# CPU tests: the float64 reference (the oracle of every GPU test) and the host API.
gdn_add_test(test_ref_basics LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ref_basics.c)
gdn_add_test(test_ref_chunked LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ref_chunked.c)
gdn_add_test(test_api LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api.c)
gdn_add_test(test_qkv_split_api LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_qkv_split_api.c)
gdn_add_test(test_layer_ops_api LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layer_ops_api.c)
gdn_add_test(test_core_api LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_core_api.c)
gdn_add_test(test_layer_ref LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_layer_ref.c)
# Validation of the whole API (plans included) without a device: links the CUDA library.
if(GDN_ENABLE_CUDA)
  gdn_add_test(test_validation LABEL cpu SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_validation.c)
  target_link_libraries(test_validation PRIVATE gdngraph)
endif()
