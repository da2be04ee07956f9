/* vocab.c - building a tokenizer from plain arrays (m40_vocab_data).
 *
 * Follows llama.cpp's llama_vocab::impl::load() rule by rule: model
 * defaults, the pre-tokenizer's flags, GGUF overrides of special ids and
 * add_* flags, the merge table, byte tokens, then (vocab_special.c) the
 * tokens recognised by their text and the special-token list, and
 * (decode.c) the piece cache.
 *
 * Owns: every allocation of struct m40_tokenizer. Touches: the caller's
 * m40_vocab_data, read-only and only during m40_tokenizer_create().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

m40_vocab_data m40_vocab_data_empty(void) {
    m40_vocab_data d;
    memset(&d, 0, sizeof d);
    d.bos_id = d.eos_id = d.eot_id = d.eom_id = M40_VOCAB_ABSENT;
    d.unk_id = d.sep_id = d.pad_id = M40_VOCAB_ABSENT;
    d.add_bos = d.add_eos = d.add_space_prefix = M40_VOCAB_ABSENT;
    return d;
}

void m40_tokenizer_free(m40_tokenizer *tok) {
    if (!tok)
        return;
    m40_pretok_free(tok->pretok);
    free(tok->text);
    free(tok->scores);
    free(tok->attr);
    free(tok->type);
    free(tok->arena);
    m40_strmap_free(&tok->token_map);
    m40_pairmap_free(&tok->merges);
    m40_strmap_free(&tok->merge_lines);
    free(tok->merge_line_text);
    free(tok->merge_line_rank);
    free(tok->merge_line_arena);
    free(tok->eog);
    free(tok->special);
    free(tok->special_rank);
    free(tok->trie);
    free(tok->piece_off);
    free(tok->piece_arena);
    free(tok);
}

/* --- model defaults and flags ------------------------------------------ */

static int set_model(m40_tokenizer *tok, const m40_vocab_data *d, m40_err *err) {
    if (!d->model)
        return m40_errf(err, "tokenizer.ggml.model is missing");
    if (!strcmp(d->model, "llama")) {
        tok->kind = M40_TOKENIZER_SPM;
        tok->bos = 1;
        tok->eos = 2;
        tok->unk = 0;
        tok->add_space_prefix = 1;
        tok->add_bos = 1;
        tok->clean_spaces = 0;
        return 0;
    }
    if (!strcmp(d->model, "gpt2")) {
        const char *pre = d->pre && *d->pre ? d->pre : "default";
        m40_pretok_info info = m40_pretok_lookup(pre);
        if (!info.known)
            return m40_errf(err, "unknown or unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)",
                            pre);
        tok->kind = M40_TOKENIZER_BPE;
        snprintf(tok->pre_name, sizeof tok->pre_name, "%s", pre);
        tok->bos = tok->eos = 11; /* llama.cpp's BPE defaults */
        tok->unk = M40_TOKEN_NULL;
        tok->ignore_merges = info.ignore_merges;
        tok->clean_spaces = info.clean_spaces;
        tok->add_bos = info.add_bos;
        if (info.no_bos)
            tok->bos = M40_TOKEN_NULL;
        return 0;
    }
    return m40_errf(err, "unknown or unsupported tokenizer model '%s' (tokenizer.ggml.model)",
                    d->model);
}

/* --- token texts, types, scores ----------------------------------------- */

static uint16_t attr_of_type(int32_t type) {
    switch (type) {
        case M40_TOKEN_TYPE_NORMAL:
            return TOK_ATTR_NORMAL;
        case M40_TOKEN_TYPE_UNKNOWN:
            return TOK_ATTR_UNKNOWN;
        case M40_TOKEN_TYPE_CONTROL:
            return TOK_ATTR_CONTROL;
        case M40_TOKEN_TYPE_USER_DEFINED:
            return TOK_ATTR_USER_DEFINED;
        case M40_TOKEN_TYPE_UNUSED:
            return TOK_ATTR_UNUSED;
        case M40_TOKEN_TYPE_BYTE:
            return TOK_ATTR_BYTE;
        default:
            return 0; /* undefined */
    }
}

/* Copies token texts into one arena. An empty text becomes "[EMPTY_<id>]"
 * as in llama.cpp (an empty key could never be looked up). */
static int copy_tokens(m40_tokenizer *tok, const m40_vocab_data *d, m40_err *err) {
    size_t n = d->n_tokens, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!d->tokens[i].ptr && d->tokens[i].len)
            return m40_errf(err, "token %zu has no text", i);
        size_t len = d->tokens[i].len ? d->tokens[i].len : 32;
        if (len > SIZE_MAX - total - 1)
            return m40_errf(err, "token texts are too large");
        total += len + 1;
    }
    tok->arena = malloc(total ? total : 1);
    tok->text = calloc(n, sizeof *tok->text);
    tok->scores = calloc(n, sizeof *tok->scores);
    tok->attr = calloc(n, sizeof *tok->attr);
    tok->type = calloc(n, sizeof *tok->type);
    if (!tok->arena || !tok->text || !tok->scores || !tok->attr || !tok->type)
        return m40_errf(err, "out of memory for %zu tokens", n);
    char *p = tok->arena;
    for (size_t i = 0; i < n; i++) {
        size_t len = d->tokens[i].len;
        if (len)
            memcpy(p, d->tokens[i].ptr, len);
        else
            len = (size_t)snprintf(p, 32, "[EMPTY_%zu]", i);
        p[len] = '\0';
        tok->text[i].ptr = p;
        tok->text[i].len = len;
        p += len + 1;
        tok->scores[i] = d->scores ? d->scores[i] : 0.0f;
        tok->type[i] = d->token_types ? d->token_types[i] : M40_TOKEN_TYPE_NORMAL;
        tok->attr[i] = attr_of_type(tok->type[i]);
    }
    return 0;
}

static int build_token_map(m40_tokenizer *tok, m40_err *err) {
    if (m40_strmap_init(&tok->token_map, tok->text, tok->n_tokens, err))
        return -1;
    for (size_t i = 0; i < tok->n_tokens; i++) {
        int32_t prev = m40_strmap_insert(&tok->token_map, (int32_t)i);
        if (prev >= 0)
            return m40_errf(err, "duplicate token in vocabulary: '%.*s' has ids %d and %zu",
                            (int)(tok->text[i].len > 64 ? 64 : tok->text[i].len), tok->text[i].ptr,
                            prev, i);
    }
    return 0;
}

/* --- special ids -------------------------------------------------------- */

/* One special id: the model default unless the key gives a valid id. */
static m40_token pick_id(m40_token def, int64_t key, size_t n_tokens) {
    if (def >= 0 && (size_t)def >= n_tokens)
        def = M40_TOKEN_NULL; /* default out of range: disabled */
    if (key >= 0 && (uint64_t)key < n_tokens)
        return (m40_token)key;
    return def; /* absent, or out of range (llama.cpp warns and keeps it) */
}

static int set_special_ids(m40_tokenizer *tok, const m40_vocab_data *d, m40_err *err) {
    size_t n = tok->n_tokens;
    tok->bos = pick_id(tok->bos, d->bos_id, n);
    tok->eos = pick_id(tok->eos, d->eos_id, n);
    tok->eot = pick_id(M40_TOKEN_NULL, d->eot_id, n);
    tok->eom = pick_id(M40_TOKEN_NULL, d->eom_id, n);
    tok->unk = pick_id(tok->unk, d->unk_id, n);
    tok->sep = pick_id(M40_TOKEN_NULL, d->sep_id, n);
    tok->pad = pick_id(M40_TOKEN_NULL, d->pad_id, n);
    if (d->add_space_prefix != M40_VOCAB_ABSENT)
        tok->add_space_prefix = d->add_space_prefix != 0;
    if (d->add_bos != M40_VOCAB_ABSENT)
        tok->add_bos = d->add_bos != 0;
    if (d->add_eos != M40_VOCAB_ABSENT)
        tok->add_eos = d->add_eos != 0;
    if (tok->add_bos && tok->bos == M40_TOKEN_NULL)
        return m40_errf(err, "tokenizer.ggml.add_bos_token is true, but "
                             "tokenizer.ggml.bos_token_id is not set");
    if (tok->add_eos && tok->eos == M40_TOKEN_NULL)
        return m40_errf(err, "tokenizer.ggml.add_eos_token is true, but "
                             "tokenizer.ggml.eos_token_id is not set");
    return 0;
}

/* --- BPE merges ---------------------------------------------------------- */

/* Splits a merge line at the first space after its first byte, as
 * llama.cpp does; returns 0 when there is none. */
static int split_merge(const m40_tok_str *line, size_t *pos) {
    for (size_t i = 1; i < line->len; i++) {
        if (line->ptr[i] == ' ') {
            *pos = i;
            return 1;
        }
    }
    return 0;
}

/* Merges whose halves are both tokens go in the (id, id) map with the id
 * of the merged text precomputed; the rest are kept by their text. */
static int build_merges(m40_tokenizer *tok, const m40_vocab_data *d, m40_err *err) {
    if (!d->merges)
        return m40_errf(err, "tokenizer.ggml.merges is missing (needed by a gpt2 tokenizer)");
    size_t n = d->n_merges, n_lines = 0, line_bytes = 0, max_len = 0;
    if (n > (size_t)INT32_MAX)
        return m40_errf(err, "tokenizer.ggml.merges has too many entries (%zu)", n);
    if (m40_pairmap_init(&tok->merges, n, err))
        return -1;
    char *cat = NULL;
    for (size_t i = 0; i < n; i++)
        max_len = d->merges[i].len > max_len ? d->merges[i].len : max_len;
    cat = malloc(max_len + 1);
    if (!cat)
        return m40_errf(err, "out of memory");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const m40_tok_str *line = &d->merges[i];
            size_t sp;
            if (!line->ptr || !split_merge(line, &sp))
                continue; /* llama.cpp keys it as ("", ""), which never matches */
            int32_t l = m40_strmap_find(&tok->token_map, line->ptr, sp);
            int32_t r = m40_strmap_find(&tok->token_map, line->ptr + sp + 1, line->len - sp - 1);
            if (l >= 0 && r >= 0) {
                if (pass == 0) {
                    memcpy(cat, line->ptr, sp);
                    memcpy(cat + sp, line->ptr + sp + 1, line->len - sp - 1);
                    int32_t res = m40_strmap_find(&tok->token_map, cat, line->len - 1);
                    m40_pairmap_insert(&tok->merges, ((uint64_t)l << 32) | (uint32_t)r, (int32_t)i,
                                       res);
                }
            } else if (pass == 0) {
                n_lines++;
                line_bytes += line->len + 1;
            } else {
                m40_tok_str *t = &tok->merge_line_text[n_lines];
                memcpy(tok->merge_line_arena + line_bytes, line->ptr, line->len);
                t->ptr = tok->merge_line_arena + line_bytes;
                t->len = line->len;
                line_bytes += line->len + 1;
                tok->merge_line_rank[n_lines] = (int32_t)i;
                if (m40_strmap_insert(&tok->merge_lines, (int32_t)n_lines) < 0)
                    n_lines++; /* a repeated line keeps its first rank */
                else
                    line_bytes -= line->len + 1;
            }
        }
        if (pass == 0) {
            if (n_lines == 0)
                break;
            tok->merge_line_text = malloc(n_lines * sizeof *tok->merge_line_text);
            tok->merge_line_rank = malloc(n_lines * sizeof *tok->merge_line_rank);
            tok->merge_line_arena = malloc(line_bytes);
            if (!tok->merge_line_text || !tok->merge_line_rank || !tok->merge_line_arena) {
                free(cat);
                return m40_errf(err, "out of memory for %zu merges", n_lines);
            }
            if (m40_strmap_init(&tok->merge_lines, tok->merge_line_text, n_lines, err)) {
                free(cat);
                return -1;
            }
            n_lines = line_bytes = 0;
        }
    }
    free(cat);
    return 0;
}

/* --- byte tokens --------------------------------------------------------- */

static void build_byte_tokens(m40_tokenizer *tok) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        unsigned char u[4];
        size_t n = m40_utf8_encode(m40_gpt2_byte_to_cp((uint8_t)b), u);
        memcpy(tok->byte_utf8[b], u, n);
        tok->byte_utf8_len[b] = (unsigned char)n;
        if (tok->kind == M40_TOKENIZER_BPE) {
            tok->byte_token[b] = m40_strmap_find(&tok->token_map, (const char *)u, n);
        } else {
            /* SPM byte fallback: "<0xXX>", else the byte itself. */
            char buf[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            int32_t id = m40_strmap_find(&tok->token_map, buf, 6);
            if (id < 0) {
                char c = (char)b;
                id = m40_strmap_find(&tok->token_map, &c, 1);
            }
            tok->byte_token[b] = id;
        }
    }
}

/* --- SPM chunking -------------------------------------------------------- */

/* True when every U+2581 inside every token follows another U+2581, which
 * lets spm.c merge between such points independently. */
static int spm_can_split(const m40_tokenizer *tok) {
    for (size_t i = 0; i < tok->n_tokens; i++) {
        const m40_tok_str *t = &tok->text[i];
        for (size_t p = 1; p + 3 <= t->len; p++) {
            if (memcmp(t->ptr + p, "\xE2\x96\x81", 3))
                continue;
            if (p < 3 || memcmp(t->ptr + p - 3, "\xE2\x96\x81", 3))
                return 0;
        }
    }
    return 1;
}

/* --- create -------------------------------------------------------------- */

static int check_data(const m40_vocab_data *d, m40_err *err) {
    if (!d)
        return m40_errf(err, "no vocabulary data");
    if (d->n_tokens == 0 || !d->tokens)
        return m40_errf(err, "tokenizer.ggml.tokens is missing or empty");
    if (d->n_tokens > (size_t)INT32_MAX - 1)
        return m40_errf(err, "tokenizer.ggml.tokens has too many entries (%zu)", d->n_tokens);
    return 0;
}

static int create_steps(m40_tokenizer *tok, const m40_vocab_data *d, m40_err *err) {
    tok->n_tokens = d->n_tokens;
    if (set_model(tok, d, err) || copy_tokens(tok, d, err) || build_token_map(tok, err) ||
        set_special_ids(tok, d, err) || m40_vocab_detect_special(tok, err))
        return -1;
    if (tok->kind == M40_TOKENIZER_BPE) {
        if (build_merges(tok, d, err))
            return -1;
        tok->pretok = m40_pretok_create(tok->pre_name, err);
        if (!tok->pretok)
            return -1;
    }
    build_byte_tokens(tok);
    tok->spm_split = tok->kind == M40_TOKENIZER_SPM && spm_can_split(tok);
    if (m40_vocab_build_special(tok, err) || m40_build_pieces(tok, err))
        return -1;
    m40_vocab_model_attrs(tok, d);
    return 0;
}

m40_tokenizer *m40_tokenizer_create(const m40_vocab_data *d, m40_err *err) {
    if (check_data(d, err))
        return NULL;
    m40_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        m40_errf(err, "out of memory");
        return NULL;
    }
    tok->bos = tok->eos = tok->eot = tok->eom = tok->unk = tok->sep = tok->pad = M40_TOKEN_NULL;
    tok->fim_pre = tok->fim_suf = tok->fim_mid = M40_TOKEN_NULL;
    tok->fim_pad = tok->fim_rep = tok->fim_sep = M40_TOKEN_NULL;
    if (create_steps(tok, d, err)) {
        m40_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

/* --- facts --------------------------------------------------------------- */

m40_tokenizer_kind m40_tokenizer_kind_of(const m40_tokenizer *tok) {
    return tok->kind;
}
const char *m40_tokenizer_pre(const m40_tokenizer *tok) {
    return tok->pre_name;
}
size_t m40_tokenizer_n_tokens(const m40_tokenizer *tok) {
    return tok->n_tokens;
}
m40_token m40_tokenizer_bos(const m40_tokenizer *tok) {
    return tok->bos;
}
m40_token m40_tokenizer_eos(const m40_tokenizer *tok) {
    return tok->eos;
}
m40_token m40_tokenizer_eot(const m40_tokenizer *tok) {
    return tok->eot;
}
m40_token m40_tokenizer_unk(const m40_tokenizer *tok) {
    return tok->unk;
}
m40_token m40_tokenizer_pad(const m40_tokenizer *tok) {
    return tok->pad;
}
m40_token m40_tokenizer_sep(const m40_tokenizer *tok) {
    return tok->sep;
}
int m40_tokenizer_add_bos(const m40_tokenizer *tok) {
    return tok->add_bos;
}
int m40_tokenizer_add_eos(const m40_tokenizer *tok) {
    return tok->add_eos;
}

m40_token_type m40_tokenizer_token_type(const m40_tokenizer *tok, m40_token id) {
    if (id < 0 || (size_t)id >= tok->n_tokens)
        return M40_TOKEN_TYPE_UNDEFINED;
    return (m40_token_type)tok->type[id];
}

const char *m40_tokenizer_token_text(const m40_tokenizer *tok, m40_token id, size_t *len) {
    if (id < 0 || (size_t)id >= tok->n_tokens)
        return NULL;
    if (len)
        *len = tok->text[id].len;
    return tok->text[id].ptr;
}

m40_token m40_tokenizer_find(const m40_tokenizer *tok, const char *text, size_t len) {
    return m40_strmap_find(&tok->token_map, text, len);
}
