/* unicode.c - see unicode.h. */
#include "tokenizer/unicode.h"

uint8_t m40_ucp_flags(uint32_t cp) {
    if (cp < 128)
        return m40_ucp_ascii[cp];
    if (cp > M40_UNICODE_MAX)
        return M40_UCLASS_UNDEFINED;
    /* Binary search for the last range starting at or before cp. */
    size_t lo = 0, hi = m40_ucp_ranges_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((m40_ucp_ranges[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (uint8_t)(m40_ucp_ranges[lo] & 0xFF);
}

static int is_cont(unsigned char b) {
    return (b & 0xC0) == 0x80;
}

uint32_t m40_utf8_decode(const unsigned char *s, size_t n, size_t *pos) {
    size_t i = *pos;
    unsigned char b = s[i];
    /* The same checks, in the same order, as llama.cpp's
     * unicode_cpt_from_utf8: the lead byte picks the length, every
     * continuation byte must be 10xxxxxx and present. */
    if (!(b & 0x80)) {
        *pos = i + 1;
        return b;
    }
    if ((b & 0x40) && !(b & 0x20)) {
        if (i + 1 < n && is_cont(s[i + 1])) {
            *pos = i + 2;
            return ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
        }
    } else if ((b & 0x40) && !(b & 0x10)) {
        if (i + 2 < n && is_cont(s[i + 1]) && is_cont(s[i + 2])) {
            *pos = i + 3;
            return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                   (s[i + 2] & 0x3F);
        }
    } else if ((b & 0x40) && !(b & 0x08)) {
        if (i + 3 < n && is_cont(s[i + 1]) && is_cont(s[i + 2]) && is_cont(s[i + 3])) {
            *pos = i + 4;
            return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                   ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        }
    }
    *pos = i + 1;
    return M40_UNICODE_REPLACEMENT;
}

size_t m40_utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp <= 0x7F) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp <= 0xFFFF) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | ((cp >> 18) & 0x07));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Printable Latin-1 bytes keep their code point; the other 68 bytes take
 * U+0100.. in increasing byte order (GPT-2's bytes_to_unicode). */
static int gpt2_keeps(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* The 68 remapped bytes, in order: 0x00..0x20, 0x7F..0xA0, 0xAD. */
uint32_t m40_gpt2_byte_to_cp(uint8_t byte) {
    if (gpt2_keeps(byte))
        return byte;
    if (byte <= 0x20)
        return 256u + byte;
    if (byte >= 0x7F && byte <= 0xA0)
        return 256u + 33u + (byte - 0x7Fu);
    return 256u + 67u; /* 0xAD */
}

int m40_gpt2_cp_to_byte(uint32_t cp) {
    if (cp < 256)
        return gpt2_keeps(cp) ? (int)cp : -1;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 67)
        return (int)(0x7F + (cp - 256 - 33));
    return cp == 256 + 67 ? 0xAD : -1;
}
