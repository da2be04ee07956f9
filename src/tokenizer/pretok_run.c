/* pretok_run.c - running a pre-tokenizer over one fragment.
 *
 * Decodes the fragment as llama.cpp does (lenient UTF-8, re-encoded), keeps
 * the views each kind of pass needs (code point classes, the collapsed
 * one-byte-per-code-point text, the UTF-8 subject with whitespace as \v),
 * then applies the passes in order, each splitting every segment of the
 * previous one into its matches and the gaps between them.
 *
 * Owns: the scratch buffers of one encode call (m40_pretok_scratch).
 * Touches: nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_internal.h"
#include "tokenizer/unicode.h"

/* The collapsed byte of one code point (llama.cpp's text_collapsed). */
static unsigned char collapse_cp(uint32_t cp, uint8_t flags) {
    static const unsigned char k_byte[8] = {0xD0, 0xD1, 0xD2, 0xD0, 0xD4, 0xD3, 0xD5, 0xD0};
    if (cp < 128)
        return (unsigned char)cp;
    if (flags & M40_UFLAG_WHITESPACE)
        return 0x0B;
    return k_byte[flags & 7];
}

/* Index of the code point starting at byte b, searching cp_off[lo..hi]. */
static size_t cp_at(const uint32_t *cp_off, size_t lo, size_t hi, size_t b) {
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp_off[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The subject of a segment and how its byte offsets map to code points:
 * collapsed text has one byte per code point; UTF-8 needs a search. */
typedef struct subject {
    const unsigned char *p;
    size_t len, base, ini, end;
    const uint32_t *cp_off; /* NULL for collapsed text */
} subject;

static size_t subj_cp(const subject *sj, size_t lo, size_t byte) {
    return sj->cp_off ? cp_at(sj->cp_off, lo, sj->end, sj->base + byte) : sj->ini + byte;
}

/* One PCRE2 regex over code points [ini, end): matches and gaps, in order,
 * as std::regex_iterator walks them (an empty match is extended or steps
 * one code point). */
static int split_pcre(const compiled_re *re, m40_pretok_scratch *s, size_t ini, size_t end,
                      seglist *out, m40_err *err) {
    pcre2_match_data *md = s->match_data;
    subject sj;
    if (re->kind == RE_PCRE_UTF) {
        size_t base = s->subj_off[ini];
        sj = (subject){s->subj + base, s->subj_off[end] - base, base, ini, end, s->subj_off};
    } else {
        sj = (subject){s->coll + ini, end - ini, 0, ini, end, NULL};
    }
    uint32_t mode = re->kind == RE_PCRE_UTF ? PCRE2_NO_UTF_CHECK : 0, opts = 0;
    size_t off = 0, prev = ini;
    for (;;) {
        int rc = pcre2_match(re->code, sj.p, sj.len, off, opts | mode, md, s->match_ctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!opts)
                break;
            size_t c = subj_cp(&sj, ini, off);
            if (c >= end)
                break;
            off = sj.cp_off ? sj.cp_off[c + 1] - sj.base : off + 1;
            opts = 0;
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return m40_errf(err, "pre-tokenizer regex failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = subj_cp(&sj, ini, ov[0]);
        size_t me = subj_cp(&sj, ms, ov[1]);
        if (m40_seg_push(out, ms - prev) || m40_seg_push(out, me - ms))
            return m40_errf(err, "pre-tokenizer: out of memory");
        prev = me;
        off = ov[1];
        opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
        if (off >= sj.len && !opts)
            break;
    }
    if (m40_seg_push(out, end - prev))
        return m40_errf(err, "pre-tokenizer: out of memory");
    return 0;
}

void m40_pretok_scratch_free(m40_pretok_scratch *s) {
    free(s->cps);
    free(s->flags);
    free(s->coll);
    free(s->cp_off);
    free(s->text);
    free(s->subj);
    free(s->subj_off);
    free(s->seg[0]);
    free(s->seg[1]);
    free(s->words);
    pcre2_match_data_free(s->match_data);
    pcre2_match_context_free(s->match_ctx);
    pcre2_jit_stack_free(s->jit_stack);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int reserve(m40_pretok_scratch *s, size_t len) {
    size_t cap = s->cap_cps, tcap = s->cap_text;
    void *p;
    /* One code point per byte at most; three bytes per input byte at most
     * after re-encoding (an invalid byte becomes U+FFFD). */
    if (len + 1 > cap) {
        size_t c = cap;
        p = s->cps;
        if (grow(&p, &c, len + 1, sizeof *s->cps))
            return -1;
        s->cps = p;
        c = cap;
        p = s->flags;
        if (grow(&p, &c, len + 1, sizeof *s->flags))
            return -1;
        s->flags = p;
        c = cap;
        p = s->coll;
        if (grow(&p, &c, len + 1, sizeof *s->coll))
            return -1;
        s->coll = p;
        c = cap;
        p = s->cp_off;
        if (grow(&p, &c, len + 1, sizeof *s->cp_off))
            return -1;
        s->cp_off = p;
        c = cap;
        p = s->subj_off;
        if (grow(&p, &c, len + 1, sizeof *s->subj_off))
            return -1;
        s->subj_off = p;
        s->cap_cps = c;
    }
    if (3 * len + 4 > tcap) {
        size_t c = tcap;
        p = s->text;
        if (grow(&p, &c, 3 * len + 4, 1))
            return -1;
        s->text = p;
        c = tcap;
        p = s->subj;
        if (grow(&p, &c, 3 * len + 4, 1))
            return -1;
        s->subj = p;
        s->cap_text = c;
    }
    if (!s->match_data) {
        s->match_data = pcre2_match_data_create(1, NULL);
        s->match_ctx = pcre2_match_context_create(NULL);
        /* Group repeats in some regexes keep a frame per iteration; give
         * JIT room for long letter runs. */
        s->jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
        if (!s->match_data || !s->match_ctx || !s->jit_stack)
            return -1;
        pcre2_jit_stack_assign(s->match_ctx, NULL, s->jit_stack);
    }
    return 0;
}

/* Decodes and re-encodes text as llama.cpp does; returns the code point
 * count or -1 (err set) for a form above U+10FFFF. */
static int decode_fragment(const m40_pretok *pt, m40_pretok_scratch *s, const unsigned char *in,
                           size_t len, size_t *n_cps, m40_err *err) {
    size_t pos = 0, n = 0, out = 0;
    while (pos < len) {
        size_t at = pos;
        uint32_t cp = m40_utf8_decode(in, len, &pos);
        if (cp > M40_UNICODE_MAX)
            return m40_errf(err,
                            "invalid UTF-8 at byte %zu: the sequence encodes U+%X, above U+10FFFF",
                            at, (unsigned)cp);
        s->cps[n] = cp;
        s->cp_off[n] = (uint32_t)out;
        out += m40_utf8_encode(cp, s->text + out);
        if (pt->need_flags) {
            s->flags[n] = m40_ucp_flags(cp);
            if (pt->need_coll)
                s->coll[n] = collapse_cp(cp, s->flags[n]);
        }
        n++;
    }
    s->cp_off[n] = (uint32_t)out;
    *n_cps = n;
    return 0;
}

/* The UTF-8 subject of the wregex-mode regexes, as llama.cpp builds its
 * wstring: non-ASCII whitespace becomes \v (so only \s matches it, never a
 * literal range such as U+0800..U+4E00 that contains U+3000), and a decoded
 * surrogate, which PCRE2 cannot take, becomes U+E000 (no regex here names
 * either). subj_off maps code points to subject bytes. */
static void build_subject(m40_pretok_scratch *s, size_t n_cps) {
    size_t out = 0;
    for (size_t i = 0; i < n_cps; i++) {
        uint32_t cp = s->cps[i];
        s->subj_off[i] = (uint32_t)out;
        if (cp >= 0x80 && (m40_ucp_flags(cp) & M40_UFLAG_WHITESPACE))
            cp = 0x0B;
        else if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xE000;
        out += m40_utf8_encode(cp, s->subj + out);
    }
    s->subj_off[n_cps] = (uint32_t)out;
}

static int apply_regex(const m40_pretok *pt, size_t r, m40_pretok_scratch *s, seglist *in,
                       seglist *out, m40_err *err) {
    size_t start = 0;
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        size_t end = start + in->len[k];
        if (pt->re[r].kind == RE_PCRE_UTF || pt->re[r].kind == RE_PCRE_COLLAPSED) {
            if (split_pcre(&pt->re[r], s, start, end, out, err))
                return -1;
        } else {
            int (*split)(const uint32_t *, const uint8_t *, size_t, size_t, seglist *) =
                pt->re[r].kind == RE_CUSTOM_GPT2 ? m40_split_gpt2 : m40_split_llama3;
            if (split(s->cps, s->flags, start, end, out))
                return m40_errf(err, "pre-tokenizer: out of memory");
        }
        start = end;
    }
    return 0;
}

int m40_pretok_run(const m40_pretok *pt, const char *text, size_t len, m40_pretok_scratch *s,
                   m40_err *err) {
    s->n_words = 0;
    if (len > UINT32_MAX / 4)
        return m40_errf(err, "pre-tokenizer: fragment of %zu bytes is too long", len);
    if (reserve(s, len))
        return m40_errf(err, "pre-tokenizer: out of memory for %zu bytes", len);
    size_t n_cps = 0;
    if (decode_fragment(pt, s, (const unsigned char *)text, len, &n_cps, err))
        return -1;
    if (pt->need_subject)
        build_subject(s, n_cps);

    seglist a = {s->seg[0], 0, s->seg_cap[0]}, b = {s->seg[1], 0, s->seg_cap[1]};
    int rc = m40_seg_push(&a, n_cps) ? m40_errf(err, "pre-tokenizer: out of memory") : 0;
    for (size_t r = 0; rc == 0 && r < pt->n; r++) {
        rc = apply_regex(pt, r, s, &a, &b, err);
        seglist t = a;
        a = b;
        b = t;
    }
    s->seg[0] = a.len;
    s->seg_cap[0] = a.cap;
    s->seg[1] = b.len;
    s->seg_cap[1] = b.cap;
    if (rc)
        return -1;

    if (grow((void **)&s->words, &s->cap_words, a.n, sizeof *s->words))
        return m40_errf(err, "pre-tokenizer: out of memory");
    size_t start = 0;
    for (size_t k = 0; k < a.n; k++) {
        s->words[s->n_words].start = s->cp_off[start];
        start += a.len[k];
        s->words[s->n_words].end = s->cp_off[start];
        s->n_words++;
    }
    return 0;
}
