/* tok_internal.h - the tokenizer's insides, shared by its .c files only.
 *
 * Owns: the layout of struct m40_tokenizer and the internal entry points
 * (vocab.c and vocab_special.c build, encode.c / spm.c / bpe.c encode,
 * decode.c decodes, pretok*.c split words). Touches: nothing outside
 * src/tokenizer/.
 */
#ifndef M40_TOKENIZER_TOK_INTERNAL_H
#define M40_TOKENIZER_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/hashmap.h"
#include "tokenizer/tokenizer.h"

/* Token attributes, as llama.cpp's llama_token_attr (bits may combine:
 * the end-of-turn detection adds CONTROL to a NORMAL token). */
enum {
    TOK_ATTR_UNKNOWN = 1u << 0,
    TOK_ATTR_UNUSED = 1u << 1,
    TOK_ATTR_NORMAL = 1u << 2,
    TOK_ATTR_CONTROL = 1u << 3,
    TOK_ATTR_USER_DEFINED = 1u << 4,
    TOK_ATTR_BYTE = 1u << 5,
    TOK_ATTR_LSTRIP = 1u << 7,
    TOK_ATTR_RSTRIP = 1u << 8,
};

/* --- pre-tokenizer (pretok.c) ---------------------------------------- */

typedef struct m40_pretok m40_pretok;

/* Per-pre-tokenizer vocabulary settings (llama.cpp sets them in load()). */
typedef struct m40_pretok_info {
    int known;         /* the name is in the table */
    int ignore_merges; /* a word that is itself a token is emitted whole */
    int clean_spaces;  /* detokenize removes spaces before punctuation */
    int add_bos;       /* default add_bos (before the GGUF key) */
    int no_bos;        /* the BOS id is cleared (chatglm) */
} m40_pretok_info;

/* The most regexes one pre-tokenizer applies. */
#define M40_PRETOK_MAX_REGEX 8

/* The index-th supported tokenizer.ggml.pre name, NULL past the last. */
const char *m40_pretok_name_at(size_t index);
/* Looks up a pre-tokenizer name; NULL or "" mean "default". */
m40_pretok_info m40_pretok_lookup(const char *name);
/* Compiles the named pre-tokenizer's regexes (PCRE2 or a fast path). */
m40_pretok *m40_pretok_create(const char *name, m40_err *err);
void m40_pretok_free(m40_pretok *pt);

/* A word: bytes [start, end) of m40_pretok_scratch.text. */
typedef struct m40_span {
    uint32_t start, end;
} m40_span;

/* Reusable buffers of one encode call. */
typedef struct m40_pretok_scratch {
    uint32_t *cps;       /* decoded code points */
    uint8_t *flags;      /* m40_ucp_flags() of each */
    unsigned char *coll; /* each collapsed to one byte (llama.cpp's text_collapsed) */
    uint32_t *cp_off;    /* byte offset of each code point in text (+1 entry) */
    size_t cap_cps;
    unsigned char *text; /* the fragment re-encoded from cps */
    unsigned char *subj; /* what PCRE2 sees in UTF mode (see build_subject) */
    uint32_t *subj_off;  /* byte offset of each code point in subj (+1 entry) */
    size_t cap_text;
    uint32_t *seg[2]; /* segment lengths in code points, two passes ping-pong */
    size_t seg_cap[2];
    m40_span *words;
    size_t n_words, cap_words;
    void *match_data; /* pcre2_match_data *, one pair: the whole match */
    void *jit_stack;  /* pcre2_jit_stack * */
    void *match_ctx;  /* pcre2_match_context * */
} m40_pretok_scratch;

void m40_pretok_scratch_free(m40_pretok_scratch *s);
/* Splits text[0..len) into words (s->words over s->text). */
int m40_pretok_run(const m40_pretok *pt, const char *text, size_t len, m40_pretok_scratch *s,
                   m40_err *err);

/* --- the tokenizer --------------------------------------------------- */

/* A byte trie of the special tokens' texts, for finding them in input. */
typedef struct tok_trie_node {
    int32_t first_child, next_sibling;
    int32_t token; /* token ending here, or -1 */
    unsigned char byte;
} tok_trie_node;

struct m40_tokenizer {
    m40_tokenizer_kind kind;
    char pre_name[64];
    m40_pretok *pretok; /* BPE only */
    int ignore_merges, clean_spaces;
    int spm_split; /* no token has U+2581 after a non-U+2581 (see spm.c) */
    int add_bos, add_eos, add_space_prefix;

    size_t n_tokens;
    m40_tok_str *text; /* token texts, pointing into `arena` */
    float *scores;
    uint16_t *attr;
    int32_t *type; /* as stored, for m40_tokenizer_token_type */
    char *arena;
    m40_strmap token_map; /* text -> id */

    /* BPE merges: (left id, right id) -> (rank, id of left+right or -1);
     * merges naming a string that is not a token go to merge_lines. */
    m40_pairmap merges;
    m40_strmap merge_lines; /* "left right" -> index into merge_line_rank */
    m40_tok_str *merge_line_text;
    int32_t *merge_line_rank;
    char *merge_line_arena;

    /* Token of each byte: BPE the byte's GPT-2 character, SPM <0xXX> or
     * the byte itself as a token; -1 when the vocabulary lacks it. */
    int32_t byte_token[256];
    /* BPE: the GPT-2 character of each byte, UTF-8 encoded. */
    unsigned char byte_utf8[256][2];
    unsigned char byte_utf8_len[256];

    m40_token bos, eos, eot, eom, unk, sep, pad;
    m40_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    m40_token *eog;
    size_t n_eog;

    /* Special tokens (control, user-defined, unknown) longest first, and
     * their rank in that order; the trie finds them in text. */
    int32_t *special;
    size_t n_special;
    int32_t *special_rank; /* n_tokens, -1 for non-special */
    tok_trie_node *trie;
    size_t n_trie;

    /* Each token's piece rendered with special tokens shown. */
    uint32_t *piece_off; /* n_tokens + 1 offsets into piece_arena */
    char *piece_arena;
};

/* Encoders of one raw-text fragment, appending to out. */
int m40_spm_encode(const m40_tokenizer *tok, const char *text, size_t len, m40_tokens *out,
                   m40_err *err);
int m40_bpe_encode(const m40_tokenizer *tok, const char *text, size_t len, m40_pretok_scratch *ps,
                   m40_tokens *out, m40_err *err);

/* vocab_special.c, called in this order by m40_tokenizer_create: the
 * text-recognised special tokens and end-of-generation set; the
 * longest-first special list and its trie; lstrip/rstrip by model name. */
int m40_vocab_detect_special(m40_tokenizer *tok, m40_err *err);
int m40_vocab_build_special(m40_tokenizer *tok, m40_err *err);
void m40_vocab_model_attrs(m40_tokenizer *tok, const m40_vocab_data *d);

/* Builds the piece cache (decode.c); called once by m40_tokenizer_create. */
int m40_build_pieces(m40_tokenizer *tok, m40_err *err);

#endif /* M40_TOKENIZER_TOK_INTERNAL_H */
