# Sources of src/gguf/ (GGUF reader, validation, writer).
set(M40_GGUF_SOURCES)
