# Tests of src/server/: `m40-llm serve` on a tiny synth model, driven over HTTP.
add_test(NAME server_api COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/server/test_server.py
                                 $<TARGET_FILE:m40-llm>)
set_tests_properties(server_api PROPERTIES TIMEOUT 300)
# The official openai client against the server, and a 200-request soak
# (scripts/test.sh installs the pinned openai package).
add_test(NAME server_clients
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/server/test_server_clients.py
                 $<TARGET_FILE:m40-llm>
                 ${PROJECT_SOURCE_DIR}/models/SmolLM2-135M-Instruct.Q4_1.gguf)
set_tests_properties(server_clients PROPERTIES TIMEOUT 300)
