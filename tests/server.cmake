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
# Structured outputs on the default model: 20 JSON schemas through the
# openai client (streamed and not) and ollama's format, validated with
# python jsonschema. Slow on a Debug build: Release only (label slow).
add_test(NAME server_structured
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/server/test_structured.py
                 $<TARGET_FILE:m40-llm>
                 ${PROJECT_SOURCE_DIR}/models/SmolLM2-135M-Instruct.Q4_1.gguf)
set_tests_properties(server_structured PROPERTIES TIMEOUT 900 LABELS slow)
# The chat page at / in headless Chromium (scripts/install-deps.sh installs
# chromium and chromium-driver, scripts/test.sh installs selenium).
add_test(NAME server_chat_page
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/server/test_chat_page.py
                 $<TARGET_FILE:m40-llm>)
set_tests_properties(server_chat_page PROPERTIES TIMEOUT 300)
