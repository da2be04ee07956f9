# Tests of src/grammar/.
m40_add_test(test_grammar test_grammar.c)
m40_add_test(test_json_schema test_json_schema.c)

# The cost of a grammar per token: built, not a test (docs/grammar.md).
add_executable(bench_grammar bench/bench_grammar.c)
target_link_libraries(bench_grammar PRIVATE m40)

# The fuzz target's harness, run as a plain program over the seed corpus on
# every build (so gcc and ASan builds compile and exercise it too).
add_executable(fuzz_grammar_replay fuzz/fuzz_grammar.c)
target_compile_definitions(fuzz_grammar_replay PRIVATE M40_FUZZ_REPLAY)
target_link_libraries(fuzz_grammar_replay PRIVATE m40)
add_test(NAME fuzz_grammar_seeds
         COMMAND fuzz_grammar_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/grammar)

# libFuzzer target: -DM40_FUZZ=ON with clang (scripts/fuzz-grammar.sh),
# compiling the grammar sources itself so only they carry the coverage
# instrumentation. (M40_FUZZ and its compiler check are chat.cmake's.)
if(M40_FUZZ)
  include(${PROJECT_SOURCE_DIR}/src/grammar/sources.cmake)
  set(_grammar_src)
  foreach(_f ${M40_GRAMMAR_SOURCES})
    list(APPEND _grammar_src ${PROJECT_SOURCE_DIR}/src/${_f})
  endforeach()
  add_executable(fuzz_grammar fuzz/fuzz_grammar.c ${_grammar_src}
                              ${PROJECT_SOURCE_DIR}/src/util/err.c
                              ${PROJECT_SOURCE_DIR}/src/util/strbuf.c)
  target_include_directories(fuzz_grammar PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(fuzz_grammar PRIVATE PkgConfig::CJSON m)
  target_compile_options(fuzz_grammar PRIVATE -fsanitize=fuzzer,address,undefined
                                              -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fuzz_grammar PRIVATE -fsanitize=fuzzer,address,undefined)
  add_test(NAME fuzz_grammar_smoke
           COMMAND fuzz_grammar -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds/grammar)
endif()
