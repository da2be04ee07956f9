# Tests of src/gguf/.
#
# test_gguf reads the real vocabulary files in tests/fixtures/vocab
# (llama.cpp's, MIT); it takes their directory as its argument and fails
# saying so when the directory is missing.
m40_add_test(test_gguf_writer test_gguf_writer.c)

add_executable(test_gguf test_gguf.c)
target_link_libraries(test_gguf PRIVATE m40)
add_test(NAME test_gguf COMMAND test_gguf ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/vocab)

# The fuzz target's harness, run as a plain program over the seed corpus on
# every build (so it is compiled and exercised by gcc and under ASan too).
add_executable(fuzz_gguf_replay fuzz/fuzz_gguf.c)
target_compile_definitions(fuzz_gguf_replay PRIVATE M40_FUZZ_REPLAY)
target_link_libraries(fuzz_gguf_replay PRIVATE m40)
add_test(NAME fuzz_gguf_seeds
         COMMAND fuzz_gguf_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/gguf)

# libFuzzer target: -DM40_FUZZ=ON with clang (scripts/fuzz-gguf.sh). It
# compiles the reader's sources itself so that only they carry the fuzzer's
# coverage instrumentation.
option(M40_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(M40_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "M40_FUZZ=ON needs clang (CC=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()
  set(_src ${PROJECT_SOURCE_DIR}/src)
  add_executable(fuzz_gguf fuzz/fuzz_gguf.c ${_src}/gguf/gguf.c ${_src}/util/err.c
                           ${_src}/quant/ggml_types.c)
  target_include_directories(fuzz_gguf PRIVATE ${_src})
  target_compile_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined
                                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fuzz_gguf PRIVATE -fsanitize=fuzzer,address,undefined)
  add_test(NAME fuzz_gguf_smoke
           COMMAND fuzz_gguf -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/gguf)
endif()
