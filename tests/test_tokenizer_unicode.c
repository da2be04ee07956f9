/* test_tokenizer_unicode.c - the Unicode tables and UTF-8 rules underneath.
 *
 *  - Our generated class table (Unicode 15.1, llama.cpp's version) agrees
 *    with PCRE2's (an older Unicode) on \p{L}, \p{N}, \p{P}, \p{M}, \p{S},
 *    \p{Z} for every code point PCRE2 knows; the only differences are code
 *    points assigned after PCRE2's version. Our whitespace set is PCRE2's \s
 *    minus U+180E (PCRE2 counts it, llama.cpp's White_Space set does not).
 *  - llama.cpp's lenient UTF-8 decoding: overlongs and surrogates decode
 *    as written, a bad byte becomes U+FFFD and decoding resumes after it.
 *  - The GPT-2 byte map is a bijection onto 256 code points.
 *  - The strict validator's maximal-subpart lengths.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tokenizer/unicode.h"

static void test_classes_match_pcre2(void) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile(
        (PCRE2_SPTR) "(\\p{L})|(\\p{N})|(\\p{P})|(\\p{M})|(\\p{S})|(\\p{Z})|(\\p{Cn})",
        PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &code, &off, NULL);
    pcre2_code *ws = pcre2_compile((PCRE2_SPTR) "\\s", PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &code, &off, NULL);
    CHECK(re && ws);
    if (!re || !ws)
        return;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    static const int k_class[] = {-1,
                                  M40_UCLASS_LETTER,
                                  M40_UCLASS_NUMBER,
                                  M40_UCLASS_PUNCTUATION,
                                  M40_UCLASS_MARK,
                                  M40_UCLASS_SYMBOL,
                                  M40_UCLASS_SEPARATOR,
                                  M40_UCLASS_UNDEFINED};
    size_t bad_class = 0, bad_ws = 0, newer = 0;
    for (uint32_t cp = 0; cp <= M40_UNICODE_MAX; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char u[4];
        size_t n = m40_utf8_encode(cp, u);
        int want = M40_UCLASS_CONTROL; /* no group: Cc, Cf, Co */
        if (pcre2_match(re, u, n, 0, 0, md, NULL) > 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            for (int g = 1; g <= 7; g++) {
                if (ov[2 * g] != PCRE2_UNSET) {
                    want = k_class[g];
                    break;
                }
            }
        }
        if (want == M40_UCLASS_UNDEFINED && m40_ucp_class(cp) != want)
            newer++; /* assigned after PCRE2's Unicode version */
        else if (m40_ucp_class(cp) != want && bad_class++ < 5)
            fprintf(stderr, "U+%04X: class %d, PCRE2 says %d\n", cp, m40_ucp_class(cp), want);
        int pcre_ws = pcre2_match(ws, u, n, 0, 0, md, NULL) > 0 && cp != 0x180E;
        int our_ws = (m40_ucp_flags(cp) & M40_UFLAG_WHITESPACE) != 0;
        if (pcre_ws != our_ws && bad_ws++ < 5)
            fprintf(stderr, "U+%04X: whitespace %d, PCRE2 says %d\n", cp, our_ws, pcre_ws);
    }
    printf("%zu code points are newer than PCRE2's Unicode tables\n", newer);
    CHECK(bad_class == 0);
    CHECK(bad_ws == 0);
    CHECK(newer < 10000);                               /* 15.0 + 15.1 added about 5,000 */
    CHECK(m40_ucp_flags(0x180E) == M40_UCLASS_CONTROL); /* Cf, not whitespace */
    CHECK(m40_ucp_flags(0x110000) == M40_UCLASS_UNDEFINED);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    pcre2_code_free(ws);
}

/* Decodes all of s; returns the code point count and fills out. */
static size_t decode_all(const char *s, size_t n, uint32_t *out) {
    size_t pos = 0, k = 0;
    while (pos < n)
        out[k++] = m40_utf8_decode((const unsigned char *)s, n, &pos);
    return k;
}

static void test_lenient_decode(void) {
    uint32_t cp[16];
    /* Overlong NUL and a surrogate decode as written (llama.cpp does). */
    CHECK(decode_all("\xC0\x80", 2, cp) == 1 && cp[0] == 0);
    CHECK(decode_all("\xED\xA0\x80", 3, cp) == 1 && cp[0] == 0xD800);
    /* A lone continuation byte, a truncated sequence, 0xFF: U+FFFD each. */
    CHECK(decode_all("\x80"
                     "A",
                     2, cp) == 2 &&
          cp[0] == 0xFFFD && cp[1] == 'A');
    CHECK(decode_all("\xE2\x82", 2, cp) == 2 && cp[0] == 0xFFFD && cp[1] == 0xFFFD);
    CHECK(decode_all("\xE2\x82"
                     "A",
                     3, cp) == 3 &&
          cp[0] == 0xFFFD && cp[2] == 'A');
    CHECK(decode_all("\xFF", 1, cp) == 1 && cp[0] == 0xFFFD);
    /* Four-byte forms above U+10FFFF come out as such (callers refuse). */
    CHECK(decode_all("\xF7\xBF\xBF\xBF", 4, cp) == 1 && cp[0] == 0x1FFFFF);
    CHECK(decode_all("\xF0\x9F\x98\x81", 4, cp) == 1 && cp[0] == 0x1F601);
    unsigned char u[4];
    CHECK(m40_utf8_encode(0xD800, u) == 3 && u[0] == 0xED && u[1] == 0xA0);
    CHECK(m40_utf8_len(0xF0) == 4 && m40_utf8_len(0x80) == 1 && m40_utf8_len(0xC3) == 2);
}

static void test_gpt2_map(void) {
    int seen[512] = {0}, ok = 1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = m40_gpt2_byte_to_cp((uint8_t)b);
        ok &= cp < 512 && !seen[cp] && m40_gpt2_cp_to_byte(cp) == b;
        if (cp < 512)
            seen[cp] = 1;
    }
    CHECK(ok);
    CHECK(m40_gpt2_byte_to_cp(' ') == 0x120);  /* 'Ġ' */
    CHECK(m40_gpt2_byte_to_cp('\n') == 0x10A); /* 'Ċ' */
    CHECK(m40_gpt2_byte_to_cp('a') == 'a');
    CHECK(m40_gpt2_cp_to_byte(0x2581) == -1);
}

int main(void) {
    printf("Unicode table version %s\n", m40_unicode_version);
    test_classes_match_pcre2();
    test_lenient_decode();
    test_gpt2_map();
    return check_report();
}
