/* pretok_internal.h - what the pre-tokenizer's three files share.
 *
 * pretok.c turns tokenizer.ggml.pre into compiled regexes, pretok_custom.c
 * holds the hand-written GPT-2 and Llama 3 splitters, pretok_run.c decodes
 * a fragment and runs the passes over it.
 *
 * Owns: the layout of struct m40_pretok. Touches: nothing else.
 */
#ifndef M40_TOKENIZER_PRETOK_INTERNAL_H
#define M40_TOKENIZER_PRETOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tok_internal.h"

enum { RE_PCRE_UTF, RE_PCRE_COLLAPSED, RE_CUSTOM_GPT2, RE_CUSTOM_LLAMA3 };

typedef struct compiled_re {
    int kind;
    pcre2_code *code;
} compiled_re;

struct m40_pretok {
    size_t n;
    compiled_re re[M40_PRETOK_MAX_REGEX];
    int need_flags;   /* some pass reads code point classes */
    int need_coll;    /* some pass runs on the collapsed text */
    int need_subject; /* some pass runs PCRE2 on UTF-8 */
};

/* Segment lengths (in code points) of one pass, appended as produced. */
typedef struct seglist {
    uint32_t *len;
    size_t n, cap;
} seglist;

/* Appends a segment length (empty ones are dropped); -1 when out of memory. */
int m40_seg_push(seglist *l, size_t len);

/* The hand-written splitters: split code points [ini, end) of cps (with
 * their m40_ucp_flags) into words, appending lengths to out. Return -1
 * when out of memory. */
int m40_split_gpt2(const uint32_t *cps, const uint8_t *flags, size_t ini, size_t end, seglist *out);
int m40_split_llama3(const uint32_t *cps, const uint8_t *flags, size_t ini, size_t end,
                     seglist *out);

#endif /* M40_TOKENIZER_PRETOK_INTERNAL_H */
