# Sources of src/cli/: the m40-llm binary (not part of libm40).
set(M40_CLI_SOURCES
  cli/main.c
  cli/flags.c
  cli/default_model.c
  cli/models_dir.c
  cli/cmd_info.c
  cli/cmd_synth.c
  cli/cmd_generate.c
  cli/cmd_chat.c
  cli/cmd_bench.c
  cli/bench_contend.c
  cli/bench_batch.c
  cli/cmd_tokenize.c
  cli/cmd_perplexity.c
  cli/cmd_chat_template.c
  cli/cmd_serve.c
)
