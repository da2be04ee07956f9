/* decode.c - token ids -> text, whole (llama_detokenize) or streamed.
 *
 * Every token's piece is rendered once at load (the piece cache of
 * llama.cpp's load(), "special" on): SPM normal tokens with U+2581 -> ' ',
 * BPE normal tokens through the reverse GPT-2 byte map, byte tokens
 * <0xXX> as their byte, control/user-defined/unknown tokens as their text.
 * Decoding then concatenates pieces, strips the one leading space the SPM
 * prefix added, and (BPE vocabularies with clean_spaces) applies
 * llama.cpp's three clean-up passes.
 *
 * Owns: the piece cache, the stream's buffers. Touches: nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include "util/utf8.h"

/* --- piece cache ------------------------------------------------------ */

typedef struct outbuf {
    char *p;
    size_t n, cap;
} outbuf;

static int ob_reserve(outbuf *b, size_t extra) {
    if (b->n + extra <= b->cap)
        return 0;
    if (extra > SIZE_MAX / 2 - b->n)
        return -1;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int ob_add(outbuf *b, const void *s, size_t len) {
    if (ob_reserve(b, len))
        return -1;
    if (len)
        memcpy(b->p + b->n, s, len);
    b->n += len;
    return 0;
}

/* <0xXX>: llama.cpp parses text[3..5) with strtol base 16. */
static char byte_of(const m40_tok_str *t) {
    char hex[3] = {0, 0, 0};
    for (size_t i = 0; i < 2 && 3 + i < t->len; i++)
        hex[i] = t->ptr[3 + i];
    return (char)strtol(hex, NULL, 16);
}

static int add_spm_normal(outbuf *b, const m40_tok_str *t) {
    for (size_t i = 0; i < t->len;) {
        if (i + 3 <= t->len && !memcmp(t->ptr + i, "\xE2\x96\x81", 3)) {
            if (ob_add(b, " ", 1))
                return -1;
            i += 3;
        } else {
            if (ob_add(b, t->ptr + i, 1))
                return -1;
            i++;
        }
    }
    return 0;
}

/* llama_decode_text: each code point back to its byte; one outside the
 * GPT-2 alphabet renders as llama.cpp's "[UNK_BYTE_0x..<text>]". */
static int add_bpe_normal(outbuf *b, const m40_tok_str *t) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)t->ptr;
    for (size_t pos = 0; pos < t->len;) {
        uint32_t cp = m40_utf8_decode(s, t->len, &pos);
        int byte = m40_gpt2_cp_to_byte(cp);
        if (byte >= 0) {
            char c = (char)byte;
            if (ob_add(b, &c, 1))
                return -1;
            continue;
        }
        unsigned char u[4];
        size_t n = m40_utf8_encode(cp, u);
        if (ob_add(b, "[UNK_BYTE_0x", 12))
            return -1;
        for (size_t k = 0; k < n; k++) {
            char h[2] = {hex[u[k] >> 4], hex[u[k] & 15]};
            if (ob_add(b, h, 2))
                return -1;
        }
        if (ob_add(b, t->ptr, t->len) || ob_add(b, "]", 1))
            return -1;
    }
    return 0;
}

static int add_piece(const m40_tokenizer *tok, size_t id, outbuf *b) {
    const m40_tok_str *t = &tok->text[id];
    uint16_t a = tok->attr[id];
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))
        return ob_add(b, t->ptr, t->len);
    if (a & TOK_ATTR_NORMAL)
        return tok->kind == M40_TOKENIZER_SPM ? add_spm_normal(b, t) : add_bpe_normal(b, t);
    if (a & TOK_ATTR_BYTE) {
        char c = byte_of(t);
        return ob_add(b, &c, 1);
    }
    return 0; /* unused and undefined tokens render as nothing */
}

int m40_build_pieces(m40_tokenizer *tok, m40_err *err) {
    outbuf b = {0};
    tok->piece_off = malloc((tok->n_tokens + 1) * sizeof *tok->piece_off);
    if (!tok->piece_off)
        return m40_errf(err, "out of memory for the piece cache");
    for (size_t i = 0; i < tok->n_tokens; i++) {
        tok->piece_off[i] = (uint32_t)b.n;
        if (add_piece(tok, i, &b) || b.n > UINT32_MAX) {
            free(b.p);
            return m40_errf(err, "out of memory for the piece cache");
        }
    }
    tok->piece_off[tok->n_tokens] = (uint32_t)b.n;
    tok->piece_arena = b.p ? b.p : malloc(1);
    if (!tok->piece_arena)
        return m40_errf(err, "out of memory for the piece cache");
    return 0;
}

int m40_token_to_piece(const m40_tokenizer *tok, m40_token id, int render_special,
                       const char **piece, size_t *len, m40_err *err) {
    if (id < 0 || (size_t)id >= tok->n_tokens)
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "token id %d is outside the vocabulary (%zu tokens)", (int)id,
                        tok->n_tokens);
    *piece = tok->piece_arena + tok->piece_off[id];
    *len = tok->piece_off[id + 1] - tok->piece_off[id];
    if (!render_special && (tok->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        *len = 0;
    return 0;
}

/* --- detokenize ------------------------------------------------------- */

/* llama.cpp's clean_spaces passes, in place, on t[0..total). */
static size_t clean_spaces(char *t, size_t total) {
    /* 1: " ?", " !", " .", " ," lose the space. */
    size_t t1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < t1; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        t[total++] = x;
    }
    /* 2: a lone apostrophe between spaces loses both spaces. */
    size_t t2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < t2; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < t2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    /* 3: " 's", " 'm", " 're", " 've" lose the space. */
    size_t t3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < t3; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < t3) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < t3) {
                char x2 = t[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                    total--;
            }
        }
        t[total++] = x;
    }
    return total;
}

/* The piece of ids[i] as detokenize renders it, minus a leading space when
 * strip is set (llama.cpp's lstrip). */
static int piece_for(const m40_tokenizer *tok, m40_token id, unsigned flags, int strip,
                     const char **p, size_t *n, m40_err *err) {
    if (m40_token_to_piece(tok, id, (flags & M40_DETOK_RENDER_SPECIAL) != 0, p, n, err))
        return -1;
    if (strip && *n && **p == ' ') {
        (*p)++;
        (*n)--;
    }
    return 0;
}

int m40_detokenize(const m40_tokenizer *tok, const m40_token *ids, size_t n, unsigned flags,
                   char **text, size_t *len, m40_err *err) {
    outbuf b = {0};
    int strip = tok->add_space_prefix && !(flags & M40_DETOK_KEEP_LEADING_SPACE);
    if ((flags & M40_DETOK_REMOVE_SPECIAL) && tok->add_bos && n > 0 && ids[0] == tok->bos) {
        strip = 0; /* as llama.cpp: with the BOS removed, the space stays */
        ids++;
        n--;
    }
    if ((flags & M40_DETOK_REMOVE_SPECIAL) && tok->add_eos && n > 0 && ids[n - 1] == tok->eos)
        n--;
    for (size_t i = 0; i < n; i++) {
        const char *p = NULL;
        size_t pn = 0;
        if (piece_for(tok, ids[i], flags, strip, &p, &pn, err)) {
            free(b.p);
            return -1;
        }
        strip = 0;
        if (ob_add(&b, p, pn)) {
            free(b.p);
            return m40_errf(err, "detokenize: out of memory");
        }
    }
    if (ob_reserve(&b, 1)) {
        free(b.p);
        return m40_errf(err, "detokenize: out of memory");
    }
    if (tok->clean_spaces && !(flags & M40_DETOK_NO_CLEANUP))
        b.n = clean_spaces(b.p, b.n);
    b.p[b.n] = '\0';
    *text = b.p;
    *len = b.n;
    return 0;
}

/* --- stream ----------------------------------------------------------- */

void m40_detok_stream_init(m40_detok_stream *s, const m40_tokenizer *tok, unsigned flags) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->flags = flags;
    s->first = 1;
}

void m40_detok_stream_free(m40_detok_stream *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static int stream_reserve(m40_detok_stream *s, size_t need) {
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(s->buf, cap);
    if (!p)
        return -1;
    s->buf = p;
    s->cap = cap;
    return 0;
}

/* Appends held bytes + in[0..n) to the output as valid UTF-8: whole
 * characters pass, never-valid bytes become U+FFFD, an unfinished tail is
 * held for the next call. */
static size_t stream_emit(m40_detok_stream *s, const char *in, size_t n, size_t out) {
    unsigned char tmp[8];
    size_t i = 0;
    /* Finish a held character first, from at most 3 new bytes. */
    while (s->n_held && i < n) {
        size_t k = s->n_held;
        memcpy(tmp, s->held, k);
        size_t take = n - i < 4 - k ? n - i : 4 - k;
        memcpy(tmp + k, in + i, take);
        int r = m40_utf8_valid_prefix(tmp, k + take);
        if (r == 0) { /* still unfinished: everything taken joins the held bytes */
            memcpy(s->held + k, in + i, take);
            s->n_held += take;
            return out;
        }
        size_t used = r > 0 ? (size_t)r : (size_t)-r;
        if (r > 0)
            memcpy(s->buf + out, tmp, used);
        else
            memcpy(s->buf + out, "\xEF\xBF\xBD", 3);
        out += r > 0 ? used : 3;
        /* The held bytes are consumed; the rest of used came from in. */
        if (used >= k) {
            i += used - k;
            s->n_held = 0;
        } else {
            memmove(s->held, s->held + used, k - used);
            s->n_held = k - used;
        }
    }
    while (i < n) {
        int r = m40_utf8_valid_prefix((const unsigned char *)in + i, n - i);
        if (r == 0) {
            memcpy(s->held, in + i, n - i);
            s->n_held = n - i;
            break;
        }
        if (r > 0) {
            memcpy(s->buf + out, in + i, (size_t)r);
            out += (size_t)r;
            i += (size_t)r;
        } else {
            memcpy(s->buf + out, "\xEF\xBF\xBD", 3);
            out += 3;
            i += (size_t)-r;
        }
    }
    return out;
}

int m40_detok_stream_feed(m40_detok_stream *s, m40_token id, const char **text, size_t *len,
                          m40_err *err) {
    const char *p = NULL;
    size_t n = 0;
    int strip = s->first && s->tok->add_space_prefix && !(s->flags & M40_DETOK_KEEP_LEADING_SPACE);
    if (piece_for(s->tok, id, s->flags, strip, &p, &n, err))
        return -1;
    s->first = 0;
    /* Worst case every byte (held or new) becomes a 3-byte U+FFFD. */
    if (n > SIZE_MAX / 4 || stream_reserve(s, 3 * (n + s->n_held) + 1))
        return m40_errf(err, "detokenize stream: out of memory");
    *len = stream_emit(s, p, n, 0);
    *text = s->buf;
    return 0;
}

int m40_detok_stream_flush(m40_detok_stream *s, const char **text, size_t *len, m40_err *err) {
    if (stream_reserve(s, 4))
        return m40_errf(err, "detokenize stream: out of memory");
    *len = 0;
    if (s->n_held) {
        /* A held prefix is one maximal subpart: one U+FFFD. */
        memcpy(s->buf, "\xEF\xBF\xBD", 3);
        *len = 3;
        s->n_held = 0;
    }
    *text = s->buf;
    return 0;
}
