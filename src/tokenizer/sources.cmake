# Sources of src/tokenizer/.
set(M40_TOKENIZER_SOURCES)
