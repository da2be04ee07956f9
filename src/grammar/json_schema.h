/* json_schema.h - JSON Schema to a GBNF grammar (structured outputs).
 *
 * The grammar matches JSON documents that validate against the schema:
 * objects with their properties in the schema's order (required ones
 * always, optional ones maybe), arrays with their item schemas and counts,
 * strings with their lengths, numbers, integers, booleans, null, enum,
 * const, anyOf / oneOf, type lists and $ref to "#/$defs/..." or
 * "#/definitions/..." (recursion allowed). A keyword the grammar cannot
 * enforce (pattern, minimum other than a non-negative integer's, ...) is
 * refused by name rather than ignored; annotations (title, description,
 * default, examples, format, $schema, ...) are ignored. docs/grammar.md
 * has the full list.
 *
 * Whitespace: none before the document, up to 32 blanks or line breaks
 * wherever JSON allows them inside it, none after it (so the text ends when
 * the document does).
 */
#ifndef M40_GRAMMAR_JSON_SCHEMA_H
#define M40_GRAMMAR_JSON_SCHEMA_H

#include "util/err.h"

struct cJSON;

/* The GBNF of documents valid against `schema` (a cJSON object or
 * boolean), NUL-terminated in *out (malloc'd). Errors are BAD_INPUT and
 * name the schema path: "json_schema: properties.age: unsupported keyword
 * 'multipleOf'". */
int m40_json_schema_to_gbnf(const struct cJSON *schema, char **out, m40_err *err);

/* The same with the document's rule named `rule` instead of root (a
 * grammar that embeds the document writes its own root; rule names of the
 * form NAME-sN and the primitives' names are taken). */
int m40_json_schema_to_gbnf_rule(const struct cJSON *schema, const char *rule, char **out,
                                 m40_err *err);

/* The GBNF of any JSON object (OpenAI's response_format json_object). */
const char *m40_json_object_gbnf(void);

#endif /* M40_GRAMMAR_JSON_SCHEMA_H */
