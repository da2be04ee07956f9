/* cmd_tokenize.c - `m40-llm tokenize`: text -> token ids, like llama-tokenize.
 *
 *   m40-llm tokenize -m GGUF (-p TEXT | --file F) [--no-bos] [--parse-special]
 *                    [--ids | --pieces] [--no-escape]
 *   m40-llm tokenize -m GGUF --suite PREFIX
 *
 * Prints one line per token, "%6d -> 'piece'" (--pieces, the default), or
 * the ids as a Python list "[1, 2, 3]" (--ids). -p TEXT gets llama.cpp's
 * escape processing (\n, \t, \xNN, ...) unless --no-escape; a --file is
 * taken byte for byte. --suite runs a llama.cpp tokenizer suite
 * (PREFIX.inp cases separated by "\n__ggml_vocab_test__\n", PREFIX.out one
 * line of ids per case; no BOS, special tokens not parsed), prints every
 * mismatch and "N passed, M failed", and exits 1 if any case failed.
 * A vocab-only GGUF file is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tokenizer/tokenizer.h"

typedef enum out_mode { OUT_PIECES, OUT_IDS } out_mode;

typedef struct tok_args {
    const char *model, *prompt, *file, *suite;
    int no_bos, parse_special, no_escape;
    out_mode mode;
} tok_args;

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: m40-llm tokenize -m GGUF (-p TEXT | --file F) [options]\n"
            "       m40-llm tokenize -m GGUF --suite PREFIX\n"
            "  -m, --model GGUF     model or vocab-only GGUF file\n"
            "  -p, --prompt TEXT    text to tokenize (escapes like \\n are processed)\n"
            "  -f, --file F         tokenize the bytes of file F\n"
            "  --no-bos             add no BOS/EOS even where the vocabulary asks for them\n"
            "  --parse-special      turn special-token texts (<|im_end|>, ...) into those tokens\n"
            "  --ids                print the ids as a list: [1, 2, 3]\n"
            "  --pieces             print one 'id -> piece' line per token (default)\n"
            "  --no-escape          take -p TEXT literally\n"
            "  --suite PREFIX       run PREFIX.inp against PREFIX.out (llama.cpp's format)\n");
}

static int parse_args(int argc, char **argv, tok_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            tokenize_usage(stdout);
            return 1;
        } else if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && has_val) {
            a->model = m40_cli_resolve_model(argv[++i]);
        } else if ((!strcmp(s, "-p") || !strcmp(s, "--prompt")) && has_val) {
            a->prompt = argv[++i];
        } else if ((!strcmp(s, "-f") || !strcmp(s, "--file")) && has_val) {
            a->file = argv[++i];
        } else if (!strcmp(s, "--suite") && has_val) {
            a->suite = argv[++i];
        } else if (!strcmp(s, "--no-bos")) {
            a->no_bos = 1;
        } else if (!strcmp(s, "--parse-special")) {
            a->parse_special = 1;
        } else if (!strcmp(s, "--no-escape")) {
            a->no_escape = 1;
        } else if (!strcmp(s, "--ids")) {
            a->mode = OUT_IDS;
        } else if (!strcmp(s, "--pieces")) {
            a->mode = OUT_PIECES;
        } else {
            m40_cli_error("tokenize: unknown or incomplete option \"%s\"", s);
            return -1;
        }
    }
    if (!a->model) {
        m40_cli_error("tokenize: -m GGUF is required");
        return -1;
    }
    if (!!a->prompt + !!a->file + !!a->suite != 1) {
        m40_cli_error("tokenize: give exactly one of -p TEXT, --file F, --suite PREFIX");
        return -1;
    }
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of "\xNN" at s[i] ('x' at s[i]), or -1 when not two hex digits. */
static int hex_escape(const char *s, size_t i, size_t n) {
    if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
        return -1;
    return hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
}

/* llama.cpp's string_process_escapes, in place; returns the new length. */
static size_t process_escapes(char *s, size_t n) {
    static const char from[] = "nrt'\"\\", to[] = "\n\r\t'\"\\";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        const char *k = c ? strchr(from, c) : NULL;
        int byte = c == 'x' ? hex_escape(s, i, n) : -1;
        if (k) {
            s[o++] = to[k - from];
        } else if (byte >= 0) {
            s[o++] = (char)byte;
            i += 2;
        } else { /* not an escape: keep it as written */
            s[o++] = '\\';
            s[o++] = c;
        }
    }
    return o;
}

static void print_tokens(const m40_tokenizer *tok, const m40_tokens *ids, out_mode mode) {
    if (mode == OUT_IDS) {
        putchar('[');
        for (size_t i = 0; i < ids->n; i++)
            printf(i ? ", %d" : "%d", ids->ids[i]);
        puts("]");
        return;
    }
    for (size_t i = 0; i < ids->n; i++) {
        const char *p = "";
        size_t n = 0;
        m40_err err = {0};
        m40_token_to_piece(tok, ids->ids[i], 1, &p, &n, &err);
        printf("%6d -> '", ids->ids[i]);
        fwrite(p, 1, n, stdout);
        puts("'");
    }
}

static int run_text(const m40_tokenizer *tok, const tok_args *a) {
    size_t len = 0;
    char *text;
    if (a->file) {
        text = m40_cli_read_file(a->file, &len);
        if (!text)
            return M40_EXIT_FAIL;
    } else {
        len = strlen(a->prompt);
        text = malloc(len + 1);
        if (!text) {
            m40_cli_error("out of memory");
            return M40_EXIT_FAIL;
        }
        memcpy(text, a->prompt, len + 1);
        if (!a->no_escape)
            len = process_escapes(text, len);
    }
    unsigned flags = (a->no_bos ? 0 : M40_TOKENIZE_ADD_SPECIAL) |
                     (a->parse_special ? M40_TOKENIZE_PARSE_SPECIAL : 0);
    m40_tokens ids = {0};
    m40_err err = {0};
    int rc = m40_tokenize(tok, text, len, flags, &ids, &err);
    free(text);
    if (rc) {
        m40_cli_error("tokenize: %s", err.msg);
        return M40_EXIT_FAIL;
    }
    print_tokens(tok, &ids, a->mode);
    m40_tokens_free(&ids);
    return M40_EXIT_OK;
}

/* --- suite ----------------------------------------------------------------- */

static void print_case(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void print_id_list(const char *label, const m40_token *ids, size_t n) {
    printf("  %s:", label);
    for (size_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    putchar('\n');
}

/* Parses the space-separated ids of one .out line into *want. */
static int parse_line(const char **line, m40_tokens *want) {
    m40_err err = {0};
    const char *p = *line;
    want->n = 0;
    while (*p && *p != '\n') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            if (*p != ' ' && *p != '\r')
                return -1;
            p++;
            continue;
        }
        if (m40_tokens_push(want, (m40_token)v, &err))
            return -1;
        p = end;
    }
    *line = *p ? p + 1 : p;
    return 0;
}

/* One case: 1 passed, 0 failed (mismatch printed), -1 error. */
static int suite_case(const m40_tokenizer *tok, size_t k, const char *in, size_t n,
                      const m40_tokens *want, m40_tokens *got) {
    m40_err err = {0};
    if (m40_tokenize(tok, in, n, 0, got, &err)) {
        printf("case %zu: tokenize failed: %s\n", k, err.msg);
        return 0;
    }
    if (got->n == want->n &&
        (want->n == 0 || !memcmp(got->ids, want->ids, want->n * sizeof *want->ids)))
        return 1;
    printf("case %zu: '", k);
    print_case(in, n);
    printf("'\n");
    print_id_list("want", want->ids, want->n);
    print_id_list("got ", got->ids, got->n);
    return 0;
}

static int run_suite(const m40_tokenizer *tok, const char *prefix) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t plen = strlen(prefix), inp_len = 0, out_len = 0, sl = sizeof sep - 1;
    char *path = malloc(plen + 5);
    if (!path) {
        m40_cli_error("out of memory");
        return M40_EXIT_FAIL;
    }
    snprintf(path, plen + 5, "%s.inp", prefix);
    char *inp = m40_cli_read_file(path, &inp_len);
    snprintf(path, plen + 5, "%s.out", prefix);
    char *out = inp ? m40_cli_read_file(path, &out_len) : NULL;
    free(path);
    if (!inp || !out) {
        free(inp);
        return M40_EXIT_FAIL;
    }
    m40_tokens want = {0}, got = {0};
    size_t passed = 0, failed = 0, pos = 0;
    const char *line = out;
    int bad = 0;
    while (pos < inp_len && !bad) {
        char *next = memmem(inp + pos, inp_len - pos, sep, sl);
        size_t n = next ? (size_t)(next - (inp + pos)) : inp_len - pos;
        if (!*line || parse_line(&line, &want)) {
            m40_cli_error("%s.out: missing or bad line for case %zu", prefix, passed + failed);
            bad = 1;
            break;
        }
        if (suite_case(tok, passed + failed, inp + pos, n, &want, &got))
            passed++;
        else
            failed++;
        pos = next ? (size_t)(next - inp) + sl : inp_len;
    }
    if (!bad && *line) {
        m40_cli_error("%s.out has more lines than %s.inp has cases", prefix, prefix);
        bad = 1;
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    m40_tokens_free(&want);
    m40_tokens_free(&got);
    free(inp);
    free(out);
    return bad || failed ? M40_EXIT_FAIL : M40_EXIT_OK;
}

int m40_cmd_tokenize(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        if (rc < 0)
            tokenize_usage(stderr);
        return rc < 0 ? M40_EXIT_USAGE : M40_EXIT_OK;
    }
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_load_gguf(a.model, &err);
    if (!tok) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    rc = a.suite ? run_suite(tok, a.suite) : run_text(tok, &a);
    m40_tokenizer_free(tok);
    return rc;
}
