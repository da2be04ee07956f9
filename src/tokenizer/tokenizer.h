/* tokenizer.h - text <-> token ids, exactly as llama.cpp does it.
 *
 * Two tokenizer models, chosen by tokenizer.ggml.model:
 *   "llama"  SentencePiece-style (SPM): spaces become U+2581, an optional
 *            space prefix, bigram merges by highest score, byte fallback to
 *            <0xXX> tokens.
 *   "gpt2"   byte-level BPE: a pre-tokenizer (regexes chosen by
 *            tokenizer.ggml.pre) splits the text into words, each word's
 *            bytes are mapped to GPT-2's byte alphabet and merged by rank.
 * Special tokens (control, user-defined, unknown) are split out of the text
 * first, longest first, as llama.cpp's tokenizer_st_partition does;
 * control and unknown ones only when M40_TOKENIZE_PARSE_SPECIAL is set.
 * docs/tokenizer.md describes the algorithms and every known difference.
 *
 * The core builds from plain arrays (m40_vocab_data) and knows nothing of
 * GGUF; m40_tokenizer_load_gguf() (vocab_gguf.c) fills those arrays from a
 * GGUF file's tokenizer.ggml.* keys.
 *
 * A built tokenizer is immutable: any number of threads may encode and
 * decode with it at once (each call allocates its own scratch).
 *
 * Owns: the vocabulary, its lookup tables, the compiled pre-tokenizer
 * regexes. Touches: nothing of models, backends, engine, server or CLI.
 */
#ifndef M40_TOKENIZER_TOKENIZER_H
#define M40_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef int32_t m40_token;
#define M40_TOKEN_NULL ((m40_token)-1)

/* tokenizer.ggml.token_type values. */
typedef enum m40_token_type {
    M40_TOKEN_TYPE_UNDEFINED = 0,
    M40_TOKEN_TYPE_NORMAL = 1,
    M40_TOKEN_TYPE_UNKNOWN = 2,
    M40_TOKEN_TYPE_CONTROL = 3,
    M40_TOKEN_TYPE_USER_DEFINED = 4,
    M40_TOKEN_TYPE_UNUSED = 5,
    M40_TOKEN_TYPE_BYTE = 6,
} m40_token_type;

/* A byte string that need not be NUL-terminated (GGUF strings are not). */
typedef struct m40_tok_str {
    const char *ptr;
    size_t len;
} m40_tok_str;

/* Marks an optional integer field of m40_vocab_data as absent. */
#define M40_VOCAB_ABSENT (-1)

/* Everything the tokenizer is built from. Pointers are only read during
 * m40_tokenizer_create(), which copies what it keeps. */
typedef struct m40_vocab_data {
    const char *model;          /* tokenizer.ggml.model: "llama" or "gpt2" */
    const char *pre;            /* tokenizer.ggml.pre; NULL when absent */
    const char *name;           /* general.name (per-model rules); may be NULL */
    size_t n_tokens;            /* tokenizer.ggml.tokens */
    const m40_tok_str *tokens;  /* n_tokens */
    const float *scores;        /* n_tokens, or NULL (all 0) */
    const int32_t *token_types; /* n_tokens m40_token_type, or NULL (all normal) */
    size_t n_merges;            /* tokenizer.ggml.merges (gpt2 only) */
    const m40_tok_str *merges;  /* "left right", rank = index */
    /* tokenizer.ggml.*_token_id, M40_VOCAB_ABSENT when the key is absent.
     * Absent or out-of-range ids fall back to the model's defaults (SPM:
     * bos 1, eos 2, unk 0; BPE: bos 11, eos 11), as llama.cpp does. */
    int64_t bos_id, eos_id, eot_id, eom_id, unk_id, sep_id, pad_id;
    /* tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix:
     * 0, 1, or M40_VOCAB_ABSENT for the model's default. */
    int add_bos, add_eos, add_space_prefix;
} m40_vocab_data;

/* A vocab_data with every optional field absent. */
m40_vocab_data m40_vocab_data_empty(void);

typedef struct m40_tokenizer m40_tokenizer;

/* Builds a tokenizer. Fails (NULL, err set) on an unknown model or
 * tokenizer.ggml.pre (the message names it), duplicate tokens, missing
 * merges, or add_bos/add_eos without the token. */
m40_tokenizer *m40_tokenizer_create(const m40_vocab_data *data, m40_err *err);
void m40_tokenizer_free(m40_tokenizer *tok);

/* Reads tokenizer.ggml.* from a GGUF file (a vocab-only file is enough). */
m40_tokenizer *m40_tokenizer_load_gguf(const char *path, m40_err *err);

/* --- facts ---------------------------------------------------------- */

typedef enum m40_tokenizer_kind { M40_TOKENIZER_SPM, M40_TOKENIZER_BPE } m40_tokenizer_kind;

m40_tokenizer_kind m40_tokenizer_kind_of(const m40_tokenizer *tok);
/* The pre-tokenizer's name as given (BPE; "default" when absent), or "". */
const char *m40_tokenizer_pre(const m40_tokenizer *tok);
size_t m40_tokenizer_n_tokens(const m40_tokenizer *tok);
m40_token m40_tokenizer_bos(const m40_tokenizer *tok); /* M40_TOKEN_NULL if none */
m40_token m40_tokenizer_eos(const m40_tokenizer *tok);
m40_token m40_tokenizer_eot(const m40_tokenizer *tok);
m40_token m40_tokenizer_unk(const m40_tokenizer *tok);
m40_token m40_tokenizer_pad(const m40_tokenizer *tok);
m40_token m40_tokenizer_sep(const m40_tokenizer *tok);
int m40_tokenizer_add_bos(const m40_tokenizer *tok);
int m40_tokenizer_add_eos(const m40_tokenizer *tok);
/* True for tokens that end generation (eos, eot, eom and the end-of-turn
 * tokens llama.cpp recognises by their text). */
int m40_tokenizer_is_eog(const m40_tokenizer *tok, m40_token id);
/* Type of a token as stored (M40_TOKEN_TYPE_UNDEFINED for a bad id). */
m40_token_type m40_tokenizer_token_type(const m40_tokenizer *tok, m40_token id);
/* The token's text as stored in the vocabulary; NULL for a bad id. */
const char *m40_tokenizer_token_text(const m40_tokenizer *tok, m40_token id, size_t *len);
/* Looks a vocabulary string up; M40_TOKEN_NULL when absent. */
m40_token m40_tokenizer_find(const m40_tokenizer *tok, const char *text, size_t len);

/* --- encoding ------------------------------------------------------- */

/* A growable id array; zero-initialise, reuse across calls, then free. */
typedef struct m40_tokens {
    m40_token *ids;
    size_t n, cap;
} m40_tokens;

void m40_tokens_free(m40_tokens *t);
/* Appends one id (growing the array); fails only when out of memory. */
int m40_tokens_push(m40_tokens *t, m40_token id, m40_err *err);

enum {
    /* Add BOS / EOS where the vocabulary asks for them (add_bos/add_eos).
     * Without it no special token is added. */
    M40_TOKENIZE_ADD_SPECIAL = 1u << 0,
    /* Split control and unknown tokens' texts out of the input as those
     * tokens. User-defined tokens are split out either way. */
    M40_TOKENIZE_PARSE_SPECIAL = 1u << 1,
};

/* Encodes text[0..len) (any bytes) into out (replacing its contents).
 * Fails only on input llama.cpp cannot encode either (a BPE input with a
 * UTF-8 form above U+10FFFF, an SPM byte with no byte token, a word so
 * long that a nested-repeat regex exhausts PCRE2's 16 MiB JIT stack, where
 * llama.cpp's std::regex overflows the C stack) or when out of memory. */
int m40_tokenize(const m40_tokenizer *tok, const char *text, size_t len, unsigned flags,
                 m40_tokens *out, m40_err *err);

/* --- decoding ------------------------------------------------------- */

enum {
    /* Render control and unknown tokens as their text instead of nothing. */
    M40_DETOK_RENDER_SPECIAL = 1u << 0,
    /* Drop a leading BOS and a trailing EOS when the vocabulary adds them. */
    M40_DETOK_REMOVE_SPECIAL = 1u << 1,
    /* Skip llama.cpp's clean-up of spaces before punctuation (BPE vocabs
     * with clean_spaces); with it the output is the raw concatenation. */
    M40_DETOK_NO_CLEANUP = 1u << 2,
    /* Keep the first token's leading space (SPM strips one by default, the
     * one its space prefix added). */
    M40_DETOK_KEEP_LEADING_SPACE = 1u << 3,
};

/* The bytes token `id` stands for: SPM U+2581 -> ' ', <0xXX> -> the byte;
 * BPE GPT-2 alphabet -> bytes. Control and unknown tokens give "" unless
 * render_special. Points into the tokenizer (valid until it is freed).
 * Fails on an id outside the vocabulary. */
int m40_token_to_piece(const m40_tokenizer *tok, m40_token id, int render_special,
                       const char **piece, size_t *len, m40_err *err);

/* Decodes ids into a new NUL-terminated string *text (caller frees) of
 * *len bytes, as llama.cpp's llama_detokenize. The bytes may be invalid
 * UTF-8 (a cut-off byte sequence); use the stream for display. */
int m40_detokenize(const m40_tokenizer *tok, const m40_token *ids, size_t n, unsigned flags,
                   char **text, size_t *len, m40_err *err);

/* Incremental detokenizer: feed ids one at a time, get back only whole
 * UTF-8 characters. Bytes that can still complete a character are held;
 * bytes that never can are replaced by U+FFFD, so every piece returned is
 * valid UTF-8. Flags: M40_DETOK_RENDER_SPECIAL, M40_DETOK_KEEP_LEADING_SPACE
 * (the stream never applies the space clean-up). The concatenation of
 * everything returned equals m40_detokenize(..., M40_DETOK_NO_CLEANUP) of
 * the same ids whenever that is valid UTF-8. */
typedef struct m40_detok_stream {
    const m40_tokenizer *tok;
    unsigned flags;
    int first;             /* no token fed yet */
    unsigned char held[4]; /* start of an unfinished UTF-8 character */
    size_t n_held;
    char *buf; /* output of the last call */
    size_t cap;
} m40_detok_stream;

void m40_detok_stream_init(m40_detok_stream *s, const m40_tokenizer *tok, unsigned flags);
/* Feeds one id; *text and *len receive the newly complete text (maybe empty),
 * valid until the next call. */
int m40_detok_stream_feed(m40_detok_stream *s, m40_token id, const char **text, size_t *len,
                          m40_err *err);
/* Ends the stream: held bytes that never completed come out as U+FFFD. */
int m40_detok_stream_flush(m40_detok_stream *s, const char **text, size_t *len, m40_err *err);
void m40_detok_stream_free(m40_detok_stream *s);

#endif /* M40_TOKENIZER_TOKENIZER_H */
