# Sources of src/engine/: the generation loop CLI and server share.
set(M40_ENGINE_SOURCES engine/engine.c engine/sched.c engine/perplexity.c
    engine/kv_store.c)
