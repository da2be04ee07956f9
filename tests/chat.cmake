# Tests of src/chat/.
