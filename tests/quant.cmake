# Tests of src/quant/.
