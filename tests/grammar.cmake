# Tests of src/grammar/.
m40_add_test(test_grammar test_grammar.c)
m40_add_test(test_json_schema test_json_schema.c)
