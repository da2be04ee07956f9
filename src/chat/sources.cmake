# Sources of src/chat/: chat templates (a Jinja subset) -> prompt text.
set(M40_CHAT_SOURCES
  chat/chat.c
  chat/tools.c
  chat/jinja_arena.c
  chat/jinja_eval.c
  chat/jinja_filters.c
  chat/jinja_json.c
  chat/jinja_lex.c
  chat/jinja_methods.c
  chat/jinja_ops.c
  chat/jinja_parse.c
  chat/jinja_unicode.c
  chat/jinja_value.c
)
