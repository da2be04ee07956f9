/* test_grammar.c - GBNF grammars and constrained sampling (grammar.h),
 * against the rules docs/grammar.md states. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grammar/grammar.h"

static m40_grammar *compile(const char *text) {
    m40_grammar *g = NULL;
    m40_err err = {0};
    if (m40_grammar_parse(text, strlen(text), &g, &err)) {
        fprintf(stderr, "unexpected grammar error: %s\n", err.msg);
        return NULL;
    }
    return g;
}

/* The error a grammar gets, "" if it compiles. */
static const char *error_of(const char *text) {
    static m40_err err;
    memset(&err, 0, sizeof err);
    m40_grammar *g = NULL;
    if (m40_grammar_parse(text, strlen(text), &g, &err) == 0) {
        m40_grammar_free(g);
        return "";
    }
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    return err.msg;
}

/* 2: `text` is a whole sentence; 1: only a prefix of one; 0: neither. */
static int judge(const char *grammar, const char *text) {
    m40_grammar *g = compile(grammar);
    if (!g)
        return -1;
    m40_grammar_state *s = NULL;
    m40_err err = {0};
    int r = -1;
    if (m40_grammar_state_create(g, &s, &err) == 0) {
        if (m40_grammar_state_accept(s, text, strlen(text), &err))
            r = 0;
        else
            r = m40_grammar_state_complete(s) ? 2 : 1;
    }
    m40_grammar_state_free(s);
    m40_grammar_free(g);
    return r;
}

static void test_syntax_errors(void) {
    CHECK_CONTAINS(error_of("root ::= foo"), "rule 'foo' is used but not defined");
    CHECK_CONTAINS(error_of("item ::= \"a\""), "no 'root' rule");
    CHECK_CONTAINS(error_of("root ::= \"a\"\nroot ::= \"b\""),
                   "line 2: rule 'root' is defined twice");
    CHECK_CONTAINS(error_of("root ::= \"abc"), "unterminated string literal");
    CHECK_CONTAINS(error_of("root ::= [a-"), "unterminated character class");
    CHECK_CONTAINS(error_of("root ::= [z-a]"), "runs backwards");
    CHECK_CONTAINS(error_of("root ::= \"\\q\""), "unknown escape");
    CHECK_CONTAINS(error_of("root ::= \"\\x4\""), "needs 2 hex digits");
    CHECK_CONTAINS(error_of("root ::= ( \"a\""), "expected ')'");
    CHECK_CONTAINS(error_of("root = \"a\""), "expected '::=' after 'root'");
    CHECK_CONTAINS(error_of("root ::= * \"a\""), "needs something before it");
    CHECK_CONTAINS(error_of("root ::= \"a\"{3,1}"), "below the minimum");
    CHECK_CONTAINS(error_of("root ::= \"a\"{100000}"), "repetition count above");
    CHECK_CONTAINS(error_of("\n\nroot ::= \"a\" )"), "line 3: unexpected ')'");
    /* a rule that reaches itself before a character would expand forever */
    CHECK_CONTAINS(error_of("root ::= root \"a\" | \"b\""), "rule 'root' is left-recursive");
    CHECK_CONTAINS(error_of("root ::= x\nx ::= y? root\ny ::= \"a\""), "left-recursive");
    CHECK_CONTAINS(error_of("root ::= (\"\")*"), "left-recursive");
    CHECK_CONTAINS(error_of("root ::= \"\\xff\xff\""), "invalid UTF-8");
    /* strict UTF-8, as the matcher reads text: no overlongs, no surrogates */
    CHECK_CONTAINS(error_of("root ::= \"\xC1\x81\""), "invalid UTF-8");
    CHECK_CONTAINS(error_of("root ::= [\xED\xA0\x80]"), "invalid UTF-8");
    /* right recursion is fine */
    CHECK(!strcmp(error_of("root ::= \"a\" root | \"b\""), ""));
}

static void test_elements(void) {
    CHECK(judge("root ::= \"abc\"", "abc") == 2);
    CHECK(judge("root ::= \"abc\"", "ab") == 1);
    CHECK(judge("root ::= \"abc\"", "abd") == 0);
    CHECK(judge("root ::= \"abc\"", "abcd") == 0);
    CHECK(judge("root ::= [a-c] [0-9]", "b7") == 2);
    CHECK(judge("root ::= [a-c] [0-9]", "d7") == 0);
    CHECK(judge("root ::= [^\"\\\\]", "x") == 2);
    CHECK(judge("root ::= [^\"\\\\]", "\"") == 0);
    CHECK(judge("root ::= [^\"\\\\]", "\\") == 0);
    CHECK(judge("root ::= . .", "a\xc3\xa9") == 2); /* any characters, é too */
    CHECK(judge("root ::= \"x\" | \"y\" | \"zz\"", "zz") == 2);
    CHECK(judge("root ::= \"x\" | \"y\" | \"zz\"", "z") == 1);
    CHECK(judge("root ::= ( \"a\" | \"b\" ) \"c\"", "bc") == 2);
    CHECK(judge("root ::= item item\nitem ::= \"ab\"", "abab") == 2);
    /* escapes: \n \t \xHH \uHHHH \UHHHHHHHH and quoted quotes */
    CHECK(judge("root ::= \"\\n\\t\\x41\\u00e9\\U0001F600\\\"\"",
                "\n\tA\xc3\xa9\xf0\x9f\x98\x80\"") == 2);
    /* a comment, a group over several lines, `|` then a line break */
    CHECK(judge("# numbers\nroot ::= (\n  \"1\"\n  | \"2\" # two\n) x\nx ::= \"a\" |\n  \"b\"",
                "2b") == 2);
    /* an empty alternative */
    CHECK(judge("root ::= \"a\" | ", "") == 2);
}

static void test_repetition(void) {
    const char *star = "root ::= \"a\"* \"b\"";
    CHECK(judge(star, "b") == 2);
    CHECK(judge(star, "aaab") == 2);
    CHECK(judge(star, "aaa") == 1);
    CHECK(judge("root ::= \"a\"+", "") == 1);
    CHECK(judge("root ::= \"a\"+", "aaa") == 2);
    CHECK(judge("root ::= \"a\"? \"b\"", "ab") == 2);
    CHECK(judge("root ::= \"a\"? \"b\"", "aab") == 0);
    CHECK(judge("root ::= \"ab\"*", "abab") == 2); /* a literal repeats whole */
    CHECK(judge("root ::= \"ab\"*", "aba") == 1);
    CHECK(judge("root ::= [0-9]{3}", "123") == 2);
    CHECK(judge("root ::= [0-9]{3}", "1234") == 0);
    CHECK(judge("root ::= [0-9]{2,}", "1") == 1);
    CHECK(judge("root ::= [0-9]{2,}", "12345") == 2);
    CHECK(judge("root ::= [0-9]{1,3} \"x\"", "123x") == 2);
    CHECK(judge("root ::= [0-9]{1,3} \"x\"", "1234") == 0);
    CHECK(judge("root ::= [0-9]{0,2}", "") == 2);
    CHECK(judge("root ::= ( \"a\" \"b\" ){2}", "abab") == 2);
    /* right recursion 20000 deep: tail calls keep the stacks flat */
    char *deep = malloc(20002);
    memset(deep, 'a', 20000);
    deep[20000] = 'b', deep[20001] = '\0';
    CHECK(judge("root ::= \"a\" root | \"b\"", deep) == 2);
    free(deep);
}

/* An ambiguous grammar: several stacks at once. */
static void test_ambiguity(void) {
    const char *g = "root ::= x | y\nx ::= \"ab\" \"c\"*\ny ::= \"a\" [a-z]+ \"!\"";
    CHECK(judge(g, "ab") == 2);    /* x */
    CHECK(judge(g, "abccc") == 2); /* x */
    CHECK(judge(g, "abc!") == 2);  /* y */
    CHECK(judge(g, "abz") == 1);   /* y, unfinished */
}

/* A character may be cut between two pieces of text (two tokens). */
static void test_utf8_across_pieces(void) {
    m40_grammar *g = compile("root ::= [\\u00e0-\\u00ff] \"!\"");
    m40_grammar_state *s = NULL;
    m40_err err = {0};
    CHECK(m40_grammar_state_create(g, &s, &err) == 0);
    CHECK(m40_grammar_state_accept(s, "\xc3", 1, &err) == 0); /* é's first byte */
    CHECK(!m40_grammar_state_complete(s));
    CHECK(m40_grammar_state_can_continue(s));
    CHECK(m40_grammar_state_accept(s, "\xa9!", 2, &err) == 0);
    CHECK(m40_grammar_state_complete(s));
    CHECK(!m40_grammar_state_can_continue(s));
    m40_grammar_state_free(s);
    /* a lead byte no character of the class starts with is refused at once */
    CHECK(m40_grammar_state_create(g, &s, &err) == 0);
    CHECK(m40_grammar_state_accept(s, "\xe2", 1, &err) != 0);
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    CHECK(m40_grammar_state_accept(s, "\xc3\xa0!", 3, &err) == 0); /* unchanged by the refusal */
    CHECK(m40_grammar_state_complete(s));
    m40_grammar_state_free(s);
    m40_grammar_free(g);
    /* only UTF-8: no overlong forms (E0 81 9B would be '['), no surrogates,
     * nothing past U+10FFFF */
    CHECK(judge("root ::= \"[\"", "\xe0\x81\x9b") == 0);
    CHECK(judge("root ::= \"[\"", "\xc1\x9b") == 0);
    CHECK(judge("root ::= .", "\xed\xa0\x80") == 0);
    CHECK(judge("root ::= .", "\xf4\x90\x80\x80") == 0);
    CHECK(judge("root ::= .", "\xf4\x8f\xbf\xbf") == 2); /* U+10FFFF */
}

/* The mask: exactly the tokens whose bytes can continue the text. */
static void test_mask(void) {
    const char *pieces[] = {"{",  "}",   "\"", "a",  "ab",   "\"a",      "1",
                            "12", "x\"", "",   NULL, "\xc3", "\xc3\xa9", "\xa9"};
    enum { N = sizeof pieces / sizeof pieces[0] };
    size_t lens[N];
    for (int i = 0; i < N; i++)
        lens[i] = pieces[i] ? strlen(pieces[i]) : 0;
    m40_grammar_vocab *v = NULL;
    m40_err err = {0};
    CHECK(m40_grammar_vocab_create(pieces, lens, N, &v, &err) == 0);
    CHECK(m40_grammar_vocab_n_tokens(v) == N);
    m40_grammar *g = compile("root ::= \"{\" ( \"\\\"\" [^\"]* \"\\\"\" )? \"}\"");
    m40_grammar_state *s = NULL;
    CHECK(m40_grammar_state_create(g, &s, &err) == 0);
    uint8_t allowed[N];
    int32_t n = 0;
    CHECK(m40_grammar_state_mask(s, v, allowed, &n, &err) == 0);
    CHECK(n == 1 && allowed[0]); /* only "{" */
    CHECK(m40_grammar_state_accept(s, "{", 1, &err) == 0);
    CHECK(m40_grammar_state_mask(s, v, allowed, &n, &err) == 0);
    CHECK(n == 3 && allowed[1] && allowed[2] && allowed[5]); /* } " "a */
    CHECK(m40_grammar_state_accept(s, "\"", 1, &err) == 0);
    CHECK(m40_grammar_state_mask(s, v, allowed, &n, &err) == 0);
    /* inside the string: all but "{" "}" ... no: [^"] takes { and } too */
    CHECK(allowed[0] && allowed[1] && allowed[3] && allowed[4] && allowed[6] && allowed[7]);
    CHECK(allowed[2] && allowed[8]);    /* the closing quote, x" */
    CHECK(!allowed[5]);                 /* "a would need a second closing quote first */
    CHECK(!allowed[9] && !allowed[10]); /* empty and NULL pieces never */
    CHECK(allowed[11] && allowed[12]);  /* é's first byte alone, and é */
    CHECK(!allowed[13]);                /* a continuation byte cannot start a character */
    CHECK(m40_grammar_state_accept(s, "\xc3", 1, &err) == 0);
    CHECK(m40_grammar_state_mask(s, v, allowed, &n, &err) == 0);
    CHECK(n == 1 && allowed[13]); /* only é's second byte */
    m40_grammar_state_free(s);
    m40_grammar_free(g);
    m40_grammar_vocab_free(v);
}

/* The mask agrees with accepting each token's bytes one by one, for every
 * token at every step of a text, on a vocabulary of all 1- and 2-byte
 * strings over a small alphabet. */
static void test_mask_agrees_with_accept(void) {
    const char alpha[] = "{}[]\":,ab01- \\";
    enum { A = sizeof alpha - 1, N = A + A * A };
    char store[N][3];
    const char *pieces[N];
    size_t lens[N];
    for (int i = 0; i < A; i++) {
        store[i][0] = alpha[i], store[i][1] = '\0';
        pieces[i] = store[i], lens[i] = 1;
    }
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
            int t = A + i * A + j;
            store[t][0] = alpha[i], store[t][1] = alpha[j], store[t][2] = '\0';
            pieces[t] = store[t], lens[t] = 2;
        }
    m40_grammar_vocab *v = NULL;
    m40_err err = {0};
    CHECK(m40_grammar_vocab_create(pieces, lens, N, &v, &err) == 0);
    const char *json = "root ::= value\n"
                       "value ::= obj | arr | str | num\n"
                       "obj ::= \"{\" ( str \":\" value ( \",\" str \":\" value )* )? \"}\"\n"
                       "arr ::= \"[\" ( value ( \",\" value )* )? \"]\"\n"
                       "str ::= \"\\\"\" ( [^\"\\\\] | \"\\\\\" [\"\\\\] )* \"\\\"\"\n"
                       "num ::= \"-\"? [0-9]+\n";
    m40_grammar *g = compile(json);
    const char *text = "{\"a\\\"b\":[1,-20,{}],\"\":\"x\"}";
    m40_grammar_state *s = NULL;
    CHECK(m40_grammar_state_create(g, &s, &err) == 0);
    int disagree = 0;
    for (size_t at = 0; at <= strlen(text); at++) {
        uint8_t allowed[N];
        int32_t n;
        CHECK(m40_grammar_state_mask(s, v, allowed, &n, &err) == 0);
        for (int t = 0; t < N; t++) {
            m40_grammar_state *probe = NULL;
            CHECK(m40_grammar_state_create(g, &probe, &err) == 0);
            int ok = m40_grammar_state_accept(probe, text, at, &err) == 0 &&
                     m40_grammar_state_accept(probe, pieces[t], lens[t], &err) == 0;
            disagree += ok != allowed[t];
            m40_grammar_state_free(probe);
        }
        if (at < strlen(text))
            CHECK(m40_grammar_state_accept(s, text + at, 1, &err) == 0);
    }
    CHECK(disagree == 0);
    CHECK(m40_grammar_state_complete(s));
    m40_grammar_state_free(s);
    m40_grammar_free(g);
    m40_grammar_vocab_free(v);
}

int main(void) {
    test_syntax_errors();
    test_elements();
    test_repetition();
    test_ambiguity();
    test_utf8_across_pieces();
    test_mask();
    test_mask_agrees_with_accept();
    return check_report();
}
