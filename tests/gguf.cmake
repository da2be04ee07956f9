# Tests of src/gguf/.
