/* test_chat_cli.c - `m40-llm chat-template` run as a user would.
 *
 *   test_chat_cli M40_LLM_BINARY REPO_FIXTURES_DIR SCRATCH_DIR
 *
 * Builds a tiny GGUF holding the default model's chat template and its
 * special tokens (with the GGUF writer), renders a conversation through
 * -m and through --template, and checks the printed prompt byte for byte
 * against the jinja2 fixture; then the ChatML fallback, --var, and the
 * exit statuses (1 for a failed render, 2 for bad usage) with one line on
 * stderr.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "chat/chat.h"
#include "check.h"
#include "gguf/gguf_writer.h"

static const char *g_bin, *g_fixtures, *g_scratch;

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

/* Runs the CLI with `args`; stdout and stderr go to files read back into
 * *out / *err (caller frees). Returns the exit status. */
static int run(const char *args, char **out, char **err) {
    char cmd[4096], outp[1024], errp[1024];
    snprintf(outp, sizeof outp, "%s/chat_cli.out", g_scratch);
    snprintf(errp, sizeof errp, "%s/chat_cli.err", g_scratch);
    snprintf(cmd, sizeof cmd, "'%s' chat-template %s >'%s' 2>'%s'", g_bin, args, outp, errp);
    int st = system(cmd);
    *out = check_read_file(outp, NULL);
    *err = check_read_file(errp, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The expected render of `conv` (add_generation_prompt agp) for template
 * `name` from the jinja2 fixtures, and the conversation's messages. */
static char *expected_render(const char *name, const char *conv, int agp, cJSON **messages) {
    char path[1024];
    snprintf(path, sizeof path, "%s/expected/%s.json", g_fixtures, name);
    char *text = check_read_file(path, NULL);
    cJSON *exp = text ? cJSON_Parse(text) : NULL;
    free(text);
    snprintf(path, sizeof path, "%s/conversations.json", g_fixtures);
    text = check_read_file(path, NULL);
    cJSON *convs = text ? cJSON_Parse(text) : NULL;
    free(text);
    char *want = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(exp, "cases")) {
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(c, "conversation");
        const cJSON *ca = cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt");
        const cJSON *ce = cJSON_GetObjectItemCaseSensitive(c, "expected");
        if (cJSON_IsString(ce) && !strcmp(cn->valuestring, conv) && cJSON_IsTrue(ca) == agp)
            want = strdup(ce->valuestring);
    }
    *messages = cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(convs, conv), "messages"),
        1);
    cJSON_Delete(exp);
    cJSON_Delete(convs);
    return want;
}

/* A GGUF with only tokenizer metadata (template optional). */
static int write_gguf(const char *path, const char *tmpl) {
    static const char *const tokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "hi"};
    m40_err err = {0};
    m40_gguf_writer *w;
    if (m40_gguf_writer_new(&w, &err))
        return -1;
    int rc = m40_gguf_writer_add_str(w, "general.architecture", "llama", &err) ||
             m40_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, 4, &err) ||
             m40_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, &err) ||
             m40_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, &err) ||
             (tmpl && m40_gguf_writer_add_str(w, "tokenizer.chat_template", tmpl, &err)) ||
             m40_gguf_writer_write_file(w, path, &err);
    if (rc)
        fprintf(stderr, "writing %s: %s\n", path, err.msg);
    m40_gguf_writer_free(w);
    return rc ? -1 : 0;
}

static void test_model_and_template(void) {
    char tmpl_path[1024], gguf[1024], msgs_path[1024], args[4096];
    snprintf(tmpl_path, sizeof tmpl_path, "%s/templates/SmolLM2-135M-Instruct.jinja", g_fixtures);
    snprintf(gguf, sizeof gguf, "%s/chat_cli.gguf", g_scratch);
    snprintf(msgs_path, sizeof msgs_path, "%s/chat_cli_msgs.json", g_scratch);
    char *tmpl = check_read_file(tmpl_path, NULL);
    CHECK(tmpl != NULL);
    if (!tmpl)
        return;
    CHECK(write_gguf(gguf, tmpl) == 0);
    cJSON *msgs = NULL;
    char *want = expected_render("SmolLM2-135M-Instruct", "multi_turn", 1, &msgs);
    CHECK(want != NULL && msgs != NULL);
    char *mt = cJSON_PrintUnformatted(msgs);
    write_text(msgs_path, mt);
    free(mt);
    cJSON_Delete(msgs);

    char *out, *err;
    snprintf(args, sizeof args, "-m '%s' --messages '%s' --add-generation-prompt", gguf, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && want && !strcmp(out, want)); /* exact, no newline added */
    free(out);
    free(err);

    snprintf(args, sizeof args, "--template '%s' --messages '%s' --add-generation-prompt",
             tmpl_path, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && want && !strcmp(out, want));
    free(out);
    free(err);
    free(want);
    free(tmpl);

    /* bos/eos from the model, overridable with --var */
    char small[1024];
    snprintf(small, sizeof small, "%s/chat_cli_small.jinja", g_scratch);
    write_text(small, "{{ bos_token }}|{{ eos_token }}|{{ x }}|{{ n + 1 }}|{{ tools|length }}");
    snprintf(gguf, sizeof gguf, "%s/chat_cli_small.gguf", g_scratch);
    CHECK(write_gguf(gguf, "{{ bos_token }}{{ eos_token }}{{ messages|length }}") == 0);
    snprintf(args, sizeof args, "-m '%s' --messages '%s'", gguf, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && !strcmp(out, "<|im_start|><|im_end|>3"));
    free(out);
    free(err);
    snprintf(args, sizeof args,
             "--template '%s' --messages '%s' --var bos_token=B --var 'x=a b' --var n:json=41 "
             "--var 'tools:json=[1,2]'",
             small, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && !strcmp(out, "B||a b|42|2"));
    free(out);
    free(err);

    /* a messages file that is an object: its other members are variables */
    write_text(msgs_path, "{\"messages\": [], \"x\": \"from file\", \"n\": 1, \"tools\": []}");
    snprintf(args, sizeof args, "--template '%s' --messages '%s'", small, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && !strcmp(out, "||from file|2|0"));
    free(out);
    free(err);
}

static void test_fallback_and_errors(void) {
    char gguf[1024], msgs_path[1024], bad[1024], args[4096];
    snprintf(gguf, sizeof gguf, "%s/chat_cli_none.gguf", g_scratch);
    snprintf(msgs_path, sizeof msgs_path, "%s/chat_cli_msgs2.json", g_scratch);
    snprintf(bad, sizeof bad, "%s/chat_cli_bad.jinja", g_scratch);
    CHECK(write_gguf(gguf, NULL) == 0);
    write_text(msgs_path, "[{\"role\": \"user\", \"content\": \"hi\"}]");
    char *out, *err;
    snprintf(args, sizeof args, "-m '%s' --messages '%s' --add-generation-prompt", gguf, msgs_path);
    CHECK(run(args, &out, &err) == 0);
    CHECK(out && !strcmp(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
    CHECK_CONTAINS(err, "no chat template in the model; using ChatML");
    free(out);
    free(err);

    write_text(bad, "line 1\n{{ raise_exception('nope') }}");
    snprintf(args, sizeof args, "--template '%s' --messages '%s'", bad, msgs_path);
    CHECK(run(args, &out, &err) == 1);
    CHECK(err && !strcmp(err, "m40-llm: chat template line 2: nope\n"));
    CHECK(out && out[0] == '\0');
    free(out);
    free(err);

    write_text(bad, "{% for %}");
    CHECK(run(args, &out, &err) == 1);
    CHECK_CONTAINS(err, "m40-llm: chat template line 1:");
    free(out);
    free(err);

    static const char *const usage_errors[] = {
        "",
        "--messages x.json",
        "-m a.gguf --template b --messages c",
        "--bogus",
        "--template t --messages m --var novalue",
    };
    for (size_t i = 0; i < sizeof usage_errors / sizeof usage_errors[0]; i++) {
        CHECK(run(usage_errors[i], &out, &err) == 2);
        CHECK(err && !strncmp(err, "m40-llm: ", 9));
        free(out);
        free(err);
    }
    snprintf(args, sizeof args, "--template /nonexistent --messages '%s'", msgs_path);
    CHECK(run(args, &out, &err) == 1);
    free(out);
    free(err);
    snprintf(args, sizeof args, "--template '%s' --messages '%s'", bad, bad);
    CHECK(run(args, &out, &err) == 1); /* messages file is not JSON */
    CHECK_CONTAINS(err, "invalid JSON");
    free(out);
    free(err);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_chat_cli M40_LLM REPO_FIXTURES_DIR SCRATCH_DIR\n");
        return 2;
    }
    g_bin = argv[1];
    g_fixtures = argv[2];
    g_scratch = argv[3];
    test_model_and_template();
    test_fallback_and_errors();
    return check_report();
}
