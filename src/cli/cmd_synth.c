/* cmd_synth.c - `m40-llm synth`: write a random-weight model of a named shape.
 *
 *   m40-llm synth --shape NAME [--type TYPE] -o OUT.gguf [--vocab GGUF] [--seed N]
 *                 [--vocab-size N] [--untied]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/shapes.h"
#include "model/synth.h"
#include "quant/ggml_types.h"
#include "util/clock.h"

static void synth_usage(FILE *out) {
    fprintf(out, "usage: m40-llm synth --shape NAME -o OUT.gguf [--type TYPE] [--vocab GGUF]\n"
                 "                     [--seed N] [--vocab-size N] [--untied]\n"
                 "  --type        f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K, or q4_K_M\n"
                 "                q5_K_M (llama-quantize's mixes: Q6_K attn_v and ffn_down on a\n"
                 "                third of the layers; default f16)\n"
                 "  --vocab       copy the tokenizer from this GGUF (default: a minimal byte "
                 "vocabulary)\n"
                 "  --vocab-size  vocabulary size without --vocab (default: the shape's)\n"
                 "  --untied      write output.weight even for shapes with tied embeddings\n"
                 "shapes:\n");
    int n;
    const m40_shape *s = m40_shapes(&n);
    for (int i = 0; i < n; i++)
        fprintf(out, "  %-14s %s\n", s[i].name, s[i].describe);
}

/* The type whose name (as GGML spells it, case-insensitive) is the first
 * len bytes of name. */
static int find_type(const char *name, size_t len, uint32_t *type) {
    for (uint32_t t = 0; t < M40_GGML_TYPE_COUNT; t++) {
        const m40_ggml_type_info *info = m40_ggml_type_get(t);
        if (info && strlen(info->name) == len && !strncasecmp(info->name, name, len)) {
            *type = t;
            return 0;
        }
    }
    return -1;
}

/* Parses a type name, or q4_K_M / q5_K_M for llama-quantize's mix of that
 * K type (*mix_m = 1). */
static int parse_type(const char *name, uint32_t *type, int32_t *mix_m) {
    size_t len = strlen(name);
    *mix_m = 0;
    if (find_type(name, len, type) == 0)
        return 0;
    if (len < 2 || strcasecmp(name + len - 2, "_m") || find_type(name, len - 2, type))
        return -1;
    *mix_m = 1;
    return *type == M40_GGML_Q4_K || *type == M40_GGML_Q5_K ? 0 : -1;
}

int m40_cmd_synth(int argc, char **argv) {
    m40_synth_options o = {.type = M40_GGML_F16, .seed = 42};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            synth_usage(stdout);
            return M40_EXIT_OK;
        } else if (!strcmp(a, "--untied")) {
            o.untied = 1;
        } else if (!v) {
            m40_cli_error("synth: %s needs a value", a);
            return M40_EXIT_USAGE;
        } else if (!strcmp(a, "--shape")) {
            o.shape = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.out_path = argv[++i];
        } else if (!strcmp(a, "--vocab")) {
            o.vocab_path = argv[++i];
        } else if (!strcmp(a, "--type")) {
            if (parse_type(argv[++i], &o.type, &o.mix_m)) {
                m40_cli_error("synth: unknown type \"%s\"", argv[i]);
                return M40_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--seed")) {
            int seed;
            if (m40_cli_parse_int("--seed", argv[++i], &seed))
                return M40_EXIT_USAGE;
            o.seed = (uint64_t)seed;
        } else if (!strcmp(a, "--vocab-size")) {
            if (m40_cli_parse_int("--vocab-size", argv[++i], &o.n_vocab))
                return M40_EXIT_USAGE;
        } else {
            m40_cli_error("synth: unknown option \"%s\"", a);
            return M40_EXIT_USAGE;
        }
    }
    if (!o.shape || !o.out_path) {
        m40_cli_error("synth: --shape and -o are required (m40-llm synth --help)");
        return M40_EXIT_USAGE;
    }
    if (!m40_shape_find(o.shape)) {
        m40_cli_error("synth: unknown shape \"%s\" (m40-llm synth --help lists them)", o.shape);
        return M40_EXIT_USAGE;
    }
    m40_err err = {0};
    m40_synth_report rep;
    double t0 = m40_clock_s();
    if (m40_synth_write(&o, &rep, &err)) {
        m40_cli_error("synth: %s", err.msg);
        return M40_EXIT_FAIL;
    }
    double secs = m40_clock_s() - t0;
    printf("wrote %s: shape %s, %s%s, %.2f B parameters, vocab %d, %.2f GiB, %.1f s\n", o.out_path,
           o.shape, m40_ggml_type_name(o.type), o.mix_m ? "_M" : "", (double)rep.n_params / 1e9,
           rep.n_vocab, (double)rep.file_bytes / (1024.0 * 1024.0 * 1024.0), secs);
    return M40_EXIT_OK;
}
