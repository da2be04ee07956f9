/* pretok.c - byte-level BPE pre-tokenizers: text -> words.
 *
 * Each tokenizer.ggml.pre name selects an ordered list of regexes (taken
 * from llama.cpp's llm_tokenizer_bpe); each regex splits every segment the
 * previous one produced into its matches and the gaps between them, as
 * llama.cpp's unicode_regex_split does. Like llama.cpp we work on code
 * points: the fragment is decoded with llama.cpp's lenient decoder and
 * re-encoded, so invalid bytes become U+FFFD here exactly as there.
 *
 * Two regexes (GPT-2's and Llama 3's) run as hand-written splitters, as in
 * llama.cpp (unicode_regex_split_custom_gpt2/_llama3): they are fast and
 * they are the reference behaviour. The rest run through PCRE2, in the one
 * of llama.cpp's two modes that the regex needs:
 *
 *  - Regexes with Unicode categories (\p{L}, \p{N}, ...): llama.cpp
 *    "collapses" the text to one byte per code point (ASCII as itself,
 *    whitespace as \v, any other code point as one byte per category) and
 *    each \p{X} to a class of that byte plus X's ASCII members, then runs
 *    std::regex on bytes. We do the same, with PCRE2 in byte mode. This is
 *    what makes us exact: PCRE2 10.42's own Unicode tables are version
 *    14.0, llama.cpp's (and ours, unicode_data.c) 15.1, so \p{L} under
 *    PCRE2_UTF|PCRE2_UCP missed letters added in Unicode 15 (found by
 *    differential testing against llama.cpp); and in llama.cpp's collapsed
 *    form \p{Lu}, \p{Ll}, ... all mean "any letter", which a literal PCRE2
 *    \p{Lu} would not.
 *  - Regexes without categories (literal non-ASCII ranges, \s, [0-9]):
 *    llama.cpp runs std::wregex over code points with non-ASCII
 *    whitespace turned into \v. We run PCRE2 with PCRE2_UTF|PCRE2_UCP on
 *    the UTF-8 text after a rewrite that gives PCRE2 the same meaning:
 *    \s -> the White_Space set (PCRE2's \s also takes U+180E), \S -> its
 *    complement, \d -> [0-9] (std::regex's \d is ASCII only).
 *
 * Both modes compile with PCRE2_DOLLAR_ENDONLY ($ only at the end, as in
 * std::regex) and match each segment as its own subject (lookarounds stop
 * at its ends, as with llama.cpp's per-segment regex_iterator).
 *
 * This file: the table of pre-tokenizers and their regexes, and turning a
 * regex into a PCRE2 code in the mode it needs.
 *
 * Owns: the pre-tokenizer table, the compiled PCRE2 codes. Touches: nothing
 * else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_internal.h"

/* --- the table -------------------------------------------------------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3_I                                                            \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                              \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                               \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?(" \
    "(?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/"           \
    "]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT4O                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]" \
    "|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}"  \
    "])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| "         \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Non-ASCII characters are written as \\x{} escapes (same code points as
 * llama.cpp's literals) so no editor or tool can normalise them. */
#define RE_CJK      "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define RE_CJK_KANA "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
#define RE_BLOOM    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

/* Loops below are bounded by these sizes, not only by a NULL entry, so
 * a full row cannot be read past. */
enum { PT_MAX_NAMES = 24, PT_MAX_REGEX = M40_PRETOK_MAX_REGEX };

/* Per-name settings llama.cpp's load() makes besides the regexes. */
enum {
    PT_IGNORE_MERGES = 1, /* a word that is itself a token is emitted whole */
    PT_CLEAN_SPACES = 2,  /* decoding removes spaces before punctuation */
    PT_ADD_BOS = 4,       /* add_bos defaults to true */
    PT_NO_BOS = 8,        /* the BOS id is cleared */
};

typedef struct pretok_def {
    const char *names[PT_MAX_NAMES]; /* tokenizer.ggml.pre values; unused slots NULL */
    unsigned flags;                  /* PT_* */
    const char *regex[PT_MAX_REGEX]; /* applied in order; unused slots NULL */
} pretok_def;

/* Names, regexes and flags as llama.cpp's llama_vocab::impl::load() and
 * llm_tokenizer_bpe assign them (llama.cpp commit 0c1e570). Names that need
 * machinery we lack (kimi-k2's and afmoe's / tiny_aya's custom splitters,
 * SPM-style BPE without the byte map: gemma4, sarvam-moe, laguna,
 * whitespace) fail as unsupported. */
static const pretok_def k_pretoks[] = {
    {{"default"},
     PT_CLEAN_SPACES,
     {
         "[\\p{P}\\$\\+<=>\\^~\\|]+",
         RE_GPT2,
         "\\p{N}+",
         "[0-9][0-9][0-9]",
     }},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
      "jina-v5-nano"},
     PT_IGNORE_MERGES | PT_CLEAN_SPACES | PT_ADD_BOS,
     {
         RE_LLAMA3,
     }},
    {{"dbrx", "smaug-bpe"},
     PT_CLEAN_SPACES,
     {
         RE_LLAMA3,
     }},
    {{"chatglm-bpe"},
     PT_CLEAN_SPACES | PT_NO_BOS,
     {
         RE_LLAMA3,
     }},
    {{"glm4", "glm5"},
     PT_IGNORE_MERGES | PT_CLEAN_SPACES | PT_NO_BOS,
     {
         RE_LLAMA3,
     }},
    {{"deepseek-llm"},
     0,
     {
         "[\r\n]",
         "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
         "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
         "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
         "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
         "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"
         "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
         "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
         "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-"
         "\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-"
         "\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}"
         "\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-"
         "\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
         "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}"
         "-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-"
         "\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-"
         "\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-"
         "\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-"
         "\\x{1E943}]+",
         "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-"
         "\\x{3002}]+",
         "\\s+$",
         RE_CJK,
         "\\p{N}+",
     }},
    {{"deepseek-coder"},
     0,
     {
         "[\r\n]",
         "\\s?\\p{L}+",
         "\\s?\\p{P}+",
         RE_CJK,
         "\\p{N}",
     }},
    {{"falcon"},
     PT_CLEAN_SPACES,
     {
         "[\\p{P}\\$\\+<=>\\^~\\|`]+",
         RE_GPT2,
         "[0-9][0-9][0-9]",
     }},
    {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
     PT_CLEAN_SPACES,
     {
         "\\p{N}",
         RE_GPT2,
     }},
    {{"command-r", "smollm"},
     0,
     {
         "\\p{N}",
         RE_GPT2,
     }},
    {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
      "mellum", "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt",
      "olmo"},
     PT_CLEAN_SPACES,
     {
         RE_GPT2,
     }},
    {{"jais"},
     PT_CLEAN_SPACES,
     {
         RE_GPT2,
     }},
    {{"trillion", "granite-docling"},
     0,
     {
         RE_GPT2,
     }},
    {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
     0,
     {
         RE_QWEN2,
     }},
    {{"megrez", "stablelm2"},
     PT_CLEAN_SPACES,
     {
         RE_QWEN2,
     }},
    {{"qwen35"},
     0,
     {
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?["
         "\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)"
         "|\\s+",
     }},
    {{"tekken"},
     PT_IGNORE_MERGES | PT_ADD_BOS,
     {
         RE_TEKKEN,
     }},
    {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"},
     0,
     {
         RE_GPT4O,
     }},
    {{"viking"},
     0,
     {
         RE_BLOOM,
         "\\p{N}",
     }},
    {{"poro-chat"},
     0,
     {
         RE_BLOOM,
     }},
    {{"bloom", "gpt3-finnish"},
     PT_CLEAN_SPACES,
     {
         RE_BLOOM,
     }},
    {{"seed-coder"},
     0,
     {
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
         "\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     }},
    {{"bailingmoe", "bailingmoe2", "llada-moe"},
     0,
     {
         "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^"
         "\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
     }},
    {{"ufakzeka"},
     0,
     {
         "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
         "\\s+(?!\\S)|\\s+",
     }},
    {{"minicpm5"},
     PT_IGNORE_MERGES | PT_CLEAN_SPACES,
     {
         "\\p{N}{1,3}",
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
         "\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     }},
    {{"exaone-moe"},
     PT_CLEAN_SPACES,
     {
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:"
         "\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r"
         "\\n]|\\s+(?!\\S)|\\s+",
     }},
    {{"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
     0,
     {
         "\\p{N}{1,3}",
         RE_CJK_KANA,
         "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?["
         "\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
     }},
    {{"spark2_5"},
     0,
     {
         "\\p{N}{1,3}",
         RE_CJK_KANA,
         "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?["
         "\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
         "\\p{N}",
     }},
    {{"youtu"},
     PT_IGNORE_MERGES,
     {
         "[\\x{AC00}-\\x{D7A3}\\x{3131}-\\x{318E}]+|[\\x{FF01}\\x{2026}\\x{201C}\\x{201D}"
         "\\x{2018}\\x{2019}\\x{2014}\\x{FF1A}\\x{FF1B}\\x{FF0C}\\x{3001}-\\x{303F}\\x{FE30}-"
         "\\x{FE4F}]+|[\\x{3105}-\\x{312F}]+|[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-"
         "\\x{30FF}]+",
         "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}"
         "\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}"
         "\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|"
         "'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r"
         "\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     }},
    {{"chameleon"},
     PT_ADD_BOS,
     {
         "<sentinel:[0-9]+>",
         "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
         "([\\t\\n]|    |  )",
         "\\p{N}",
         "[\\p{P}!-/:-@\\[-`{-~]",
         RE_GPT2,
     }},
    {{"granite-embed-multi-97m"},
     PT_IGNORE_MERGES,
     {
         "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'"
         "[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=["
         "\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV]["
         "eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]"
         "+|\\s+(?!\\S)|\\s+",
     }},
    {{"superbpe"},
     0,
     {
         "\\p{N}+",
         "(?=(\\d{3})+(?!\\d))",
     }},
    {{"jais-2"},
     PT_CLEAN_SPACES,
     {
         "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
         "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s"
         "{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!"
         "\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
     }},
};

static const pretok_def *find_def(const char *name) {
    if (!name || !*name)
        name = "default";
    for (size_t i = 0; i < sizeof k_pretoks / sizeof k_pretoks[0]; i++) {
        for (size_t k = 0; k < PT_MAX_NAMES && k_pretoks[i].names[k]; k++) {
            if (!strcmp(k_pretoks[i].names[k], name))
                return &k_pretoks[i];
        }
    }
    return NULL;
}

const char *m40_pretok_name_at(size_t index) {
    for (size_t i = 0; i < sizeof k_pretoks / sizeof k_pretoks[0]; i++) {
        for (size_t k = 0; k < PT_MAX_NAMES && k_pretoks[i].names[k]; k++) {
            if (index-- == 0)
                return k_pretoks[i].names[k];
        }
    }
    return NULL;
}

m40_pretok_info m40_pretok_lookup(const char *name) {
    m40_pretok_info info = {0};
    const pretok_def *d = find_def(name);
    if (d) {
        info.known = 1;
        info.ignore_merges = (d->flags & PT_IGNORE_MERGES) != 0;
        info.clean_spaces = (d->flags & PT_CLEAN_SPACES) != 0;
        info.add_bos = (d->flags & PT_ADD_BOS) != 0;
        info.no_bos = (d->flags & PT_NO_BOS) != 0;
    }
    return info;
}

/* --- regex rewrite ---------------------------------------------------- */

/* Unicode White_Space: what llama.cpp's \s matches. */
#define WS_ITEMS                                                                                   \
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}" \
    "\\x{3000}"

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

static int sb_adds(strbuf *b, const char *s) {
    return sb_add(b, s, strlen(s));
}

/* Rewrites one escape at re[i] ('\\'); sets *used to the characters taken.
 * Returns 0, -1 out of memory, or -2 (err set) for an escape we refuse. */
static int rewrite_escape(strbuf *b, const char *re, size_t i, int in_class, size_t *used,
                          m40_err *err) {
    char c = re[i + 1];
    *used = 2;
    switch (c) {
        case 's':
            return sb_adds(b, in_class ? WS_ITEMS : "[" WS_ITEMS "]");
        case 'S':
            if (in_class)
                break;
            return sb_adds(b, "[^" WS_ITEMS "]");
        case 'd':
            return sb_adds(b, in_class ? "0-9" : "[0-9]");
        case 'D':
            if (in_class)
                break;
            return sb_adds(b, "[^0-9]");
        case 'w':
        case 'W':
        case 'b':
        case 'B':
            break;
        case 'p': /* categories send a regex to collapsed mode; others fail there too */
        case 'P':
            break;
        case '\0':
            m40_errf(err, "pre-tokenizer regex ends in a backslash");
            return -2;
        default:
            return sb_add(b, re + i, 2);
    }
    m40_errf(err, "pre-tokenizer regex uses \\%c%s, which has no llama.cpp-exact PCRE2 form", c,
             in_class ? " inside a class" : "");
    return -2;
}

/* llama.cpp regex -> PCRE2 pattern with llama.cpp's meaning (see top). */
static char *rewrite_regex(const char *re, m40_err *err) {
    strbuf b = {0};
    int in_class = 0;
    for (size_t i = 0; re[i];) {
        int rc = 0;
        size_t used = 1;
        if (re[i] == '\\') {
            rc = rewrite_escape(&b, re, i, in_class, &used, err);
            if (rc == -2) {
                free(b.p);
                return NULL;
            }
        } else {
            if (!in_class && re[i] == '[') {
                in_class = 1;
                /* A ']' right after '[' or '[^' is a literal in PCRE2. */
                size_t j = i + 1 + (re[i + 1] == '^');
                used = j - i + (re[j] == ']');
            } else if (in_class && re[i] == ']') {
                in_class = 0;
            }
            rc = sb_add(&b, re + i, used);
        }
        if (rc < 0) {
            free(b.p);
            m40_errf(err, "pre-tokenizer regex: out of memory");
            return NULL;
        }
        i += used;
    }
    if (!b.p)
        sb_adds(&b, "");
    return b.p;
}

/* --- collapsed regexes (llama.cpp's unicode_regex_split) ----------------- */

/* The byte a code point of each category collapses to, and the ASCII
 * members of each category, exactly as llama.cpp's k_ucat_cpt and
 * k_ucat_map. (Older llama.cpp left '~' out of the symbols; 0c1e570 has
 * it.) */
typedef struct ucat {
    const char *name;
    const char *items; /* PCRE2 class items: the category byte + ASCII */
} ucat;

#define CAT_N "\\xD1\\x{30}-\\x{39}"
#define CAT_L "\\xD2\\x{41}-\\x{5A}\\x{61}-\\x{7A}"
static const ucat k_ucats[] = {
    {"\\p{N}", CAT_N},
    {"\\p{L}", CAT_L},
    {"\\p{P}", "\\xD3\\x{21}-\\x{23}\\x{25}-\\x{2A}\\x{2C}-\\x{2F}\\x{3A}-\\x{3B}\\x{3F}-"
               "\\x{40}\\x{5B}-\\x{5D}\\x{5F}\\x{7B}\\x{7D}"},
    {"\\p{M}", "\\xD4"},
    {"\\p{S}", "\\xD5\\x{24}\\x{2B}\\x{3C}-\\x{3E}\\x{5E}\\x{60}\\x{7C}\\x{7E}"},
    {"\\p{Lu}", CAT_L},
    {"\\p{Ll}", CAT_L},
    {"\\p{Lt}", CAT_L},
    {"\\p{Lm}", CAT_L},
    {"\\p{Lo}", CAT_L},
};

static int uses_categories(const char *re) {
    for (size_t i = 0; i < sizeof k_ucats / sizeof k_ucats[0]; i++) {
        if (strstr(re, k_ucats[i].name))
            return 1;
    }
    return 0;
}

/* \p{X} at re[i] -> its class items, or NULL. */
static const ucat *ucat_at(const char *re, size_t i) {
    for (size_t k = 0; k < sizeof k_ucats / sizeof k_ucats[0]; k++) {
        size_t n = strlen(k_ucats[k].name);
        if (!strncmp(re + i, k_ucats[k].name, n))
            return &k_ucats[k];
    }
    return NULL;
}

/* llama.cpp's regex_expr_collapsed, as a PCRE2 byte-mode pattern: \p{X}
 * becomes [items] outside a class and items inside one. Like llama.cpp it
 * refuses non-ASCII characters next to categories. */
static char *collapse_regex(const char *re, m40_err *err) {
    strbuf b = {0};
    int in_class = 0, rc = 0;
    for (size_t i = 0; re[i] && rc == 0; i++) {
        const ucat *c = re[i] == '\\' ? ucat_at(re, i) : NULL;
        if ((unsigned char)re[i] >= 0x80) {
            m40_errf(err, "pre-tokenizer regex mixes Unicode categories and non-ASCII characters");
            free(b.p);
            return NULL;
        }
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
            in_class = 1;
            rc = sb_add(&b, "[", 1);
        } else if (in_class && re[i] == ']' && re[i - 1] != '\\') {
            in_class = 0;
            rc = sb_add(&b, "]", 1);
        } else if (c) {
            rc = sb_adds(&b, in_class ? "" : "[");
            rc |= sb_adds(&b, c->items);
            rc |= sb_adds(&b, in_class ? "" : "]");
            i += strlen(c->name) - 1;
        } else if (re[i] == '\\' && re[i + 1] == 'p') {
            m40_errf(err, "pre-tokenizer regex uses a Unicode property llama.cpp cannot collapse");
            free(b.p);
            return NULL;
        } else {
            rc = sb_add(&b, re + i, 1);
        }
    }
    if (rc) {
        free(b.p);
        m40_errf(err, "pre-tokenizer regex: out of memory");
        return NULL;
    }
    return b.p;
}

/* --- compiled pre-tokenizer -------------------------------------------- */

void m40_pretok_free(m40_pretok *pt) {
    if (!pt)
        return;
    for (size_t i = 0; i < pt->n; i++)
        pcre2_code_free(pt->re[i].code);
    free(pt);
}

static int compile_pcre(compiled_re *out, const char *re, m40_err *err) {
    m40_err_clear(err);
    int collapsed = uses_categories(re);
    char *pat = collapsed ? collapse_regex(re, err) : rewrite_regex(re, err);
    if (!pat)
        return -1;
    int code;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_DOLLAR_ENDONLY | (collapsed ? 0 : PCRE2_UTF | PCRE2_UCP);
    out->kind = collapsed ? RE_PCRE_COLLAPSED : RE_PCRE_UTF;
    out->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
    free(pat);
    if (!out->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return m40_errf(err, "pre-tokenizer regex does not compile at %zu: %s", (size_t)off,
                        (const char *)msg);
    }
    /* JIT is an optimisation: without it PCRE2 interprets, same results. */
    (void)pcre2_jit_compile(out->code, PCRE2_JIT_COMPLETE);
    return 0;
}

m40_pretok *m40_pretok_create(const char *name, m40_err *err) {
    const pretok_def *d = find_def(name);
    if (!d) {
        m40_errf(err, "unknown or unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)", name);
        return NULL;
    }
    m40_pretok *pt = calloc(1, sizeof *pt);
    if (!pt) {
        m40_errf(err, "pre-tokenizer: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < PT_MAX_REGEX && d->regex[i]; i++) {
        const char *re = d->regex[i];
        compiled_re *c = &pt->re[pt->n];
        if (!strcmp(re, RE_GPT2)) {
            c->kind = RE_CUSTOM_GPT2;
        } else if (!strcmp(re, RE_LLAMA3) || !strcmp(re, RE_LLAMA3_I)) {
            c->kind = RE_CUSTOM_LLAMA3;
        } else if (compile_pcre(c, re, err)) {
            m40_err_wrap(err, "pre-tokenizer '%s' regex %zu", name ? name : "default", i);
            m40_pretok_free(pt);
            return NULL;
        }
        pt->need_flags |= c->kind != RE_PCRE_UTF;
        pt->need_coll |= c->kind == RE_PCRE_COLLAPSED;
        pt->need_subject |= c->kind == RE_PCRE_UTF;
        pt->n++;
    }
    return pt;
}
