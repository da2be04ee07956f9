# Tests of src/tokenizer/. The vocabularies and their test suite are
# llama.cpp's (MIT, tests/fixtures/vocab/LICENSE-llama.cpp).
set(M40_VOCAB_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/vocab)

# llama.cpp's tokenizer suite (4 vocabularies, every case, no skips).
add_executable(test_tokenizer_suite test_tokenizer_suite.c)
target_link_libraries(test_tokenizer_suite PRIVATE m40)
add_test(NAME test_tokenizer_suite COMMAND test_tokenizer_suite ${M40_VOCAB_DIR})

# The CLI, as a user runs it: the suites, llama-tokenize's output formats,
# and its errors.
foreach(_v llama-spm llama-bpe qwen2 gpt-2)
  add_test(NAME cli_tokenize_suite_${_v}
           COMMAND m40-llm tokenize -m ${M40_VOCAB_DIR}/ggml-vocab-${_v}.gguf
                   --suite ${M40_VOCAB_DIR}/ggml-vocab-${_v}.gguf)
endforeach()
add_test(NAME cli_tokenize_ids
         COMMAND m40-llm tokenize -m ${M40_VOCAB_DIR}/ggml-vocab-llama-spm.gguf
                 -p "Hello world" --ids)
set_tests_properties(cli_tokenize_ids PROPERTIES PASS_REGULAR_EXPRESSION "^\\[1, 15043, 3186\\]\n$")
add_test(NAME cli_tokenize_pieces
         COMMAND m40-llm tokenize -m ${M40_VOCAB_DIR}/ggml-vocab-llama-bpe.gguf
                 -p "Hello<|eot_id|>" --parse-special --no-bos)
set_tests_properties(cli_tokenize_pieces PROPERTIES PASS_REGULAR_EXPRESSION
                     "^  9906 -> 'Hello'\n128009 -> '<\\|eot_id\\|>'\n$")
add_test(NAME cli_tokenize_suite_mismatch
         COMMAND m40-llm tokenize -m ${M40_VOCAB_DIR}/ggml-vocab-gpt-2.gguf
                 --suite ${M40_VOCAB_DIR}/ggml-vocab-llama-bpe.gguf)
set_tests_properties(cli_tokenize_suite_mismatch PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli_tokenize_usage COMMAND m40-llm tokenize -p x)
set_tests_properties(cli_tokenize_usage PROPERTIES PASS_REGULAR_EXPRESSION
                     "m40-llm: tokenize: -m GGUF is required")

# Encode/decode speed: built, not a test (scripts/bench-tokenizer.sh runs it).
add_executable(bench_tokenizer bench/bench_tokenizer.c)
target_link_libraries(bench_tokenizer PRIVATE m40)
target_compile_definitions(bench_tokenizer PRIVATE M40_VOCAB_DIR="${M40_VOCAB_DIR}")

# Rules on small vocabularies built in the test (no fixtures).
m40_add_test(test_tokenizer test_tokenizer.c)

# SPM's chunked merging gives the ids of merging the whole fragment.
add_executable(test_tokenizer_spm_chunks test_tokenizer_spm_chunks.c)
target_link_libraries(test_tokenizer_spm_chunks PRIVATE m40)
add_test(NAME test_tokenizer_spm_chunks COMMAND test_tokenizer_spm_chunks ${M40_VOCAB_DIR})

# The streaming detokenizer on multi-byte text: random splits, valid UTF-8.
add_executable(test_tokenizer_stream test_tokenizer_stream.c)
target_link_libraries(test_tokenizer_stream PRIVATE m40)
add_test(NAME test_tokenizer_stream COMMAND test_tokenizer_stream ${M40_VOCAB_DIR})

# Unicode tables vs PCRE2, llama.cpp's lenient UTF-8, the GPT-2 byte map.
m40_add_test(test_tokenizer_unicode test_tokenizer_unicode.c)

# The fuzz target's harness as a plain program, replayed over llama.cpp's
# suite inputs on every build (so gcc and ASan builds exercise it too).
set(_vocab_inputs)
foreach(_v llama-spm llama-bpe qwen2 gpt-2)
  list(APPEND _vocab_inputs ${M40_VOCAB_DIR}/ggml-vocab-${_v}.gguf.inp)
endforeach()
add_executable(fuzz_tokenizer_replay fuzz/fuzz_tokenizer.c)
target_compile_definitions(fuzz_tokenizer_replay PRIVATE M40_FUZZ_REPLAY
                                                         M40_VOCAB_DIR="${M40_VOCAB_DIR}")
target_link_libraries(fuzz_tokenizer_replay PRIVATE m40)
add_test(NAME fuzz_tokenizer_replay COMMAND fuzz_tokenizer_replay ${_vocab_inputs})

# libFuzzer target: -DM40_FUZZ=ON with clang (scripts/fuzz-tokenizer.sh).
# It compiles the tokenizer's sources (and the GGUF reader that loads the
# vocabularies) itself, so they carry the fuzzer's coverage instrumentation.
option(M40_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(M40_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "M40_FUZZ=ON needs clang (CC=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()
  set(_src ${PROJECT_SOURCE_DIR}/src)
  include(${_src}/tokenizer/sources.cmake)
  list(TRANSFORM M40_TOKENIZER_SOURCES PREPEND ${_src}/ OUTPUT_VARIABLE _tok_sources)
  add_executable(fuzz_tokenizer fuzz/fuzz_tokenizer.c ${_tok_sources} ${_src}/gguf/gguf.c
                                ${_src}/util/err.c ${_src}/quant/ggml_types.c)
  target_include_directories(fuzz_tokenizer PRIVATE ${_src})
  target_compile_definitions(fuzz_tokenizer PRIVATE M40_VOCAB_DIR="${M40_VOCAB_DIR}")
  target_compile_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined
                                                -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fuzz_tokenizer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_tokenizer PRIVATE PkgConfig::PCRE2 m)
  add_test(NAME fuzz_tokenizer_smoke COMMAND fuzz_tokenizer -runs=2000 -seed=1)
endif()
