/* utf8.h - strict UTF-8 (Unicode's definition: no overlong forms, no
 * surrogates, nothing above U+10FFFF): the one validator the tokenizer's
 * decoder, the server's request and reply checks, and the grammar parser
 * share. (The tokenizer's lenient decoder, llama.cpp's, is
 * tokenizer/unicode.h's m40_utf8_decode; the grammar matcher reads bytes
 * one at a time as they come, grammar/match.c.)
 */
#ifndef M40_UTIL_UTF8_H
#define M40_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The complete, valid sequence starting at s (n >= 1 bytes available):
 * its length 1..4; 0 when the bytes are a valid but unfinished prefix; or
 * -k when the first k bytes can never become valid UTF-8 (k is Unicode's
 * "maximal subpart", which decoders replace by one U+FFFD). */
int m40_utf8_valid_prefix(const unsigned char *s, size_t n);

/* The same, also giving the sequence's code point in *cp when it is
 * complete and valid. */
int m40_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* The offset of the first byte of s[0..n) that does not start a complete,
 * valid sequence, or -1 when all of it is valid UTF-8. */
long m40_utf8_invalid_at(const char *s, size_t n);

#endif /* M40_UTIL_UTF8_H */
