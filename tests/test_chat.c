/* test_chat.c - unit tests of the chat-template interpreter: the API,
 * expressions and whitespace handling spot checks, errors naming the
 * template line, malformed templates failing cleanly, and the limits that
 * stop runaway templates. (Byte-exactness against jinja2 over real
 * templates and ~100 feature templates is test_chat_fixtures.)
 */
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "check.h"

/* Renders with `vars_json` (may be NULL) and a fixed clock; returns the
 * output (caller frees) or NULL with the error in *err. */
static char *render_opts(const char *tmpl, const char *messages_json, const char *vars_json,
                         const m40_chat_limits *lim, m40_err *err) {
    cJSON *msgs = messages_json ? cJSON_Parse(messages_json) : NULL;
    cJSON *vars = vars_json ? cJSON_Parse(vars_json) : NULL;
    m40_chat_template *t = NULL;
    char *out = NULL;
    size_t n = 0;
    if (m40_chat_template_compile(tmpl, strlen(tmpl), &t, err) == 0) {
        m40_chat_options o = {.extra_vars = vars,
                              .limits = lim,
                              .fixed_now = 1,
                              .now_utc = 1721995200}; /* 2024-07-26 12:00:00 UTC */
        if (m40_chat_template_render(t, msgs, &o, &out, &n, err) == 0)
            CHECK(strlen(out) == n);
        m40_chat_template_free(t);
    }
    cJSON_Delete(msgs);
    cJSON_Delete(vars);
    return out;
}

static char *render(const char *tmpl, m40_err *err) {
    return render_opts(tmpl, "[]", NULL, NULL, err);
}

#define CHECK_RENDER(tmpl, want)                                                              \
    do {                                                                                      \
        m40_err e_ = {0};                                                                     \
        char *o_ = render(tmpl, &e_);                                                         \
        if (!o_)                                                                              \
            fprintf(stderr, "%s:%d: error: %s\n", __FILE__, __LINE__, e_.msg);                \
        else if (strcmp(o_, want))                                                            \
            fprintf(stderr, "%s:%d: got \"%s\" want \"%s\"\n", __FILE__, __LINE__, o_, want); \
        CHECK(o_ && !strcmp(o_, want));                                                       \
        free(o_);                                                                             \
    } while (0)

#define CHECK_ERROR(tmpl, want_msg)       \
    do {                                  \
        m40_err e_ = {0};                 \
        char *o_ = render(tmpl, &e_);     \
        CHECK(o_ == NULL);                \
        CHECK_CONTAINS(e_.msg, want_msg); \
        free(o_);                         \
    } while (0)

static void test_apply_and_fallback(void) {
    cJSON *msgs = cJSON_Parse("[{\"role\":\"system\",\"content\":\"S\"},"
                              "{\"role\":\"user\",\"content\":\"Hi\"}]");
    char *out = NULL;
    size_t n = 0;
    m40_err err = {0};
    CHECK(m40_chat_apply(m40_chat_fallback_template(), msgs, 1, NULL, &out, &n, &err) == 0);
    const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n";
    CHECK(out && !strcmp(out, want) && n == strlen(want));
    free(out);
    CHECK(m40_chat_apply(m40_chat_fallback_template(), msgs, 0, NULL, &out, &n, &err) == 0);
    CHECK(out && n == strlen(want) - strlen("<|im_start|>assistant\n"));
    free(out);
    CHECK(!strcmp(m40_chat_fallback_name(), "ChatML"));

    /* extra variables, and transformers' always-defined tools/documents */
    cJSON *vars = cJSON_Parse("{\"bos_token\":\"<s>\",\"n\":3}");
    CHECK(m40_chat_apply("{{ bos_token }}{{ n + 1 }}{{ tools is none }}{{ documents is none }}"
                         "{{ add_generation_prompt }}{{ messages|length }}",
                         msgs, 1, vars, &out, &n, &err) == 0);
    CHECK(out && !strcmp(out, "<s>4TrueTrueTrue2"));
    free(out);
    cJSON_Delete(vars);

    /* one compile, many renders */
    m40_chat_template *t;
    CHECK(m40_chat_template_compile("{{ messages[0].content }}", 25, &t, &err) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(m40_chat_template_render(t, msgs, NULL, &out, &n, &err) == 0);
        CHECK(out && !strcmp(out, "S"));
        free(out);
    }
    m40_chat_template_free(t);
    m40_chat_template_free(NULL);
    cJSON_Delete(msgs);
}

static void test_values_from_json(void) {
    m40_err err = {0};
    char *o = render_opts("{{ m.i }} {{ m.f }} {{ m.i is integer }} {{ m.f is float }} {{ m.b }} "
                          "{{ m.n }} {{ m.l }} {{ m.d }}|{{ m.dup }}|{{ m.keys()|list }}",
                          "[]",
                          "{\"m\":{\"i\":3,\"f\":2.5,\"b\":true,\"n\":null,\"l\":[1,\"x\"],"
                          "\"d\":{\"k\":\"v\"},\"dup\":1,\"dup\":2}}",
                          NULL, &err);
    CHECK(o && !strcmp(o, "3 2.5 True True True None [1, 'x'] {'k': 'v'}|2|"
                          "['i', 'f', 'b', 'n', 'l', 'd', 'dup']"));
    free(o);
}

static void test_expressions(void) {
    CHECK_RENDER("{{ 1 + 2 * 3 }}|{{ 7 // -2 }}|{{ -7 % 3 }}|{{ 2 ** 0.5 > 1.41 }}|{{ 10 / 4 }}",
                 "7|-4|2|True|2.5");
    CHECK_RENDER("{{ 'ab' ~ 1 ~ none }}|{{ [1, 2] + [3] }}|{{ 'x' * 3 }}", "ab1None|[1, 2, 3]|xxx");
    CHECK_RENDER("{{ 'a' if 0 else 'b' }}|{{ 1 if true }}|{{ [] or 'e' }}|{{ 0 and 1 }}",
                 "b|1|e|0");
    CHECK_RENDER("{{ 'hello'[::-1] }}|{{ [1,2,3][-1] }}|{{ 'héllo'[1] }}|{{ 'abc'[5] }}",
                 "olleh|3|é|");
    CHECK_RENDER("{{ 'b' in 'abc' }}{{ 2 not in [1] }}{{ 'k' in {'k': 0} }}", "TrueTrueTrue");
    CHECK_RENDER("{{ 1 < 2 < 3 }}{{ 1 == 1.0 }}{{ [1] == (1,) }}", "TrueTrueFalse");
    CHECK_RENDER("{{ 1.0 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ -0.0 }}",
                 "1.0 1e+16 0.30000000000000004 1e-05 -0.0");
    CHECK_RENDER("{{ ['a', \"b'c\"] }} {{ {'k': (1,)} }} {{ true }} {{ none }}",
                 "['a', \"b'c\"] {'k': (1,)} True None");
}

static void test_filters_and_methods(void) {
    CHECK_RENDER("{{ '  x  '|trim }}|{{ 'a b'|title }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|"
                 "{{ [3, 1, 2]|sort|join(',') }}|{{ {'a': [1]}|tojson }}|{{ 'x'|default('d') }}",
                 "x|A B|ABab|1,2,3|{\"a\": [1]}|x");
    CHECK_RENDER("{{ ' a b '.split() }}|{{ 'a.b'.split('.') }}|{{ 'abc'.startswith('ab') }}|"
                 "{{ 'x'.rstrip() }}|{{ '{}-{}'.format(1, 2) }}|{{ {'a': 1}.get('b', 2) }}",
                 "['a', 'b']|['a', 'b']|True|x|1-2|2");
    CHECK_RENDER("{{ [{'n': 'a', 'ok': true}, {'n': 'b', 'ok': false}]|selectattr('ok')"
                 "|map(attribute='n')|list }}",
                 "['a']");
    CHECK_RENDER("{{ {'a': 1}|tojson(indent=2) }}", "{\n  \"a\": 1\n}");
    CHECK_RENDER("{{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%d %b %Y') }}",
                 "2024-07-26 12:00|26 Jul 2024");
}

static void test_statements(void) {
    CHECK_RENDER(
        "{% for x in [1, 2, 3] if x != 2 %}{{ loop.index }}{{ x }}{{ ',' if not loop.last }}"
        "{% else %}none{% endfor %}",
        "11,23");
    CHECK_RENDER("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}", "a=1");
    CHECK_RENDER("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                 "{% endfor %}{{ ns.n }}",
                 "6");
    CHECK_RENDER("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}",
                 "1B23");
    CHECK_RENDER("{% for i in range(9) %}{% if i == 2 %}{% continue %}{% endif %}"
                 "{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                 "013");
    CHECK_RENDER("{% set x %}in{{ 1 }}{% endset %}{{ x }}|{% filter upper %}up{% endfilter %}",
                 "in1|UP");
}

static void test_whitespace(void) {
    /* trim_blocks eats the newline after a block tag, lstrip_blocks the
     * indentation before it; '-' strips all whitespace, '+' keeps it */
    CHECK_RENDER("a\n  {% if true %}\n  b\n  {% endif %}\nc", "a\n  b\nc");
    CHECK_RENDER("a  {{- ' b ' -}}  c", "a b c");
    CHECK_RENDER("  {{ 'v' }}\n", "  v");
    CHECK_RENDER("x\n  {%+ if true %}y{% endif %}", "x\n  y");
    CHECK_RENDER("{% if true +%}\nz{% endif %}", "\nz");
    CHECK_RENDER("a {# c #}\nb", "a b");
    CHECK_RENDER("{% raw %}{{ x }}{% endraw %}", "{{ x }}");
    CHECK_RENDER("a\r\nb\r\n", "a\nb");
}

static void test_errors_name_lines(void) {
    CHECK_ERROR("line1\nline2\n{{ x|nosuch }}", "chat template line 3: unknown filter 'nosuch'");
    CHECK_ERROR("a\n{% if true %}\n{{ raise_exception('Roles must alternate') }}\n{% endif %}",
                "chat template line 3: Roles must alternate");
    CHECK_ERROR("\n\n\n{% frob %}", "chat template line 4: Encountered unknown tag 'frob'.");
    CHECK_ERROR("a\n{% set d = {} %}{{ d.x.y }}",
                "chat template line 2: 'dict object' has no attribute 'x'");
    CHECK_ERROR("{% if x %}\n\nnever closed", "Unexpected end of template.");
    CHECK_ERROR("{{ x is nosuchtest }}", "unknown test 'nosuchtest'");
    CHECK_ERROR("{{ 'a' + 1 }}", "can only concatenate str (not \"int\") to str");
    CHECK_ERROR("{{ [1].append(2) }}", "access to attribute 'append' of 'list' object is unsafe.");
    /* unknown filters in a branch not taken are fine, as in jinja2 3.x */
    CHECK_RENDER("{% if false %}{{ x|nosuch }}{% endif %}ok", "ok");
    /* raise_exception's message is one line even if the template's is not */
    m40_err e = {0};
    char *o = render("{{ raise_exception('two\\nlines') }}", &e);
    CHECK(o == NULL && strchr(e.msg, '\n') == NULL);
    CHECK_CONTAINS(e.msg, "two lines");
}

/* Malformed templates must fail with a one-line message (or render);
 * never crash, hang or leak (ASan runs this). */
static void test_malformed(void) {
    static const char *const bad[] = {
        "{{",
        "{{ }}",
        "{%",
        "{% %}",
        "{#",
        "{% if %}",
        "{% for %}",
        "{% for x %}",
        "{% for x in %}{% endfor %}",
        "{% endif %}",
        "{% else %}",
        "{% set %}",
        "{% set x = %}",
        "{% macro %}",
        "{% macro m( %}{% endmacro %}",
        "{% macro m(a=1, b) %}{% endmacro %}",
        "{% call %}{% endcall %}",
        "{% raw %}",
        "{{ ((( }}",
        "{{ ]]] }}",
        "{{ 'unterminated }}",
        "{{ 1 +* 2 }}",
        "{{ a.b. }}",
        "{{ a[ }}",
        "{{ f(a=1, 2) }}",
        "{{ x|}}",
        "{{ x is }}",
        "{{ 0x }}",
        "{{ 99999999999999999999 }}",
        "{{ '\\x4' }}",
        "{{ 1 if }}",
        "{% for x in y %}{% break %}",
        "{% break %}",
        "{% include 'x' %}",
        "{% extends 'x' %}",
        "{{ x!y }}",
        "{% set a.b.c = 1 %}",
        "{% for 1 in x %}{% endfor %}",
        "\xff\xfe{{ \xff }}",
        "{{ {1: 2 }}",
        "{{ (1, 2 }}",
        "{{ 'a' 'b' c }}",
        "{% filter %}{% endfilter %}",
        "{% with %}{% endwith %}",
        "{% with a %}{% endwith %}",
        "{{ x[1:2:3:4] }}",
        "{{ -}}",
        "{%- -%}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m40_err e = {0};
        char *o = render(bad[i], &e);
        if (o) {
            free(o);
            continue;
        }
        CHECK(e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
        CHECK(strncmp(e.msg, "chat template", 13) == 0);
    }
}

static void test_limits(void) {
    m40_chat_limits lim = {
        .max_output = 4096, .max_memory = 8u << 20, .max_iterations = 100000, .max_depth = 200};
    m40_err e = {0};
    char *o;
    o = render_opts("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}"
                    "{% endfor %}",
                    "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "loop iteration limit");
    o = render_opts("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "recursion limit");
    o = render_opts("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "output limit");
    o = render_opts("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                    "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    CHECK(strstr(e.msg, "memory limit") || strstr(e.msg, "output limit"));
    o = render_opts("{{ 'x' * 1000000000000 }}", "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    o = render_opts("{{ [1] * 1000000000000 }}", "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    o = render_opts("{% for x in range(100000000) %}{% endfor %}", "[]", NULL, &lim, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "Range too big");

    /* deep nesting fails to parse instead of overflowing the stack */
    size_t depth = 20000;
    char *deep = malloc(depth * 2 + 16);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{{ ");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '(';
    deep[k++] = '1';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ')';
    strcpy(deep + k, " }}");
    o = render(deep, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "nested too deeply");
    /* a long flat chain is nested in the tree */
    k = (size_t)sprintf(deep, "{{ 1");
    for (size_t i = 0; i < depth / 2 - 4; i++) {
        deep[k++] = '+';
        deep[k++] = '1';
    }
    strcpy(deep + k, " }}");
    o = render(deep, &e);
    CHECK(o == NULL);
    CHECK_CONTAINS(e.msg, "nested too deeply");
    k = 0;
    for (size_t i = 0; i < 400; i++)
        k += (size_t)sprintf(deep + k, "{%% if 1 %%}");
    o = render(deep, &e);
    CHECK(o == NULL);
    free(deep);
}

int main(void) {
    test_apply_and_fallback();
    test_values_from_json();
    test_expressions();
    test_filters_and_methods();
    test_statements();
    test_whitespace();
    test_errors_name_lines();
    test_malformed();
    test_limits();
    return check_report();
}
