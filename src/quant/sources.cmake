# Sources of src/quant/ besides ggml_types.c (GGML block formats).
set(M40_QUANT_SOURCES)
