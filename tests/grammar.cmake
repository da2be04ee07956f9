# Tests of src/grammar/.
m40_add_test(test_grammar test_grammar.c)
m40_add_test(test_json_schema test_json_schema.c)

# The cost of a grammar per token: built, not a test (docs/grammar.md).
add_executable(bench_grammar bench/bench_grammar.c)
target_link_libraries(bench_grammar PRIVATE m40)
