# Sources of src/quant/ (GGML type table and block formats).
set(M40_QUANT_SOURCES
  quant/fp16.c
  quant/quant.c
  quant/dequant_legacy.c
  quant/dequant_kquants.c
  quant/dequant_iq.c
  quant/iq_grids.c
  quant/quantize_legacy.c
  quant/quantize_kquants.c
)
# The quantizers must evaluate every float expression exactly as written
# (GGML's reference does; a fused multiply-add changes which candidate scale
# wins and so the bytes). C11 mode already forbids contraction in GCC, but
# clang contracts by default wherever -march offers FMA, so say it here.
set_source_files_properties(${M40_QUANT_SOURCES} PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
# The type table holds no float arithmetic: it needs no such flag.
list(APPEND M40_QUANT_SOURCES quant/ggml_types.c)
