/* test_chat_tools.c - tool calls in chats (chat/tools.h), against what
 * docs/tool-calls.md states: which format a template's model writes, how
 * the messages reach a template with and without tools support, how calls
 * are read from replies and how much of a reply may stream. */
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/tools.h"
#include "check.h"
#include "util/file.h"

#ifndef M40_CHAT_FIXTURES
#define M40_CHAT_FIXTURES "tests/fixtures/chat"
#endif

static char *fixture_template(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/templates/%s", M40_CHAT_FIXTURES, name);
    char *text = NULL;
    m40_err err = {0};
    if (m40_read_file(path, &text, NULL, &err))
        fprintf(stderr, "%s\n", err.msg);
    return text;
}

static void test_formats_of_templates(void) {
    struct {
        const char *file;
        int renders;
        m40_tool_format f;
    } cases[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", 1, M40_TOOLS_HERMES},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", 1, M40_TOOLS_LLAMA3},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", 1, M40_TOOLS_MISTRAL},
        {"SmolLM2-135M-Instruct.jinja", 0, M40_TOOLS_HERMES},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = fixture_template(cases[i].file);
        CHECK(src != NULL);
        int renders = -1;
        m40_tool_format f = 99;
        m40_chat_tools_of(src, &renders, &f);
        CHECK(renders == cases[i].renders && f == cases[i].f);
        free(src);
    }
    int renders = -1;
    m40_tool_format f = 99;
    m40_chat_tools_of(NULL, &renders, &f); /* the ChatML fallback */
    CHECK(renders == 0 && f == M40_TOOLS_HERMES);
}

/* Splits text; returns the calls' "name|arguments" joined by ";" into out. */
static void parse(m40_tool_format f, const char *text, char *content, char *calls_out) {
    char *c = NULL;
    cJSON *calls = NULL;
    m40_err err = {0};
    CHECK(m40_chat_tools_parse(f, text, strlen(text), &c, &calls, &err) == 0);
    snprintf(content, 256, "%s", c ? c : "(null)");
    calls_out[0] = '\0';
    const cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        CHECK(cJSON_IsString(id) && !strncmp(id->valuestring, "call_", 5));
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(call, "type")->valuestring, "function"));
        size_t n = strlen(calls_out);
        snprintf(calls_out + n, 256 - n, "%s%s|%s", n ? ";" : "",
                 cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring,
                 cJSON_GetObjectItemCaseSensitive(fn, "arguments")->valuestring);
    }
    free(c);
    cJSON_Delete(calls);
}

static void test_parse(void) {
    char content[256], calls[256];
    parse(M40_TOOLS_HERMES,
          "Let me look.\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": "
          "\"Oslo\"}}\n</tool_call>",
          content, calls);
    CHECK(!strcmp(content, "Let me look.") && !strcmp(calls, "w|{\"city\":\"Oslo\"}"));
    /* two calls; the second unterminated (the reply ended inside it) */
    parse(M40_TOOLS_HERMES,
          "<tool_call>{\"name\":\"a\",\"arguments\":{}}</"
          "tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\"}",
          content, calls);
    CHECK(!strcmp(content, "") && !strcmp(calls, "a|{};b|{\"x\":1}"));
    /* a call whose JSON does not parse stays text */
    parse(M40_TOOLS_HERMES, "x <tool_call>{oops</tool_call> y", content, calls);
    CHECK(!strcmp(content, "x <tool_call>{oops</tool_call> y") && !strcmp(calls, ""));
    parse(M40_TOOLS_HERMES, "no calls here", content, calls);
    CHECK(!strcmp(content, "no calls here") && !strcmp(calls, ""));
    parse(M40_TOOLS_LLAMA3, "{\"name\": \"w\", \"parameters\": {\"c\": 1}}", content, calls);
    CHECK(!strcmp(content, "") && !strcmp(calls, "w|{\"c\":1}"));
    parse(M40_TOOLS_LLAMA3,
          "<|python_tag|>{\"name\":\"a\",\"parameters\":{}}; {\"name\":\"b\",\"parameters\":{}}",
          content, calls);
    CHECK(!strcmp(content, "") && !strcmp(calls, "a|{};b|{}"));
    parse(M40_TOOLS_LLAMA3, "{\"name\":\"a\",\"parameters\":{}} and then text", content, calls);
    CHECK(!strcmp(content, "{\"name\":\"a\",\"parameters\":{}} and then text") &&
          !strcmp(calls, ""));
    parse(M40_TOOLS_MISTRAL, "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {\"q\": \"x\"}}]",
          content, calls);
    CHECK(!strcmp(content, "") && !strcmp(calls, "w|{\"q\":\"x\"}"));
    parse(M40_TOOLS_MISTRAL,
          " [{\"name\":\"a\",\"arguments\":{}},{\"name\":\"b\",\"arguments\":{}}]", content, calls);
    CHECK(!strcmp(calls, "a|{};b|{}"));
    parse(M40_TOOLS_MISTRAL, "[1, 2] is a list", content, calls);
    CHECK(!strcmp(content, "[1, 2] is a list") && !strcmp(calls, ""));
}

static void test_hold(void) {
    const char *t = "Sure.<tool_call>{...";
    CHECK(m40_chat_tools_hold(M40_TOOLS_HERMES, t, strlen(t)) == 5);
    t = "Sure. <tool_"; /* a marker may be starting */
    CHECK(m40_chat_tools_hold(M40_TOOLS_HERMES, t, strlen(t)) == 6);
    t = "Sure. <b>";
    CHECK(m40_chat_tools_hold(M40_TOOLS_HERMES, t, strlen(t)) == strlen(t));
    CHECK(m40_chat_tools_hold(M40_TOOLS_LLAMA3, "  {\"na", 6) == 0);
    CHECK(m40_chat_tools_hold(M40_TOOLS_LLAMA3, "  ", 2) == 0);
    CHECK(m40_chat_tools_hold(M40_TOOLS_LLAMA3, "<|pyth", 6) == 0);
    CHECK(m40_chat_tools_hold(M40_TOOLS_LLAMA3, "Hello", 5) == 5);
    CHECK(m40_chat_tools_hold(M40_TOOLS_MISTRAL, "[{", 2) == 0);
    CHECK(m40_chat_tools_hold(M40_TOOLS_MISTRAL, "ok [TOOL", 8) == 3);
}

static const char k_tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
static const char k_round_trip[] =
    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in \"},"
    "{\"type\":\"text\",\"text\":\"Oslo?\"}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": "
    "\\\"Oslo\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"c\\\": 4}\"}]";

static void test_prepare_without_template_support(void) {
    cJSON *tools = cJSON_Parse(k_tools), *msgs = cJSON_Parse(k_round_trip), *out = NULL;
    m40_err err = {0};
    CHECK(m40_chat_tools_prepare(msgs, tools, 0, &out, &err) == 0);
    CHECK(cJSON_GetArraySize(out) == 4); /* a system message first */
    const char *sys = cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "content")->valuestring;
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "role")->valuestring, "system"));
    CHECK_CONTAINS(sys, "<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"");
    CHECK_CONTAINS(sys, "<tool_call>");
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(out, 1), "content")->valuestring,
                  "Weather in Oslo?")); /* text parts joined */
    const cJSON *a = cJSON_GetArrayItem(out, 2);
    CHECK(!strcmp(cJSON_GetObjectItem(a, "content")->valuestring,
                  "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
                  "</tool_call>"));
    CHECK(cJSON_GetObjectItem(a, "tool_calls") == NULL);
    const cJSON *t = cJSON_GetArrayItem(out, 3);
    CHECK(!strcmp(cJSON_GetObjectItem(t, "role")->valuestring, "user"));
    CHECK(!strcmp(cJSON_GetObjectItem(t, "content")->valuestring,
                  "<tool_response>\n{\"c\": 4}\n</tool_response>"));
    cJSON_Delete(out);
    /* a system message of the conversation's own keeps its text first */
    cJSON *with_sys = cJSON_Parse("[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                  "{\"role\":\"user\",\"content\":\"hi\"}]");
    CHECK(m40_chat_tools_prepare(with_sys, tools, 0, &out, &err) == 0);
    CHECK(cJSON_GetArraySize(out) == 2);
    const char *s2 = cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "content")->valuestring;
    CHECK(!strncmp(s2, "Be brief.\n\n# Tools", 18));
    cJSON_Delete(out);
    cJSON_Delete(with_sys);
    cJSON_Delete(tools);
    cJSON_Delete(msgs);
}

/* Qwen 2.5's own template renders the tools and the earlier call, its
 * arguments as an object (tojson of a string would quote it twice). */
static void test_qwen_template_renders_tools(void) {
    char *src = fixture_template("Qwen-Qwen2.5-7B-Instruct.jinja");
    cJSON *tools = cJSON_Parse(k_tools), *msgs = cJSON_Parse(k_round_trip), *out = NULL;
    m40_err err = {0};
    CHECK(src && m40_chat_tools_prepare(msgs, tools, 1, &out, &err) == 0);
    cJSON *vars = cJSON_CreateObject();
    cJSON_AddItemToObject(vars, "tools", cJSON_Duplicate(tools, 1));
    char *text = NULL;
    size_t len = 0;
    CHECK(src && m40_chat_apply(src, out, 1, vars, &text, &len, &err) == 0);
    CHECK_CONTAINS(text,
                   "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"");
    CHECK_CONTAINS(text, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                         "\"Oslo\"}}\n</tool_call>");
    CHECK_CONTAINS(text, "<tool_response>\n{\"c\": 4}\n</tool_response>");
    CHECK_CONTAINS(text, "Weather in Oslo?");
    free(text);
    cJSON_Delete(vars);
    cJSON_Delete(out);
    cJSON_Delete(tools);
    cJSON_Delete(msgs);
    free(src);
}

int main(void) {
    test_formats_of_templates();
    test_parse();
    test_hold();
    test_prepare_without_template_support();
    test_qwen_template_renders_tools();
    return check_report();
}
