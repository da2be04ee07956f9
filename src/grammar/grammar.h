/* grammar.h - constrained sampling: a GBNF grammar, the state of a text
 * against it, and which tokens may come next (docs/grammar.md).
 *
 * A grammar is llama.cpp's GBNF: rules `name ::= alternatives`, literals
 * "...", character classes [a-z] [^"], `.`, groups ( ), repetition * + ?
 * {m} {m,} {m,n}, comments #; `root` is where a text starts. It is compiled
 * once (m40_grammar_parse) into rules of elements, immutable, so many
 * requests may share it.
 *
 * A state is one text's place in the grammar: the set of pushdown stacks
 * that the characters so far leave open (several at once where the grammar
 * is ambiguous), plus the start of a UTF-8 character a token may have cut.
 * The state interns stacks and stack sets and remembers each (set, byte)
 * transition, so a byte costs one hash lookup once seen.
 *
 * Which tokens may come next is a walk of the vocabulary's byte trie
 * (m40_grammar_vocab) against the state: a subtree is skipped as soon as
 * its prefix leaves no stack, so a step costs what the allowed tokens' trie
 * holds, not the whole vocabulary byte by byte.
 *
 * Owns: compiled grammars, tries and states. Touches: nothing of models,
 * tokenizers or sampling; the engine hands it the tokens' bytes.
 */
#ifndef M40_GRAMMAR_GRAMMAR_H
#define M40_GRAMMAR_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct m40_grammar m40_grammar;

/* Compiles GBNF text (len bytes). Errors (kind BAD_INPUT) name the line and
 * what is wrong: a syntax error, a rule used but not defined, no `root`, a
 * left-recursive rule (it could loop without reading a character), or a
 * grammar too large. */
int m40_grammar_parse(const char *text, size_t len, m40_grammar **out, m40_err *err);
void m40_grammar_free(m40_grammar *g);

/* The tokens' bytes as a trie. pieces[i] (lens[i] bytes) is what token i
 * writes; NULL or empty: a token no grammar allows (control tokens: the
 * engine allows end-of-generation tokens itself). */
typedef struct m40_grammar_vocab m40_grammar_vocab;
int m40_grammar_vocab_create(const char *const *pieces, const size_t *lens, int32_t n_tokens,
                             m40_grammar_vocab **out, m40_err *err);
void m40_grammar_vocab_free(m40_grammar_vocab *v);
int32_t m40_grammar_vocab_n_tokens(const m40_grammar_vocab *v);

/* A text's state against a grammar (one request's), at the start of root. */
typedef struct m40_grammar_state m40_grammar_state;
int m40_grammar_state_create(const m40_grammar *g, m40_grammar_state **out, m40_err *err);
void m40_grammar_state_free(m40_grammar_state *s);

/* Reads bytes; fails (BAD_INPUT) when they cannot continue the text, and
 * then leaves the state as it was. */
int m40_grammar_state_accept(m40_grammar_state *s, const char *bytes, size_t len, m40_err *err);

/* Whether the text so far is a whole sentence of the grammar (it may end
 * here), and whether any character may still follow. */
int m40_grammar_state_complete(const m40_grammar_state *s);
int m40_grammar_state_can_continue(const m40_grammar_state *s);

/* allowed[t] = 1 for every token t of v whose bytes can continue the text,
 * 0 for the others (allowed has m40_grammar_vocab_n_tokens(v) entries).
 * Sets *n_allowed. Fails only on memory or the state limit. */
int m40_grammar_state_mask(m40_grammar_state *s, const m40_grammar_vocab *v, uint8_t *allowed,
                           int32_t *n_allowed, m40_err *err);

#endif /* M40_GRAMMAR_GRAMMAR_H */
