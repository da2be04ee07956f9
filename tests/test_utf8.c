/* test_utf8.c - strict UTF-8 (util/utf8.h): what is valid, where the
 * maximal subpart of an invalid sequence ends, an unfinished sequence,
 * code points, and the first invalid offset of a string. */
#include "check.h"
#include "util/utf8.h"

#define U (const unsigned char *)

static void test_valid_prefix(void) {
    const unsigned char *s = U "\xE2\x82\xAC";
    CHECK(m40_utf8_valid_prefix(s, 3) == 3);
    CHECK(m40_utf8_valid_prefix(s, 2) == 0); /* unfinished */
    CHECK(m40_utf8_valid_prefix(U "\xE2\x82"
                                  "A",
                                3) == -2);                       /* lead and one good byte */
    CHECK(m40_utf8_valid_prefix(U "\xC0\x80", 2) == -1);         /* overlong NUL */
    CHECK(m40_utf8_valid_prefix(U "\xE0\x9F\xBF", 3) == -1);     /* overlong U+07FF */
    CHECK(m40_utf8_valid_prefix(U "\xED\xA0\x80", 3) == -1);     /* surrogate U+D800 */
    CHECK(m40_utf8_valid_prefix(U "\xF4\x90\x80\x80", 4) == -1); /* U+110000 */
    CHECK(m40_utf8_valid_prefix(U "\xF5", 1) == -1);
    CHECK(m40_utf8_valid_prefix(U "\x80", 1) == -1); /* a lone continuation */
    CHECK(m40_utf8_valid_prefix(U "\xF0\x9F\x98", 3) == 0);
    CHECK(m40_utf8_valid_prefix(U "\xF4\x8F\xBF\xBF", 4) == 4); /* U+10FFFF */
}

static void test_next(void) {
    uint32_t cp = 0;
    CHECK(m40_utf8_next(U "A", 1, &cp) == 1 && cp == 'A');
    CHECK(m40_utf8_next(U "\xC3\xA9", 2, &cp) == 2 && cp == 0xE9);
    CHECK(m40_utf8_next(U "\xE2\x82\xAC", 3, &cp) == 3 && cp == 0x20AC);
    CHECK(m40_utf8_next(U "\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600);
    cp = 7;
    CHECK(m40_utf8_next(U "\xED\xA0\x80", 3, &cp) == -1 && cp == 7); /* untouched */
    CHECK(m40_utf8_next(U "\xE2\x82", 2, &cp) == 0 && cp == 7);
}

static void test_invalid_at(void) {
    CHECK(m40_utf8_invalid_at("", 0) == -1);
    CHECK(m40_utf8_invalid_at("caf\xC3\xA9", 5) == -1);
    CHECK(m40_utf8_invalid_at("caf\xC3", 4) == 3); /* unfinished at the end */
    CHECK(m40_utf8_invalid_at("ab\xC0\x80", 4) == 2);
    CHECK(m40_utf8_invalid_at("a\xE2\x82\xAC\xFF", 5) == 4);
}

int main(void) {
    test_valid_prefix();
    test_next();
    test_invalid_at();
    return check_report();
}
