# Sources of src/chat/.
set(M40_CHAT_SOURCES)
