/* vocab_special.c - the special tokens: found by their text, listed, found in text.
 *
 * llama.cpp's load() recognises end-of-turn, fill-in-the-middle and
 * end-of-generation tokens by their text (overriding their type to
 * control), marks control tokens named "unused", forces a few gpt-oss
 * tokens to user-defined, then lists every control, user-defined and
 * unknown token longest first for tokenizer_st_partition. Last it sets
 * lstrip/rstrip by model name (Phi-3, Jina v2, ModernBERT). Same here, in
 * the same order, plus a byte trie over the list for encode.c.
 *
 * Owns: the eog, special and trie arrays of struct m40_tokenizer (freed by
 * m40_tokenizer_free). Touches: token attributes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static m40_token find_text(const m40_tokenizer *tok, const char *s) {
    return m40_strmap_find(&tok->token_map, s, strlen(s));
}

/* Texts llama.cpp recognises as end-of-turn, FIM and end-of-generation
 * tokens. llama.cpp takes the first match in hash-map order when several
 * are present; we take the first in these lists, which is deterministic. */
static const char *const k_eot_texts[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "<|end_of_text|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "<\xEF\xBD\x9C"
                                          "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                          "<end_of_utterance>",
                                          NULL};
static const char *const k_eom_texts[] = {"<|eom_id|>", NULL};
static const char *const k_fim_pre_texts[] = {"<|fim_prefix|>",
                                              "<fim-prefix>",
                                              "<fim_prefix>",
                                              "<\xEF\xBD\x9C"
                                              "fim\xE2\x96\x81"
                                              "begin\xEF\xBD\x9C>",
                                              "<PRE>",
                                              "\xE2\x96\x81<PRE>",
                                              "<|code_prefix|>",
                                              "<|prefix|>",
                                              NULL};
static const char *const k_fim_suf_texts[] = {"<|fim_suffix|>",
                                              "<fim-suffix>",
                                              "<fim_suffix>",
                                              "<\xEF\xBD\x9C"
                                              "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
                                              "<SUF>",
                                              "\xE2\x96\x81<SUF>",
                                              "<|code_suffix|>",
                                              "<|suffix|>",
                                              NULL};
static const char *const k_fim_mid_texts[] = {"<|fim_middle|>",
                                              "<fim-middle>",
                                              "<fim_middle>",
                                              "<\xEF\xBD\x9C"
                                              "fim\xE2\x96\x81"
                                              "end\xEF\xBD\x9C>",
                                              "<MID>",
                                              "\xE2\x96\x81<MID>",
                                              "<|code_middle|>",
                                              "<|middle|>",
                                              NULL};
static const char *const k_fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                              "<PAD>",       "[PAD]",     NULL};
static const char *const k_fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                              "<REPO>",       "<reponame>",    NULL};
static const char *const k_fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const k_eog_texts[] = {"<|eot_id|>",
                                          "<|im_end|>",
                                          "<|end|>",
                                          "<|return|>",
                                          "<|call|>",
                                          "<|flush|>",
                                          "<|calls|>",
                                          "<end_of_turn>",
                                          "<|endoftext|>",
                                          "</s>",
                                          "<|eom_id|>",
                                          "<EOT>",
                                          "_<EOT>",
                                          "[EOT]",
                                          "[EOS]",
                                          "<|end_of_text|>",
                                          "<end_of_utterance>",
                                          "<eos>",
                                          "<turn|>",
                                          "<|tool_response>",
                                          "<\xEF\xBD\x9C"
                                          "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                          "[e~[",
                                          NULL};

/* If *id is unset, sets it to the first listed text present, and makes
 * that token a control token (llama.cpp overrides its type). */
static void detect(m40_tokenizer *tok, m40_token *id, const char *const *texts) {
    if (*id != M40_TOKEN_NULL)
        return;
    for (; *texts; texts++) {
        m40_token t = find_text(tok, *texts);
        if (t >= 0) {
            *id = t;
            tok->attr[t] |= TOK_ATTR_CONTROL;
            return;
        }
    }
}

static int eog_has(const m40_tokenizer *tok, m40_token id) {
    for (size_t i = 0; i < tok->n_eog; i++) {
        if (tok->eog[i] == id)
            return 1;
    }
    return 0;
}

static void eog_add(m40_tokenizer *tok, m40_token id) {
    if (id != M40_TOKEN_NULL && !eog_has(tok, id))
        tok->eog[tok->n_eog++] = id;
}

static void eog_remove(m40_tokenizer *tok, m40_token id) {
    for (size_t i = 0; i < tok->n_eog; i++) {
        if (tok->eog[i] == id) {
            tok->eog[i] = tok->eog[--tok->n_eog];
            return;
        }
    }
}

/* The text-based rules of llama.cpp's load(), in its order. */
int m40_vocab_detect_special(m40_tokenizer *tok, m40_err *err) {
    detect(tok, &tok->eot, k_eot_texts);
    detect(tok, &tok->eom, k_eom_texts);
    detect(tok, &tok->fim_pre, k_fim_pre_texts);
    detect(tok, &tok->fim_suf, k_fim_suf_texts);
    detect(tok, &tok->fim_mid, k_fim_mid_texts);
    detect(tok, &tok->fim_pad, k_fim_pad_texts);
    detect(tok, &tok->fim_rep, k_fim_rep_texts);
    detect(tok, &tok->fim_sep, k_fim_sep_texts);

    /* Control tokens named "unused..." are unused. */
    for (size_t i = 0; i < tok->n_tokens; i++) {
        if ((tok->attr[i] & TOK_ATTR_CONTROL) && strstr(tok->text[i].ptr, "unused"))
            tok->attr[i] |= TOK_ATTR_UNUSED;
    }

    size_t n_texts = sizeof k_eog_texts / sizeof k_eog_texts[0];
    tok->eog = malloc((n_texts + 8) * sizeof *tok->eog);
    if (!tok->eog)
        return m40_errf(err, "out of memory");
    eog_add(tok, tok->fim_pad);
    eog_add(tok, tok->fim_rep);
    eog_add(tok, tok->fim_sep);
    for (const char *const *t = k_eog_texts; *t; t++) {
        m40_token id = find_text(tok, *t);
        if (id >= 0) {
            eog_add(tok, id);
            tok->attr[id] |= TOK_ATTR_CONTROL;
        }
    }
    /* gpt-oss: these always render. */
    static const char *const k_always_render[] = {"<|channel|>", "<|message|>", "<|start|>",
                                                  "<|constrain|>", NULL};
    for (const char *const *t = k_always_render; *t; t++) {
        m40_token id = find_text(tok, *t);
        if (id >= 0)
            tok->attr[id] = TOK_ATTR_USER_DEFINED;
    }
    eog_add(tok, tok->eos);
    eog_add(tok, tok->eot);
    eog_add(tok, tok->eom);

    /* o200k_harmony / solar-open: <|end|> is not the end of generation. */
    m40_token end = find_text(tok, "<|end|>");
    int has_return = eog_has(tok, find_text(tok, "<|return|>"));
    int has_call =
        eog_has(tok, find_text(tok, "<|call|>")) || eog_has(tok, find_text(tok, "<|calls|>"));
    int has_flush = eog_has(tok, find_text(tok, "<|flush|>"));
    if (end >= 0 && eog_has(tok, end) && ((has_return && has_call) || (has_call && has_flush))) {
        eog_remove(tok, end);
        tok->attr[end] = TOK_ATTR_USER_DEFINED;
    }
    /* gemma4 / paddleocr: </s> is not the end of generation. */
    m40_token s_end = find_text(tok, "</s>");
    if (s_end >= 0 && eog_has(tok, s_end) && eog_has(tok, find_text(tok, "<|tool_response>"))) {
        eog_remove(tok, s_end);
        tok->attr[s_end] = TOK_ATTR_NORMAL;
    }
    return 0;
}

/* --- special-token list and trie ---------------------------------------- */

typedef struct special_key {
    size_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* llama.cpp's order among equals is unspecified */
}

static int trie_add(m40_tokenizer *tok, m40_token id) {
    const m40_tok_str *t = &tok->text[id];
    int32_t node = 0;
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->ptr[i];
        int32_t ch = tok->trie[node].first_child;
        while (ch >= 0 && tok->trie[ch].byte != c)
            ch = tok->trie[ch].next_sibling;
        if (ch < 0) {
            ch = (int32_t)tok->n_trie++;
            tok->trie[ch] = (tok_trie_node){-1, tok->trie[node].first_child, -1, c};
            tok->trie[node].first_child = ch;
        }
        node = ch;
    }
    tok->trie[node].token = id;
    return 0;
}

/* Tokens with control, user-defined or unknown type, longest first, as
 * llama.cpp's cache_special_tokens; and a trie to find them in text. */
int m40_vocab_build_special(m40_tokenizer *tok, m40_err *err) {
    size_t n = 0, chars = 1;
    for (size_t i = 0; i < tok->n_tokens; i++) {
        if (tok->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) {
            n++;
            chars += tok->text[i].len;
        }
    }
    special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    tok->special = malloc((n ? n : 1) * sizeof *tok->special);
    tok->special_rank = malloc(tok->n_tokens * sizeof *tok->special_rank);
    tok->trie = malloc(chars * sizeof *tok->trie);
    if (!keys || !tok->special || !tok->special_rank || !tok->trie) {
        free(keys);
        return m40_errf(err, "out of memory for %zu special tokens", n);
    }
    for (size_t i = 0; i < tok->n_tokens; i++) {
        tok->special_rank[i] = -1;
        if (tok->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            keys[tok->n_special++] = (special_key){tok->text[i].len, (int32_t)i};
    }
    qsort(keys, tok->n_special, sizeof *keys, cmp_special);
    for (size_t r = 0; r < tok->n_special; r++)
        tok->special[r] = keys[r].id;
    free(keys);
    tok->trie[0] = (tok_trie_node){-1, -1, -1, 0};
    tok->n_trie = 1;
    for (size_t r = 0; r < tok->n_special; r++) {
        tok->special_rank[tok->special[r]] = (int32_t)r;
        trie_add(tok, tok->special[r]);
    }
    return 0;
}

/* --- per-model attributes ------------------------------------------------ */

static void set_attr(m40_tokenizer *tok, const char *text, uint16_t bit, int on) {
    m40_token id = find_text(tok, text);
    if (id < 0)
        return;
    if (on)
        tok->attr[id] |= bit;
    else
        tok->attr[id] &= (uint16_t)~bit;
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; hay && *hay; hay++) {
        size_t i = 0;
        while (i < n && tolower((unsigned char)hay[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* llama.cpp sets lstrip/rstrip by model and tokenizer name. */
void m40_vocab_model_attrs(m40_tokenizer *tok, const m40_vocab_data *d) {
    if (d->pre && (strstr(d->pre, "jina-v2-de") || strstr(d->pre, "jina-v2-es") ||
                   strstr(d->pre, "jina-v2-code"))) {
        set_attr(tok, "<mask>", TOK_ATTR_LSTRIP, 1);
    } else if (contains_ci(d->name, "phi-3") || contains_ci(d->name, "phi3")) {
        for (size_t r = 0; r < tok->n_special; r++)
            tok->attr[tok->special[r]] |= TOK_ATTR_RSTRIP;
        set_attr(tok, "</s>", TOK_ATTR_RSTRIP, 1);
        set_attr(tok, "<unk>", TOK_ATTR_RSTRIP, 0);
        set_attr(tok, "<s>", TOK_ATTR_RSTRIP, 0);
        set_attr(tok, "<|endoftext|>", TOK_ATTR_RSTRIP, 0);
    } else if (contains_ci(d->name, "modern-bert")) {
        set_attr(tok, "[MASK]", TOK_ATTR_LSTRIP, 1);
    }
}

int m40_tokenizer_is_eog(const m40_tokenizer *tok, m40_token id) {
    return id != M40_TOKEN_NULL && eog_has(tok, id);
}
