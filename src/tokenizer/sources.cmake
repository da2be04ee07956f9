# Sources of src/tokenizer/.
set(M40_TOKENIZER_SOURCES
    tokenizer/unicode.c
    tokenizer/unicode_data.c
    tokenizer/hashmap.c
    tokenizer/pretok.c
    tokenizer/pretok_custom.c
    tokenizer/pretok_run.c
    tokenizer/vocab.c
    tokenizer/vocab_special.c
    tokenizer/spm.c
    tokenizer/bpe.c
    tokenizer/encode.c
    tokenizer/decode.c
    tokenizer/vocab_gguf.c)
