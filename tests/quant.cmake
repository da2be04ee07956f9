# Tests of src/quant/. test_quant reads the reference fixtures made by
# scripts/reference/make_quant_fixtures.py, so it is registered by hand
# (m40_add_test passes no arguments); it links the same way.
add_executable(test_quant test_quant.c)
target_link_libraries(test_quant PRIVATE m40)
add_test(NAME test_quant COMMAND test_quant ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/quant)
# A missing fixture directory must fail, never pass quietly.
add_test(NAME test_quant_needs_fixtures COMMAND test_quant ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/none)
set_tests_properties(test_quant_needs_fixtures PROPERTIES WILL_FAIL TRUE)
