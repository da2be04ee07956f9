# Sources of src/grammar/: GBNF grammars, JSON schemas to GBNF, and which
# tokens may come next (constrained sampling).
set(M40_GRAMMAR_SOURCES grammar/gbnf.c grammar/json_schema.c grammar/match.c grammar/vocab.c)
