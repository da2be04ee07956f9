/* tools.h - tool calls in a chat: how a model's template takes the tools
 * and the calls of earlier turns, and how its replies write new calls.
 *
 * Three ways of writing a call are known (docs/tool-calls.md):
 *   HERMES   <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
 *            (Qwen 2.5 / 3, Hermes, SmolLM3, and our fallback)
 *   LLAMA3   {"name": ..., "parameters": {...}} as the whole reply
 *            (Llama 3.1 / 3.2 / 3.3's JSON tool calling)
 *   MISTRAL  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
 * A template that renders `tools` itself gets them, and earlier calls with
 * their arguments as objects (as transformers passes them). Any other
 * template gets the tools described in a system message and the earlier
 * calls and results written into the turns' text, in HERMES form.
 *
 * Calls come out in OpenAI's shape: [{"id": "call_N", "type": "function",
 * "function": {"name": ..., "arguments": "<JSON text>"}}].
 */
#ifndef M40_CHAT_TOOLS_H
#define M40_CHAT_TOOLS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util/err.h"

typedef enum m40_tool_format {
    M40_TOOLS_HERMES = 0,
    M40_TOOLS_LLAMA3 = 1,
    M40_TOOLS_MISTRAL = 2,
} m40_tool_format;

/* From a template's source (NULL: the ChatML fallback): whether it renders
 * `tools` and earlier `tool_calls` itself, and the format its model writes
 * calls in (HERMES when it does not render tools). */
void m40_chat_tools_of(const char *src, int *renders_tools, m40_tool_format *format);

/* The messages as the template should see them (a new array; the caller
 * deletes it). renders_tools: tool_calls' arguments strings parsed into
 * objects, the rest as given. Otherwise: the tools (if any) described in a
 * system message (the first one, extended, or a new one), each assistant's
 * tool_calls written after its content in HERMES form, and tool results as
 * user turns in <tool_response> tags. Content given as an array of text
 * parts is joined. */
int m40_chat_tools_prepare(const cJSON *messages, const cJSON *tools, int renders_tools,
                           cJSON **out, m40_err *err);

/* Splits a reply into its content (malloc'd, NUL-terminated: the text
 * outside the calls, trailing blanks removed) and its calls (*calls: an
 * array, NULL when there are none). A call whose JSON does not parse stays
 * content. */
int m40_chat_tools_parse(m40_tool_format f, const char *text, size_t len, char **content,
                         cJSON **calls, m40_err *err);

/* How many bytes of a reply being written may be shown as content: text
 * from where a call may be starting is held (a marker or its beginning at
 * the end; for LLAMA3 a reply whose first character is '{'). */
size_t m40_chat_tools_hold(m40_tool_format f, const char *text, size_t len);

/* What a call is wrapped in, for a grammar that allows only calls:
 * before the first call, between calls, after the last, and the key the
 * arguments go under ("arguments" or "parameters"). */
typedef struct m40_tool_wrap {
    const char *open, *sep, *close, *args_key;
} m40_tool_wrap;
m40_tool_wrap m40_chat_tools_wrap(m40_tool_format f);

#endif /* M40_CHAT_TOOLS_H */
