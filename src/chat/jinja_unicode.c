/* jinja_unicode.c - the small part of Python's str semantics that needs
 * Unicode data: UTF-8 walking, whitespace (str.isspace, which jinja2's
 * lexer and strip() use), printability (repr), line breaks (splitlines)
 * and case mapping.
 *
 * Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
 * and fullwidth Latin; other scripts are left unchanged (a documented gap:
 * Python maps every cased script, and a few characters to several).
 *
 * Owns: nothing but pure functions. Touches: nothing.
 */
#include "chat/jinja_internal.h"

uint32_t m40_jx_utf8_next(const char *str, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)str;
    size_t k = *i;
    unsigned c = s[k];
    if (c < 0x80) {
        *i = k + 1;
        return c;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || k + (size_t)len > n) {
        *i = k + 1;
        return c;
    }
    uint32_t cp = c & (0x3Fu >> (len - 1));
    for (int j = 1; j < len; j++) {
        unsigned cc = s[k + (size_t)j];
        if ((cc & 0xC0) != 0x80) {
            *i = k + 1;
            return c;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    *i = k + (size_t)len;
    return cp;
}

size_t m40_jx_utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | ((cp >> 18) & 0x07));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t m40_jx_utf8_len(const char *s, size_t n) {
    size_t i = 0, k = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80)
            i++;
        else
            m40_jx_utf8_next(s, n, &i);
        k++;
    }
    return k;
}

size_t m40_jx_utf8_offset(const char *s, size_t n, size_t ci) {
    size_t i = 0;
    while (ci > 0 && i < n) {
        m40_jx_utf8_next(s, n, &i);
        ci--;
    }
    return i;
}

int m40_jx_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

int m40_jx_islinebreak(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
           c == 0x85 || c == 0x2028 || c == 0x2029;
}

/* Python repr() escapes what is not printable: controls, format
 * characters, separators other than the space, surrogates, private use. */
int m40_jx_isprintable(uint32_t c) {
    if (c < 0x20 || c == 0x7F)
        return 0;
    if (c < 0x7F)
        return 1;
    if (c <= 0xA0 || c == 0xAD)
        return 0;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x8E2 ||
        c == 0x180E || c == 0x1680)
        return 0;
    if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
        (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000)
        return 0;
    if ((c >= 0xD800 && c <= 0xF8FF) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
        c == 0xFFFE || c == 0xFFFF)
        return 0;
    if ((c >= 0xE0000 && c <= 0xE007F) || c >= 0xF0000 || c > 0x10FFFF)
        return 0;
    return 1;
}

int m40_jx_isdigit(uint32_t c) {
    return c >= '0' && c <= '9';
}

/* Lower -> upper for the covered ranges; 0 when the code point has no
 * simple upper-case form there. */
static uint32_t to_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if (c < 0x80)
        return 0;
    if (c == 0xB5)
        return 0x39C;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x131)
            return 'I';
        if (c == 0x17F)
            return 'S';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c % 2 == 0) ? c - 1 : 0;
        if (c == 0x138 || c == 0x149 || c == 0x130)
            return 0;
        return (c % 2 == 1) ? c - 1 : 0;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2)
        return c - 32;
    if (c == 0x3C2)
        return 0x3A3;
    if (c >= 0x3AC && c <= 0x3AF)
        return c == 0x3AC ? 0x386 : c - 37;
    if (c >= 0x430 && c <= 0x44F)
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    if (c >= 0xFF41 && c <= 0xFF5A)
        return c - 32;
    return 0;
}

static uint32_t to_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c < 0x80)
        return 0;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130)
            return 'i';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c % 2 == 1) ? c + 1 : 0;
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return 0;
        return (c % 2 == 0) ? c + 1 : 0;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return 0;
}

uint32_t m40_jx_upper(uint32_t c) {
    uint32_t u = to_upper(c);
    return u ? u : c;
}

uint32_t m40_jx_lower(uint32_t c) {
    uint32_t l = to_lower(c);
    return l ? l : c;
}

int m40_jx_islower_cp(uint32_t c) {
    return to_upper(c) != 0 || c == 0xDF || c == 0x138 || c == 0x149;
}

int m40_jx_isupper_cp(uint32_t c) {
    return to_lower(c) != 0;
}

int m40_jx_iscased(uint32_t c) {
    return m40_jx_islower_cp(c) || m40_jx_isupper_cp(c);
}

int m40_jx_isalpha(uint32_t c) {
    if (c < 0x80)
        return (c | 32) >= 'a' && (c | 32) <= 'z';
    if (m40_jx_iscased(c) || c == 0xAA || c == 0xBA)
        return 1;
    /* Outside the cased ranges: letters of uncased scripts (CJK, kana,
     * Hangul, Arabic, Hebrew, Indic) count; punctuation blocks do not. */
    if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFF00 && c <= 0xFF20) || (c >= 0x1F000 && c <= 0x1FAFF) || !m40_jx_isprintable(c))
        return 0;
    return c >= 0x5D0;
}
