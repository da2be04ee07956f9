# Tests of src/sampling/.
m40_add_test(test_sampling test_sampling.c)
