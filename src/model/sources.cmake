# Sources of src/model/: config and weights from a GGUF, named shapes, synth.
set(M40_MODEL_SOURCES model/model.c model/shapes.c model/synth.c)
