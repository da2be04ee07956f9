# Tests of src/tokenizer/.
