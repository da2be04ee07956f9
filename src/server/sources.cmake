# Sources of src/server/: the HTTP server (`m40-llm serve`) on libmicrohttpd.
set(M40_SERVER_SOURCES
  server/jobs.c
  server/metrics.c
  server/ollama.c
  server/routes.c
  server/server.c
)

# The chat page served at / (chat_page.html): embedded as a byte array,
# written at configure time and rewritten only when the page changes.
set(_m40_page ${CMAKE_CURRENT_LIST_DIR}/chat_page.html)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_m40_page})
file(READ ${_m40_page} _m40_page_hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _m40_page_bytes "${_m40_page_hex}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/chat_page.c.tmp
     "/* Generated from src/server/chat_page.html by src/server/sources.cmake. */\n"
     "const char m40_chat_page[] = {${_m40_page_bytes} 0x00};\n"
     "const unsigned long m40_chat_page_len = sizeof m40_chat_page - 1;\n")
configure_file(${CMAKE_CURRENT_BINARY_DIR}/chat_page.c.tmp ${CMAKE_CURRENT_BINARY_DIR}/chat_page.c
               COPYONLY)
list(APPEND M40_SERVER_SOURCES ${CMAKE_CURRENT_BINARY_DIR}/chat_page.c)
