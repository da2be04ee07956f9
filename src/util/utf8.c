/* utf8.c - see utf8.h. */
#include "util/utf8.h"

int m40_utf8_valid_prefix(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80)
        return 1;
    if (b < 0xC2)
        return -1; /* continuation byte or overlong 2-byte lead */
    if (b < 0xE0) {
        len = 2;
    } else if (b < 0xF0) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b < 0xF5) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n)
            return 0;
        unsigned char c = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h)
            return -k; /* the maximal subpart: lead + the k-1 good bytes */
    }
    return len;
}

int m40_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    int len = m40_utf8_valid_prefix(s, n);
    if (len <= 0)
        return len;
    /* valid: the lead's payload bits, then six from each continuation */
    uint32_t v = len == 1 ? s[0] : s[0] & (0x7Fu >> len);
    for (int k = 1; k < len; k++)
        v = v << 6 | (s[k] & 0x3Fu);
    *cp = v;
    return len;
}

long m40_utf8_invalid_at(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int k = m40_utf8_valid_prefix((const unsigned char *)s + i, n - i);
        if (k <= 0)
            return (long)i;
        i += (size_t)k;
    }
    return -1;
}
