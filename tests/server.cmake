# Tests of src/server/: `m40-llm serve` on a tiny synth model, driven over HTTP.
add_test(NAME server_api COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/server/test_server.py
                                 $<TARGET_FILE:m40-llm>)
set_tests_properties(server_api PROPERTIES TIMEOUT 300)
