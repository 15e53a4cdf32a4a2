# pytest over tests/python (label `python`): the package from the source tree with the build
# tree's libgdngraph.so. Exits 77 (skip) without python3 + pytest; inside, torch tests skip
# without torch, GPU tests without a device, FLA tests without `fla`.
if(NOT GDN_ENABLE_CUDA)
  return()
endif()
add_executable(gdn_layout_probe ${CMAKE_CURRENT_LIST_DIR}/layout_probe.c)
target_link_libraries(gdn_layout_probe PRIVATE gdngraph_host)
find_program(GDN_PYTHON3 NAMES python3)
if(GDN_PYTHON3)
  add_test(NAME python_pytest COMMAND ${GDN_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_pytest.py)
else()
  add_test(NAME python_pytest COMMAND sh -c "echo 'SKIP: no python3'; exit 77")
endif()
set_tests_properties(python_pytest PROPERTIES LABELS python SKIP_RETURN_CODE 77 TIMEOUT 1500
  ENVIRONMENT "GDNGRAPH_LIBRARY=$<TARGET_FILE:gdngraph_shared>;GDN_LAYOUT_PROBE=$<TARGET_FILE:gdn_layout_probe>;PYTHONPATH=${PROJECT_SOURCE_DIR}/python;PYTHONDONTWRITEBYTECODE=1")
