/* chat.h - chat templates: turns a conversation (JSON messages) into the
 * prompt text a model was trained on, by rendering the Jinja template the
 * model ships in its GGUF (`tokenizer.chat_template`).
 *
 * The renderer is a Jinja subset written to match Python's jinja2 exactly
 * as Hugging Face transformers configures it for chat templates:
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with
 * the loopcontrols extension, the globals raise_exception and
 * strftime_now, and a `tojson` filter that is json.dumps(ensure_ascii=
 * False). docs/chat-templates.md lists the subset and the known gaps.
 *
 * Like transformers, a render always defines `messages`,
 * `add_generation_prompt`, `tools` and `documents` (none unless given);
 * extra variables (bos_token, eos_token, tools, date_string, ...) come from
 * a JSON object.
 *
 * Owns: template compile and render. Touches: nothing outside src/chat/;
 * chat knows nothing of backends, engine or server.
 */
#ifndef M40_CHAT_CHAT_H
#define M40_CHAT_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/err.h"

/* Bounds that make a hostile template fail with an error instead of
 * hanging or exhausting memory. Zero fields take the defaults. */
typedef struct m40_chat_limits {
    size_t max_output;       /* bytes of rendered text; default 16 MiB */
    size_t max_memory;       /* bytes one render may allocate; default 512 MiB */
    uint64_t max_iterations; /* loop iterations in one render; default 10 million */
    int max_depth;           /* nesting of expressions, statements and macro calls;
                                default 1000 */
} m40_chat_limits;

typedef struct m40_chat_options {
    int add_generation_prompt;
    /* A JSON object whose members become template variables (NULL: none). */
    const cJSON *extra_vars;
    const m40_chat_limits *limits; /* NULL: defaults */
    /* Nonzero: strftime_now() formats `now_utc` (seconds since the epoch,
     * as UTC) instead of reading the local clock; tests use this. */
    int fixed_now;
    int64_t now_utc;
} m40_chat_options;

typedef struct m40_chat_template m40_chat_template;

m40_chat_limits m40_chat_default_limits(void);

/* Parses a template. Syntax errors (unterminated tags, unknown filters,
 * bad expressions) are reported here: "chat template line N: ...". */
int m40_chat_template_compile(const char *src, size_t len, m40_chat_template **out, m40_err *err);

/* Renders into a malloc'ed, NUL-terminated string (*out, caller frees)
 * of *out_len bytes. A template's raise_exception(msg) fails the render
 * with "chat template line N: msg". */
int m40_chat_template_render(const m40_chat_template *t, const cJSON *messages,
                             const m40_chat_options *opts, char **out, size_t *out_len,
                             m40_err *err);

void m40_chat_template_free(m40_chat_template *t);

/* Compile + render in one call. */
int m40_chat_apply(const char *tmpl, const cJSON *messages, int add_generation_prompt,
                   const cJSON *extra_vars, char **out, size_t *out_len, m40_err *err);

/* The template to use when a model has none: ChatML, as llama.cpp falls
 * back to. Callers should say so ("no chat template in the model; using
 * ChatML"); m40_chat_fallback_name() is the name to print. */
const char *m40_chat_fallback_template(void);
const char *m40_chat_fallback_name(void);

#endif /* M40_CHAT_CHAT_H */
