/* unicode.h - the Unicode facts the tokenizers need, done llama.cpp's way.
 *
 *  - m40_utf8_decode(): llama.cpp's lenient UTF-8 decoder (unicode.cpp's
 *    unicode_cpts_from_utf8): overlong forms and surrogates decode as
 *    written, any byte that starts no complete sequence becomes U+FFFD and
 *    decoding resumes at the next byte. The BPE path re-encodes what this
 *    returns, so bad input turns into U+FFFD exactly where llama.cpp's does.
 *  - m40_ucp_flags(): general-category class + White_Space bit of a code
 *    point, from the generated table in unicode_data.c.
 *  - the GPT-2 byte <-> code point map of byte-level BPE.
 *
 * Owns: pure functions and constant tables. Touches: nothing else.
 */
#ifndef M40_TOKENIZER_UNICODE_H
#define M40_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* General-category classes (the first letter of the category; 0 is Cn). */
enum {
    M40_UCLASS_UNDEFINED = 0,
    M40_UCLASS_NUMBER = 1,      /* \p{N} */
    M40_UCLASS_LETTER = 2,      /* \p{L} */
    M40_UCLASS_SEPARATOR = 3,   /* \p{Z} */
    M40_UCLASS_MARK = 4,        /* \p{M} */
    M40_UCLASS_PUNCTUATION = 5, /* \p{P} */
    M40_UCLASS_SYMBOL = 6,      /* \p{S} */
    M40_UCLASS_CONTROL = 7,     /* \p{C} other than Cn */
    M40_UCLASS_MASK = 0x0F,
    M40_UFLAG_WHITESPACE = 0x10 /* White_Space property: what llama.cpp's \s matches */
};

/* Code points above this are not Unicode; llama.cpp refuses to encode them. */
#define M40_UNICODE_MAX         0x10FFFFu
#define M40_UNICODE_REPLACEMENT 0xFFFDu

extern const char m40_unicode_version[];
extern const uint32_t m40_ucp_ranges[];
extern const size_t m40_ucp_ranges_count;
extern const uint8_t m40_ucp_ascii[128];

/* Class and whitespace bit of `cp` (any value; above U+10FFFF: undefined). */
uint8_t m40_ucp_flags(uint32_t cp);

static inline int m40_ucp_class(uint32_t cp) {
    return m40_ucp_flags(cp) & M40_UCLASS_MASK;
}

/* Bytes in the UTF-8 sequence a lead byte announces, by its high nibble, as
 * llama.cpp's unicode_len_utf8: continuation and invalid bytes count 1. */
static inline size_t m40_utf8_len(unsigned char lead) {
    static const unsigned char k_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return k_len[lead >> 4];
}

/* Decodes one code point at s[*pos] (pos < n) leniently, advancing *pos by
 * the bytes consumed (1 for an invalid byte, which yields U+FFFD). Four-byte
 * forms may yield values above U+10FFFF; callers decide what that means. */
uint32_t m40_utf8_decode(const unsigned char *s, size_t n, size_t *pos);

/* Writes the UTF-8 form of cp (<= 0x1FFFFF, surrogates included, as
 * llama.cpp writes them) to out; returns the byte count (1..4). */
size_t m40_utf8_encode(uint32_t cp, unsigned char out[4]);

/* The GPT-2 byte-level map: byte -> code point (printable Latin-1 bytes map
 * to themselves, the rest to U+0100.. in byte order) and back. */
uint32_t m40_gpt2_byte_to_cp(uint8_t byte);
/* Returns the byte for cp, or -1 when cp is not one of the 256 images. */
int m40_gpt2_cp_to_byte(uint32_t cp);

#endif /* M40_TOKENIZER_UNICODE_H */
