# Sources of src/gguf/ (GGUF reader, validation, writer).
set(M40_GGUF_SOURCES gguf/gguf.c gguf/gguf_writer.c)
