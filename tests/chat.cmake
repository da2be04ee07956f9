# Tests of src/chat/.
#
# test_chat_fixtures renders the real chat templates in
# tests/fixtures/chat/templates and compares with Python jinja2's output
# committed beside them (scripts/reference/make_chat_fixtures.py).
m40_add_test(test_chat test_chat.c)

# Tool calls: formats, message preparation, reading calls from replies.
m40_add_test(test_chat_tools test_chat_tools.c)
target_compile_definitions(test_chat_tools PRIVATE
                           M40_CHAT_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures/chat")

add_executable(test_chat_fixtures test_chat_fixtures.c)
target_link_libraries(test_chat_fixtures PRIVATE m40)
add_test(NAME test_chat_fixtures
         COMMAND test_chat_fixtures ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/chat)

# `m40-llm chat-template`, run as a user would (a tiny GGUF is written into
# the build directory).
add_executable(test_chat_cli test_chat_cli.c)
target_link_libraries(test_chat_cli PRIVATE m40)
add_test(NAME test_chat_cli
         COMMAND test_chat_cli $<TARGET_FILE:m40-llm> ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/chat
                 ${CMAKE_CURRENT_BINARY_DIR})

# The fuzz target's harness, run as a plain program over the seed corpus on
# every build (so gcc and ASan builds compile and exercise it too).
add_executable(fuzz_jinja_replay fuzz/fuzz_jinja.c)
target_compile_definitions(fuzz_jinja_replay PRIVATE M40_FUZZ_REPLAY)
target_link_libraries(fuzz_jinja_replay PRIVATE m40)
add_test(NAME fuzz_jinja_seeds
         COMMAND fuzz_jinja_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/jinja)

# libFuzzer target: -DM40_FUZZ=ON with clang (scripts/fuzz-jinja.sh). It
# compiles the chat sources itself so only they carry the coverage
# instrumentation.
option(M40_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(M40_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "M40_FUZZ=ON needs clang (CC=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()
  include(${PROJECT_SOURCE_DIR}/src/chat/sources.cmake)
  set(_chat_src)
  foreach(_f ${M40_CHAT_SOURCES})
    list(APPEND _chat_src ${PROJECT_SOURCE_DIR}/src/${_f})
  endforeach()
  add_executable(fuzz_jinja fuzz/fuzz_jinja.c ${_chat_src} ${PROJECT_SOURCE_DIR}/src/util/err.c)
  target_include_directories(fuzz_jinja PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(fuzz_jinja PRIVATE PkgConfig::CJSON m)
  target_compile_options(fuzz_jinja PRIVATE -fsanitize=fuzzer,address,undefined
                                            -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fuzz_jinja PRIVATE -fsanitize=fuzzer,address,undefined)
  add_test(NAME fuzz_jinja_smoke
           COMMAND fuzz_jinja -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/jinja)
endif()
