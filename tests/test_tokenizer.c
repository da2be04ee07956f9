/* test_tokenizer.c - tokenizer rules on small vocabularies built in the test.
 *
 * No fixtures: each test builds an m40_vocab_data by hand and checks one
 * rule of llama.cpp's tokenizer: SPM merges by score, the space prefix,
 * byte fallback, BOS/EOS, special-token splitting (longest first, control
 * tokens only with parse_special, user-defined always), BPE merges by
 * rank, ignore_merges, the GPT-2 byte map, invalid UTF-8, decoding and the
 * clean-up pass, and the errors (unknown pre-tokenizer, unknown model,
 * duplicate tokens, add_bos without a BOS id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define MAX_TOK 600

/* A vocabulary under construction. */
typedef struct vb {
    m40_tok_str tok[MAX_TOK];
    char text[MAX_TOK][16];
    float score[MAX_TOK];
    int32_t type[MAX_TOK];
    size_t n;
    m40_tok_str merge[64];
    char merge_text[64][24];
    size_t n_merges;
} vb;

static int32_t vb_add_n(vb *v, const char *s, size_t len, float score, int32_t type) {
    memcpy(v->text[v->n], s, len);
    v->tok[v->n] = (m40_tok_str){v->text[v->n], len};
    v->score[v->n] = score;
    v->type[v->n] = type;
    return (int32_t)v->n++;
}

static int32_t vb_add(vb *v, const char *s, float score, int32_t type) {
    return vb_add_n(v, s, strlen(s), score, type);
}

static void vb_merge(vb *v, const char *line) {
    snprintf(v->merge_text[v->n_merges], sizeof v->merge_text[0], "%s", line);
    v->merge[v->n_merges] = (m40_tok_str){v->merge_text[v->n_merges], strlen(line)};
    v->n_merges++;
}

static m40_vocab_data vb_data(vb *v, const char *model, const char *pre) {
    m40_vocab_data d = m40_vocab_data_empty();
    d.model = model;
    d.pre = pre;
    d.n_tokens = v->n;
    d.tokens = v->tok;
    d.scores = v->score;
    d.token_types = v->type;
    d.n_merges = v->n_merges;
    d.merges = v->merge;
    return d;
}

/* Encodes and compares with the expected ids (terminated by -2). */
static int encodes_to(const m40_tokenizer *tok, const char *text, unsigned flags,
                      const m40_token *want) {
    m40_tokens got = {0};
    m40_err err = {0};
    size_t n_want = 0;
    while (want[n_want] != -2)
        n_want++;
    int ok = m40_tokenize(tok, text, strlen(text), flags, &got, &err) == 0 && got.n == n_want &&
             (n_want == 0 || !memcmp(got.ids, want, n_want * sizeof *want));
    if (!ok) {
        fprintf(stderr, "'%s' ->", text);
        for (size_t i = 0; i < got.n; i++)
            fprintf(stderr, " %d", got.ids[i]);
        fprintf(stderr, "%s%s\n", err.msg[0] ? " error: " : "", err.msg);
    }
    m40_tokens_free(&got);
    return ok;
}

static int decodes_to(const m40_tokenizer *tok, const m40_token *ids, size_t n, unsigned flags,
                      const char *want) {
    char *text = NULL;
    size_t len = 0;
    m40_err err = {0};
    int ok = m40_detokenize(tok, ids, n, flags, &text, &len, &err) == 0 && len == strlen(want) &&
             !memcmp(text, want, len);
    if (!ok)
        fprintf(stderr, "decoded '%s', want '%s' %s\n", text ? text : "", want, err.msg);
    free(text);
    return ok;
}

/* --- SPM ---------------------------------------------------------------- */

/* <unk> <s> </s>, 256 byte tokens, then a few pieces. Ids of interest: */
enum { S_UNK = 0, S_BOS = 1, S_EOS = 2, S_BYTE0 = 3 };
static int32_t s_sp, s_a, s_b, s_ab, s_sp_ab, s_sp_a, s_user, s_ctl, s_ctl_long;

static void spm_vocab(vb *v) {
    memset(v, 0, sizeof *v);
    vb_add(v, "<unk>", 0, M40_TOKEN_TYPE_UNKNOWN);
    vb_add(v, "<s>", 0, M40_TOKEN_TYPE_CONTROL);
    vb_add(v, "</s>", 0, M40_TOKEN_TYPE_CONTROL);
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        vb_add(v, buf, 0, M40_TOKEN_TYPE_BYTE);
    }
    s_sp = vb_add(v, "\xE2\x96\x81", -5, M40_TOKEN_TYPE_NORMAL);
    s_a = vb_add(v, "a", -4, M40_TOKEN_TYPE_NORMAL);
    s_b = vb_add(v, "b", -4, M40_TOKEN_TYPE_NORMAL);
    s_ab = vb_add(v, "ab", -2, M40_TOKEN_TYPE_NORMAL);
    s_sp_ab = vb_add(v,
                     "\xE2\x96\x81"
                     "ab",
                     -1, M40_TOKEN_TYPE_NORMAL);
    s_sp_a = vb_add(v,
                    "\xE2\x96\x81"
                    "a",
                    -3, M40_TOKEN_TYPE_NORMAL);
    s_user = vb_add(v, "<|user|>", 0, M40_TOKEN_TYPE_USER_DEFINED);
    s_ctl = vb_add(v, "<|c|>", 0, M40_TOKEN_TYPE_CONTROL);
    s_ctl_long = vb_add(v, "<|c|>!", 0, M40_TOKEN_TYPE_CONTROL);
}

static m40_tokenizer *spm_tok(vb *v, int add_eos) {
    spm_vocab(v);
    m40_vocab_data d = vb_data(v, "llama", NULL);
    d.n_merges = 0;
    d.merges = NULL;
    d.add_eos = add_eos;
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_create(&d, &err);
    if (!tok)
        fprintf(stderr, "spm vocab: %s\n", err.msg);
    return tok;
}

static void test_spm_merges_and_prefix(void) {
    vb v;
    m40_tokenizer *tok = spm_tok(&v, M40_VOCAB_ABSENT);
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK(m40_tokenizer_kind_of(tok) == M40_TOKENIZER_SPM);
    /* "ab" -> "▁ab": the prefix is added, then merges by best score. */
    CHECK(encodes_to(tok, "ab", 0, (m40_token[]){s_sp_ab, -2}));
    /* "a ab": ▁a then ▁ab. */
    CHECK(encodes_to(tok, "a ab", 0, (m40_token[]){s_sp_a, s_sp_ab, -2}));
    /* BOS only with ADD_SPECIAL (add_bos defaults to true for SPM). */
    CHECK(encodes_to(tok, "ab", M40_TOKENIZE_ADD_SPECIAL, (m40_token[]){S_BOS, s_sp_ab, -2}));
    /* Empty text: nothing, or just BOS. */
    CHECK(encodes_to(tok, "", 0, (m40_token[]){-2}));
    CHECK(encodes_to(tok, "", M40_TOKENIZE_ADD_SPECIAL, (m40_token[]){S_BOS, -2}));
    m40_tokenizer_free(tok);
}

static void test_spm_byte_fallback(void) {
    vb v;
    m40_tokenizer *tok = spm_tok(&v, M40_VOCAB_ABSENT);
    if (!tok)
        return;
    /* 'z' and 'é' (C3 A9) are not pieces: their bytes are. */
    CHECK(encodes_to(tok, "z\xC3\xA9", 0,
                     (m40_token[]){s_sp, S_BYTE0 + 'z', S_BYTE0 + 0xC3, S_BYTE0 + 0xA9, -2}));
    /* Invalid UTF-8 is just bytes to SPM. */
    CHECK(encodes_to(tok, "a\xFF", 0, (m40_token[]){s_sp_a, S_BYTE0 + 0xFF, -2}));
    /* Decoding: byte tokens are bytes, the prefix space goes away. */
    m40_token ids[] = {s_sp, S_BYTE0 + 'z', S_BYTE0 + 0xC3, S_BYTE0 + 0xA9};
    CHECK(decodes_to(tok, ids, 4, 0, "z\xC3\xA9"));
    CHECK(decodes_to(tok, ids, 4, M40_DETOK_KEEP_LEADING_SPACE, " z\xC3\xA9"));
    m40_tokenizer_free(tok);
}

static void test_spm_special_tokens(void) {
    vb v;
    m40_tokenizer *tok = spm_tok(&v, 1);
    if (!tok)
        return;
    unsigned ps = M40_TOKENIZE_PARSE_SPECIAL;
    /* Without parse_special control texts are plain text; user-defined
     * tokens are split out either way. */
    CHECK(encodes_to(tok, "ab<|user|>ab", 0, (m40_token[]){s_sp_ab, s_user, s_sp_ab, -2}));
    CHECK(encodes_to(tok, "<|c|>", ps, (m40_token[]){s_ctl, -2}));
    /* Longest first: "<|c|>!" beats "<|c|>". The prefix space comes back
     * after a special token (llama.cpp's is_prev_special). */
    CHECK(encodes_to(tok, "a<|c|>!ab", ps, (m40_token[]){s_sp_a, s_ctl_long, s_sp_ab, -2}));
    CHECK(encodes_to(tok, "<s>ab", ps, (m40_token[]){S_BOS, s_sp_ab, -2}));
    /* add_eos from the key: EOS at the end with ADD_SPECIAL. */
    CHECK(
        encodes_to(tok, "ab", M40_TOKENIZE_ADD_SPECIAL, (m40_token[]){S_BOS, s_sp_ab, S_EOS, -2}));
    /* Control tokens render only when asked. */
    m40_token ids[] = {S_BOS, s_sp_ab, s_ctl, S_EOS};
    CHECK(decodes_to(tok, ids, 4, 0, " ab"));
    CHECK(decodes_to(tok, ids, 4, M40_DETOK_RENDER_SPECIAL, "<s> ab<|c|></s>"));
    CHECK(decodes_to(tok, ids, 4, M40_DETOK_RENDER_SPECIAL | M40_DETOK_REMOVE_SPECIAL, " ab<|c|>"));
    const char *piece;
    size_t n;
    m40_err err = {0};
    CHECK(m40_token_to_piece(tok, s_user, 0, &piece, &n, &err) == 0 && n == 8);
    CHECK(m40_token_to_piece(tok, s_ctl, 0, &piece, &n, &err) == 0 && n == 0);
    CHECK(m40_token_to_piece(tok, (m40_token)v.n, 0, &piece, &n, &err) == -1);
    CHECK_CONTAINS(err.msg, "outside the vocabulary");
    CHECK(m40_tokenizer_is_eog(tok, S_EOS));
    CHECK(!m40_tokenizer_is_eog(tok, S_BOS));
    m40_tokenizer_free(tok);
}

/* --- BPE ---------------------------------------------------------------- */

/* The 256 GPT-2 byte characters (ids 0..255, in byte order), then merges. */
static int32_t g_ab, g_abc, g_sp_abc, g_xyz, g_eot;

static void bpe_vocab(vb *v) {
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        unsigned char u[4];
        size_t n = m40_utf8_encode(m40_gpt2_byte_to_cp((uint8_t)b), u);
        vb_add_n(v, (const char *)u, n, 0, M40_TOKEN_TYPE_NORMAL);
    }
    g_ab = vb_add(v, "ab", 0, M40_TOKEN_TYPE_NORMAL);
    g_abc = vb_add(v, "abc", 0, M40_TOKEN_TYPE_NORMAL);
    g_sp_abc = vb_add(v,
                      "\xC4\xA0"
                      "abc",
                      0, M40_TOKEN_TYPE_NORMAL);        /* "Ġabc" */
    g_xyz = vb_add(v, "xyz", 0, M40_TOKEN_TYPE_NORMAL); /* no merge makes it */
    g_eot = vb_add(v, "<|endoftext|>", 0, M40_TOKEN_TYPE_CONTROL);
    vb_merge(v, "a b");
    vb_merge(v, "ab c");
    vb_merge(v, "\xC4\xA0 abc");
}

static m40_tokenizer *bpe_tok(vb *v, const char *pre, m40_err *err) {
    bpe_vocab(v);
    m40_vocab_data d = vb_data(v, "gpt2", pre);
    d.bos_id = d.eos_id = g_eot;
    return m40_tokenizer_create(&d, err);
}

static void test_bpe_merges(void) {
    vb v;
    m40_err err = {0};
    m40_tokenizer *tok = bpe_tok(&v, "gpt-2", &err);
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK(strcmp(m40_tokenizer_pre(tok), "gpt-2") == 0);
    /* "abc abc" -> words "abc", " abc"; merges by rank. */
    CHECK(encodes_to(tok, "abc abc", 0, (m40_token[]){g_abc, g_sp_abc, -2}));
    /* "abx": ab + x (the byte character 'x' is token 'x'). */
    CHECK(encodes_to(tok, "abx", 0, (m40_token[]){g_ab, 'x', -2}));
    /* gpt-2 has no ignore_merges: "xyz" stays three bytes. */
    CHECK(encodes_to(tok, "xyz", 0, (m40_token[]){'x', 'y', 'z', -2}));
    /* Bytes map through the GPT-2 alphabet: '\n' is token 10. */
    CHECK(encodes_to(tok, "\n", 0, (m40_token[]){'\n', -2}));
    /* Control tokens only with parse_special; BOS not added by default. */
    CHECK(encodes_to(tok, "a<|endoftext|>", M40_TOKENIZE_PARSE_SPECIAL | M40_TOKENIZE_ADD_SPECIAL,
                     (m40_token[]){'a', g_eot, -2}));
    /* Invalid UTF-8 becomes U+FFFD (EF BF BD), as in llama.cpp. */
    CHECK(encodes_to(tok, "\xFF", 0, (m40_token[]){0xEF, 0xBF, 0xBD, -2}));
    /* ...but a form above U+10FFFF is an error, as llama.cpp throws. */
    m40_tokens ids = {0};
    CHECK(m40_tokenize(tok, "\xF7\xBF\xBF\xBF", 4, 0, &ids, &err) == -1);
    CHECK_CONTAINS(err.msg, "above U+10FFFF");
    m40_tokens_free(&ids);
    m40_token dec[] = {g_abc, g_sp_abc, 0xC3, 0xA9};
    CHECK(decodes_to(tok, dec, 4, 0, "abc abc\xC3\xA9"));
    m40_tokenizer_free(tok);
}

static void test_bpe_ignore_merges(void) {
    vb v;
    m40_err err = {0};
    m40_tokenizer *tok = bpe_tok(&v, "llama-bpe", &err);
    CHECK(tok != NULL);
    if (!tok)
        return;
    /* llama3: a word that is a token is emitted whole, merges or not. */
    CHECK(encodes_to(tok, "xyz", 0, (m40_token[]){g_xyz, -2}));
    /* llama-bpe adds BOS by default. */
    CHECK(m40_tokenizer_add_bos(tok) == 1);
    CHECK(encodes_to(tok, "xyz", M40_TOKENIZE_ADD_SPECIAL, (m40_token[]){g_eot, g_xyz, -2}));
    m40_tokenizer_free(tok);
}

static void test_bpe_clean_spaces(void) {
    vb v;
    m40_err err = {0};
    m40_tokenizer *tok = bpe_tok(&v, "gpt-2", &err);
    if (!tok)
        return;
    /* "a ?" decodes to "a?" with clean-up, "a ?" without. */
    m40_token ids[] = {'a', m40_tokenizer_find(tok, "\xC4\xA0", 2) /* 'Ġ' = ' ' */, '?'};
    CHECK(decodes_to(tok, ids, 3, 0, "a?"));
    CHECK(decodes_to(tok, ids, 3, M40_DETOK_NO_CLEANUP, "a ?"));
    m40_tokenizer_free(tok);
}

/* Every supported tokenizer.ggml.pre builds (each regex compiles in its
 * PCRE2 mode) and encodes mixed text; the table has all the names. */
static void test_every_pre_tokenizer(void) {
    static const char text[] = "Hello, y'all! 3.14159 caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA"
                               "\x9E  \n\t\xF0\x9F\x98\x81 ~`|$ \xE3\x80\x80x <0x41>\xFF";
    size_t n = 0, built = 0;
    for (const char *name; (name = m40_pretok_name_at(n)) != NULL; n++) {
        vb v;
        m40_err err = {0};
        m40_tokenizer *tok = bpe_tok(&v, name, &err);
        if (!tok) {
            fprintf(stderr, "pre-tokenizer '%s': %s\n", name, err.msg);
            continue;
        }
        m40_tokens ids = {0};
        int ok = m40_tokenize(tok, text, sizeof text - 1, 0, &ids, &err) == 0 && ids.n > 0;
        if (!ok)
            fprintf(stderr, "pre-tokenizer '%s' encode: %s\n", name, err.msg);
        built += (size_t)ok;
        m40_tokens_free(&ids);
        m40_tokenizer_free(tok);
    }
    CHECK(n >= 80);
    CHECK(built == n);
}

/* --- errors ------------------------------------------------------------- */

static void test_errors(void) {
    vb v;
    m40_err err = {0};
    CHECK(bpe_tok(&v, "no-such-pre", &err) == NULL);
    CHECK_CONTAINS(err.msg, "unknown or unsupported pre-tokenizer 'no-such-pre'");

    m40_vocab_data d = vb_data(&v, "bert", NULL);
    CHECK(m40_tokenizer_create(&d, &err) == NULL);
    CHECK_CONTAINS(err.msg, "tokenizer model 'bert'");

    d = vb_data(&v, "gpt2", "gpt-2");
    d.merges = NULL;
    CHECK(m40_tokenizer_create(&d, &err) == NULL);
    CHECK_CONTAINS(err.msg, "tokenizer.ggml.merges is missing");

    bpe_vocab(&v);
    vb_add(&v, "ab", 0, M40_TOKEN_TYPE_NORMAL); /* a second "ab" */
    d = vb_data(&v, "gpt2", "gpt-2");
    CHECK(m40_tokenizer_create(&d, &err) == NULL);
    CHECK_CONTAINS(err.msg, "duplicate token");

    bpe_vocab(&v);
    d = vb_data(&v, "gpt2", "chatglm-bpe"); /* clears the BOS id */
    d.add_bos = 1;
    CHECK(m40_tokenizer_create(&d, &err) == NULL);
    CHECK_CONTAINS(err.msg, "add_bos_token is true");

    d = m40_vocab_data_empty();
    CHECK(m40_tokenizer_create(&d, &err) == NULL);
    CHECK_CONTAINS(err.msg, "tokenizer.ggml.tokens");
}

/* Special ids from keys, defaults, and out-of-range keys (ignored). */
static void test_special_ids(void) {
    vb v;
    spm_vocab(&v);
    m40_vocab_data d = vb_data(&v, "llama", NULL);
    d.merges = NULL;
    d.eos_id = 100000; /* out of range: the default (2) stays */
    d.pad_id = S_UNK;
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_create(&d, &err);
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK(m40_tokenizer_bos(tok) == S_BOS);
    CHECK(m40_tokenizer_eos(tok) == S_EOS);
    CHECK(m40_tokenizer_unk(tok) == S_UNK);
    CHECK(m40_tokenizer_pad(tok) == S_UNK);
    CHECK(m40_tokenizer_sep(tok) == M40_TOKEN_NULL);
    CHECK(m40_tokenizer_token_type(tok, S_BYTE0) == M40_TOKEN_TYPE_BYTE);
    size_t len = 0;
    CHECK(strcmp(m40_tokenizer_token_text(tok, S_BOS, &len), "<s>") == 0 && len == 3);
    m40_tokenizer_free(tok);
}

int main(void) {
    test_spm_merges_and_prefix();
    test_spm_byte_fallback();
    test_spm_special_tokens();
    test_bpe_merges();
    test_bpe_ignore_merges();
    test_bpe_clean_spaces();
    test_every_pre_tokenizer();
    test_errors();
    test_special_ids();
    return check_report();
}
