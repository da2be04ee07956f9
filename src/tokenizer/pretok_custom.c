/* pretok_custom.c - the GPT-2 and Llama 3 regexes, written out by hand.
 *
 * llama.cpp does not run these two regexes through a regex engine: it has
 * hand-written splitters (unicode_regex_split_custom_gpt2/_llama3) and
 * those are its behaviour, quirks included (a lone " " at a segment's end
 * is a word of its own in Llama 3's; its contractions fold only ASCII
 * case). These follow them rule for rule over our Unicode 15.1 classes.
 *
 * Owns: nothing (pure functions over the caller's arrays). Touches: the
 * segment list it appends to.
 */
#include <stdlib.h>

#include "tokenizer/pretok_internal.h"
#include "tokenizer/unicode.h"

int m40_seg_push(seglist *l, size_t len) {
    if (len == 0)
        return 0; /* empty segments split nothing and make no word */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint32_t *p = realloc(l->len, cap * sizeof *p);
        if (!p)
            return -1;
        l->len = p;
        l->cap = cap;
    }
    l->len[l->n++] = (uint32_t)len;
    return 0;
}

/* The view of one segment the hand-written splitters read, mirroring
 * llama.cpp's _get_cpt/_get_flags: outside [ini, end) a position has code
 * point OUT_OF_RANGE and flags 0; inside, flags always have FLAG_IN set
 * (llama.cpp's flags are never 0 for a real code point). */
#define OUT_OF_RANGE 0xFFFFFFFFu
#define FLAG_IN      0x80u

typedef struct segview {
    const uint32_t *cps;
    const uint8_t *flags;
    size_t ini, end, prev_end;
    seglist *out;
    int oom;
} segview;

static uint32_t sv_cpt(const segview *v, size_t pos) {
    return pos >= v->ini && pos < v->end ? v->cps[pos] : OUT_OF_RANGE;
}

static unsigned sv_flags(const segview *v, size_t pos) {
    return pos >= v->ini && pos < v->end ? (unsigned)v->flags[pos] | FLAG_IN : 0;
}

static int is_letter(unsigned f) {
    return (f & M40_UCLASS_MASK) == M40_UCLASS_LETTER;
}
static int is_number(unsigned f) {
    return (f & M40_UCLASS_MASK) == M40_UCLASS_NUMBER;
}
static int is_ws(unsigned f) {
    return (f & M40_UFLAG_WHITESPACE) != 0;
}

/* Emits [prev_end, end) as a word; returns its length. */
static size_t sv_emit(segview *v, size_t end) {
    size_t len = end - v->prev_end;
    if (len && m40_seg_push(v->out, len))
        v->oom = 1;
    v->prev_end = end;
    return len;
}

/* Only ASCII letters matter for the contractions: no other code point
 * lowercases to s, t, m, d, r, e, v or l. */
static uint32_t ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's|'t|'re|'ve|'m|'ll|'d at pos; returns its length or 0. */
static size_t contraction(const segview *v, size_t pos, int fold) {
    if (sv_cpt(v, pos) != '\'' || pos + 1 >= v->end)
        return 0;
    uint32_t c1 = sv_cpt(v, pos + 1);
    if (fold)
        c1 = ascii_lower(c1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 >= v->end)
        return 0;
    uint32_t c2 = sv_cpt(v, pos + 2);
    if (fold)
        c2 = ascii_lower(c2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return 3;
    return 0;
}

/* Counts whitespace from pos; *last_rn gets the end of the last \r or \n
 * in the run (0 if none). */
static size_t ws_run(const segview *v, size_t pos, size_t *last_rn) {
    size_t n = 0;
    *last_rn = 0;
    while (is_ws(sv_flags(v, pos + n))) {
        uint32_t c = sv_cpt(v, pos + n);
        if (c == '\r' || c == '\n')
            *last_rn = pos + n + 1;
        n++;
    }
    return n;
}

/* Trailing whitespace: \s+(?!\S)|\s+ as llama.cpp's splitters do it;
 * returns the new position or 0 when there is no whitespace at pos. */
static size_t ws_tail(segview *v, size_t pos, size_t n_ws) {
    if (n_ws > 1 && sv_cpt(v, pos + n_ws) != OUT_OF_RANGE)
        pos += n_ws - 1;
    else if (n_ws > 0)
        pos += n_ws;
    else
        return 0;
    sv_emit(v, pos);
    return pos;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(segview *v) {
    for (size_t pos = v->ini; pos < v->end;) {
        uint32_t cpt = sv_cpt(v, pos);
        unsigned f = sv_flags(v, pos);
        size_t n = contraction(v, pos, 0);
        if (n) {
            pos += sv_emit(v, pos + n);
            continue;
        }
        unsigned f2 = cpt == ' ' ? sv_flags(v, pos + 1) : f;
        if (is_letter(f2) || is_number(f2)) {
            int (*same)(unsigned) = is_letter(f2) ? is_letter : is_number;
            pos += cpt == ' ';
            while (same(sv_flags(v, pos)))
                pos++;
            sv_emit(v, pos);
            continue;
        }
        if (!is_ws(f2) && f2) {
            pos += cpt == ' ';
            while (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && f2)
                f2 = sv_flags(v, ++pos);
            sv_emit(v, pos);
            continue;
        }
        size_t last_rn, next = ws_tail(v, pos, ws_run(v, pos, &last_rn));
        if (next) {
            pos = next;
            continue;
        }
        sv_emit(v, ++pos); /* no alternative matches: one code point */
    }
}

/* Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(segview *v) {
    for (size_t pos = v->ini; pos < v->end;) {
        uint32_t cpt = sv_cpt(v, pos);
        unsigned f = sv_flags(v, pos);
        size_t n = contraction(v, pos, 1);
        if (n) {
            pos += sv_emit(v, pos + n);
            continue;
        }
        if (!(cpt == '\r' || cpt == '\n' || is_number(f)) &&
            (is_letter(f) || is_letter(sv_flags(v, pos + 1)))) {
            pos++;
            while (is_letter(sv_flags(v, pos)))
                pos++;
            sv_emit(v, pos);
            continue;
        }
        if (is_number(f)) {
            size_t ini = pos;
            while (is_number(sv_flags(v, pos))) {
                if (++pos - ini >= 3) {
                    sv_emit(v, pos);
                    ini = pos;
                }
            }
            sv_emit(v, pos);
            continue;
        }
        /* llama.cpp tests the current code point's flags (always set)
         * here, not the next one's: " " at a segment's end is a word. */
        unsigned f2 = cpt == ' ' ? sv_flags(v, pos + 1) : f;
        if (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && f) {
            pos += cpt == ' ';
            while (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && f2)
                f2 = sv_flags(v, ++pos);
            uint32_t c2 = sv_cpt(v, pos);
            while (c2 == '\r' || c2 == '\n')
                c2 = sv_cpt(v, ++pos);
            sv_emit(v, pos);
            continue;
        }
        size_t last_rn, n_ws = ws_run(v, pos, &last_rn);
        if (last_rn > 0) {
            pos = last_rn;
            sv_emit(v, pos);
            continue;
        }
        size_t next = ws_tail(v, pos, n_ws);
        if (next) {
            pos = next;
            continue;
        }
        sv_emit(v, ++pos);
    }
}

int m40_split_gpt2(const uint32_t *cps, const uint8_t *flags, size_t ini, size_t end,
                   seglist *out) {
    segview v = {cps, flags, ini, end, ini, out, 0};
    split_gpt2(&v);
    return v.oom ? -1 : 0;
}

int m40_split_llama3(const uint32_t *cps, const uint8_t *flags, size_t ini, size_t end,
                     seglist *out) {
    segview v = {cps, flags, ini, end, ini, out, 0};
    split_llama3(&v);
    return v.oom ? -1 : 0;
}
