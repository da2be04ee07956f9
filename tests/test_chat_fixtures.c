/* test_chat_fixtures.c - chat templates rendered byte for byte as Python
 * jinja2 renders them with transformers' settings.
 *
 *   test_chat_fixtures FIXTURES_DIR      (tests/fixtures/chat)
 *
 * The expected outputs and errors come from
 * scripts/reference/make_chat_fixtures.py (jinja2 pinned):
 *  - expected/<template>.json: every real template in templates/ (real
 *    models' templates and the default model's) over conversations.json,
 *    with and without add_generation_prompt;
 *  - features.json: small templates exercising one feature each.
 * A render must match exactly; a jinja2 error must be an error here too,
 * with the same message for raise_exception and for the error kinds whose
 * wording this interpreter reproduces.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "check.h"

static int64_t g_fixed_now;

static cJSON *load_json(const char *path) {
    char *text = check_read_file(path, NULL);
    if (!text)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        fprintf(stderr, "%s: invalid JSON\n", path);
    return j;
}

/* Prints the first difference between two renders. */
static void show_diff(const char *what, const char *want, size_t wn, const char *got, size_t gn) {
    size_t i = 0;
    while (i < wn && i < gn && want[i] == got[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(
        stderr,
        "%s: differs at byte %zu (want %zu bytes, got %zu)\n  want: \"%.*s\"\n  got:  \"%.*s\"\n",
        what, i, wn, gn, (int)((wn - from) < 120 ? wn - from : 120), want + from,
        (int)((gn - from) < 120 ? gn - from : 120), got + from);
}

/* The one error kind whose wording differs on purpose: jinja2 says "No
 * filter named 'x'.", m40-llm "unknown filter 'x'". */
static int wording_may_differ(const char *type) {
    return !strcmp(type, "TemplateAssertionError");
}

/* Renders `tmpl` and checks it against a case object ("expected" or
 * "error"/"error_type"). Returns 1 when it matched. */
static int check_case(const char *what, const char *tmpl, const cJSON *messages, const cJSON *vars,
                      int add_gen, const cJSON *want_case) {
    const cJSON *expected = cJSON_GetObjectItemCaseSensitive(want_case, "expected");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(want_case, "error");
    const cJSON *etype = cJSON_GetObjectItemCaseSensitive(want_case, "error_type");
    m40_err err = {0};
    m40_chat_template *t = NULL;
    char *out = NULL;
    size_t n = 0;
    int rc = m40_chat_template_compile(tmpl, strlen(tmpl), &t, &err);
    if (rc == 0) {
        m40_chat_options o = {.add_generation_prompt = add_gen,
                              .extra_vars = vars,
                              .fixed_now = 1,
                              .now_utc = g_fixed_now};
        rc = m40_chat_template_render(t, messages, &o, &out, &n, &err);
        m40_chat_template_free(t);
    }
    int ok;
    if (cJSON_IsString(expected)) {
        const char *want = expected->valuestring;
        ok = rc == 0 && n == strlen(want) && memcmp(out, want, n) == 0;
        if (!ok && rc == 0)
            show_diff(what, want, strlen(want), out, n);
        else if (!ok)
            fprintf(stderr, "%s: want a render, got error: %s\n", what, err.msg);
    } else {
        const char *want = cJSON_IsString(error) ? error->valuestring : "";
        const char *type = cJSON_IsString(etype) ? etype->valuestring : "";
        ok = rc != 0;
        if (!ok)
            fprintf(stderr, "%s: want error \"%s\", got a render\n", what, want);
        else if (!strstr(err.msg, want) && !wording_may_differ(type)) {
            fprintf(stderr, "%s: want error containing \"%s\" (%s), got \"%s\"\n", what, want, type,
                    err.msg);
            ok = 0;
        }
        if (ok && strncmp(err.msg, "chat template", 13) != 0) {
            fprintf(stderr, "%s: error does not start with \"chat template\": %s\n", what, err.msg);
            ok = 0;
        }
    }
    free(out);
    return ok;
}

static cJSON *merged_vars(const cJSON *a, const cJSON *b) {
    cJSON *v = cJSON_CreateObject();
    const cJSON *srcs[2] = {a, b};
    for (int s = 0; s < 2; s++)
        for (const cJSON *e = srcs[s] ? srcs[s]->child : NULL; e; e = e->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(v, e->string);
            cJSON_AddItemToObject(v, e->string, cJSON_Duplicate(e, 1));
        }
    return v;
}

static void test_template_file(const char *fixtures, const char *name, const cJSON *convs) {
    char path[1024];
    snprintf(path, sizeof path, "%s/expected/%s.json", fixtures, name);
    cJSON *exp = load_json(path);
    CHECK(exp != NULL);
    if (!exp)
        return;
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(exp, "template");
    CHECK(cJSON_IsString(file));
    snprintf(path, sizeof path, "%s/templates/%s", fixtures,
             cJSON_IsString(file) ? file->valuestring : "?");
    char *tmpl = check_read_file(path, NULL);
    if (!tmpl) {
        CHECK(tmpl != NULL);
        cJSON_Delete(exp);
        return;
    }
    int pass = 0, total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(exp, "cases")) {
        const char *conv_name = cJSON_GetObjectItemCaseSensitive(c, "conversation")->valuestring;
        const cJSON *conv = cJSON_GetObjectItemCaseSensitive(convs, conv_name);
        int agp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        cJSON *vars = merged_vars(cJSON_GetObjectItemCaseSensitive(c, "special_tokens"),
                                  cJSON_GetObjectItemCaseSensitive(conv, "vars"));
        char what[1024];
        snprintf(what, sizeof what, "%s / %s / agp=%d", name, conv_name, agp);
        int ok = check_case(what, tmpl, cJSON_GetObjectItemCaseSensitive(conv, "messages"), vars,
                            agp, c);
        CHECK(ok);
        pass += ok;
        total++;
        cJSON_Delete(vars);
    }
    printf("%-40s %d/%d renders match jinja2\n", name, pass, total);
    free(tmpl);
    cJSON_Delete(exp);
}

static void test_features(const char *fixtures) {
    char path[1024];
    snprintf(path, sizeof path, "%s/features.json", fixtures);
    cJSON *all = load_json(path);
    CHECK(all != NULL);
    if (!all)
        return;
    int pass = 0, total = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(all, "features")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring;
        const char *tmpl = cJSON_GetObjectItemCaseSensitive(f, "template")->valuestring;
        char what[256];
        snprintf(what, sizeof what, "feature %s", name);
        int ok = check_case(what, tmpl, cJSON_GetObjectItemCaseSensitive(f, "messages"),
                            cJSON_GetObjectItemCaseSensitive(f, "vars"), 0, f);
        CHECK(ok);
        pass += ok;
        total++;
    }
    printf("%-40s %d/%d match jinja2\n", "features", pass, total);
    cJSON_Delete(all);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_chat_fixtures FIXTURES_DIR\n");
        return 2;
    }
    const char *fixtures = argv[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/features.json", fixtures);
    cJSON *meta = load_json(path);
    CHECK(meta != NULL);
    if (meta)
        g_fixed_now = (int64_t)cJSON_GetObjectItemCaseSensitive(meta, "fixed_now_utc")->valuedouble;
    cJSON_Delete(meta);

    snprintf(path, sizeof path, "%s/conversations.json", fixtures);
    cJSON *convs = load_json(path);
    CHECK(convs != NULL);
    /* every template must have its expected renders */
    snprintf(path, sizeof path, "%s/templates", fixtures);
    DIR *d = opendir(path);
    if (!d)
        fprintf(stderr, "missing chat templates directory %s\n", path);
    CHECK(d != NULL);
    int n_templates = 0;
    for (struct dirent *e; d && convs && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len <= 6 || strcmp(e->d_name + len - 6, ".jinja") != 0)
            continue;
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)(len - 6), e->d_name);
        test_template_file(fixtures, name, convs);
        n_templates++;
    }
    if (d)
        closedir(d);
    /* six real models' templates and the default model's */
    CHECK(n_templates == 7);
    cJSON_Delete(convs);
    test_features(fixtures);
    return check_report();
}
