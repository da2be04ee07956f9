# Sources of src/server/: the HTTP server (`m40-llm serve`) on libmicrohttpd.
set(M40_SERVER_SOURCES
  server/jobs.c
  server/metrics.c
  server/ollama.c
  server/routes.c
  server/server.c
)
