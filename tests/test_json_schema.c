/* test_json_schema.c - JSON Schema to GBNF (json_schema.h): for each
 * schema, documents that validate are whole sentences of its grammar and
 * documents that do not are not; what the converter cannot enforce is
 * refused by name. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"

static m40_grammar *grammar_of(const char *schema_json) {
    cJSON *s = cJSON_Parse(schema_json);
    CHECK(s != NULL);
    char *gbnf = NULL;
    m40_err err = {0};
    m40_grammar *g = NULL;
    if (m40_json_schema_to_gbnf(s, &gbnf, &err)) {
        fprintf(stderr, "schema %s: %s\n", schema_json, err.msg);
    } else if (m40_grammar_parse(gbnf, strlen(gbnf), &g, &err)) {
        fprintf(stderr, "schema %s gave a grammar that does not compile: %s\n%s\n", schema_json,
                err.msg, gbnf);
    }
    free(gbnf);
    cJSON_Delete(s);
    return g;
}

static int whole(const m40_grammar *g, const char *doc) {
    m40_grammar_state *st = NULL;
    m40_err err = {0};
    int ok = m40_grammar_state_create(g, &st, &err) == 0 &&
             m40_grammar_state_accept(st, doc, strlen(doc), &err) == 0 &&
             m40_grammar_state_complete(st);
    m40_grammar_state_free(st);
    return ok;
}

/* Every doc in `good` is accepted, every doc in `bad` is not. */
static void check_schema(const char *schema, const char *const *good, const char *const *bad) {
    m40_grammar *g = grammar_of(schema);
    CHECK(g != NULL);
    if (!g)
        return;
    for (; *good; good++) {
        int ok = whole(g, *good);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  schema %s refused %s\n", schema, *good);
    }
    for (; *bad; bad++) {
        int ok = whole(g, *bad);
        CHECK(!ok);
        if (ok)
            fprintf(stderr, "  schema %s accepted %s\n", schema, *bad);
    }
    m40_grammar_free(g);
}

#define DOCS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_primitives(void) {
    check_schema("{\"type\":\"string\"}",
                 DOCS("\"\"", "\"a b\"", "\"\\\"\\\\\\n\\u00e9\"", "\"é\""),
                 DOCS("a", "\"a", "\"a\" ", " \"a\"", "\"\n\""));
    check_schema("{\"type\":\"integer\"}", DOCS("0", "-12", "1234567890"),
                 DOCS("01", "1.5", "-", "+1", "1e3"));
    check_schema("{\"type\":\"integer\",\"minimum\":0}", DOCS("0", "7"), DOCS("-1"));
    check_schema("{\"type\":\"number\"}", DOCS("0", "-1.25", "3e10", "2.5E-3"),
                 DOCS(".5", "1.", "--1", "NaN"));
    check_schema("{\"type\":\"boolean\"}", DOCS("true", "false"), DOCS("True", "1"));
    check_schema("{\"type\":\"null\"}", DOCS("null"), DOCS("nil", ""));
    check_schema("{\"type\":[\"string\",\"null\"]}", DOCS("\"x\"", "null"), DOCS("1"));
    check_schema("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
                 DOCS("\"ab\"", "\"abc\"", "\"\\n\\t\""), DOCS("\"a\"", "\"abcd\""));
    check_schema("true", DOCS("{}", "[1,{\"a\":null}]", "\"s\"", "-0.5"), DOCS("{", "[1,]"));
    check_schema("{}", DOCS("{\"k\": [true, false]}"), DOCS("undefined"));
}

static void test_enum_const_combinations(void) {
    check_schema("{\"enum\":[\"red\",\"green\",3,null]}", DOCS("\"red\"", "\"green\"", "3", "null"),
                 DOCS("\"blue\"", "\"Red\"", "4"));
    check_schema("{\"const\":{\"a\":[1,2]}}", DOCS("{\"a\":[1,2]}"), DOCS("{\"a\":[1]}"));
    check_schema("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", DOCS("1", "\"1\""),
                 DOCS("true"));
    check_schema("{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":\"null\"}]}", DOCS("true", "null"),
                 DOCS("0"));
    check_schema("{\"allOf\":[{\"type\":\"boolean\"}]}", DOCS("false"), DOCS("0"));
}

static void test_objects(void) {
    const char *person = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                         "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\","
                         "\"items\":{\"type\":\"string\"}}},\"required\":[\"name\",\"age\"]}";
    check_schema(person,
                 DOCS("{\"name\":\"Ann\",\"age\":30}", "{ \"name\" : \"Ann\" , \"age\" : 30 }",
                      "{\n  \"name\": \"Ann\",\n  \"age\": 30,\n  \"tags\": [\"a\", \"b\"]\n}"),
                 DOCS("{\"age\":30,\"name\":\"Ann\"}", /* the schema's order */
                      "{\"name\":\"Ann\"}", "{\"name\":\"Ann\",\"age\":30,}",
                      "{\"name\":\"Ann\",\"age\":30,\"x\":1}",
                      "{\"name\":\"Ann\",\"age\":\"30\"}"));
    /* optional properties anywhere: the first written may be any of them */
    const char *opt = "{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"},"
                      "\"c\":{\"type\":\"integer\"}},\"required\":[\"c\"]}";
    check_schema(
        opt,
        DOCS("{\"c\":1}", "{\"a\":1,\"c\":3}", "{\"b\":2,\"c\":3}", "{\"a\":1,\"b\":2,\"c\":3}"),
        DOCS("{}", "{\"a\":1}", "{\"a\":1,\"b\":2}", "{,\"c\":1}"));
    check_schema("{\"type\":\"object\",\"properties\":{\"x\":{}}}", DOCS("{}", "{\"x\":[null]}"),
                 DOCS("{\"y\":1}"));
    check_schema("{\"type\":\"object\"}", DOCS("{}", "{\"any\":{\"thing\":1}}"), DOCS("[]"));
    check_schema("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
                 DOCS("{}", "{\"a\":1,\"b\":2}"), DOCS("{\"a\":\"1\"}"));
    check_schema("{\"type\":\"object\",\"additionalProperties\":false}", DOCS("{}", "{ }"),
                 DOCS("{\"a\":1}"));
    /* keys that need escaping in JSON */
    check_schema(
        "{\"properties\":{\"a \\\"q\\\"\":{\"type\":\"null\"}},\"required\":[\"a \\\"q\\\"\"]}",
        DOCS("{\"a \\\"q\\\"\":null}"), DOCS("{\"a \"q\"\":null}"));
}

static void test_arrays(void) {
    check_schema("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}",
                 DOCS("[]", "[1]", "[1, 2 ,3]", "[\n 1\n]"), DOCS("[1,]", "[,1]", "[\"1\"]"));
    check_schema(
        "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}",
        DOCS("[1,2]", "[1,2,3]"), DOCS("[]", "[1]", "[1,2,3,4]"));
    check_schema("{\"type\":\"array\",\"minItems\":1}", DOCS("[null]", "[1,\"a\"]"), DOCS("[]"));
    check_schema(
        "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],"
        "\"items\":false}",
        DOCS("[]", "[\"a\"]", "[\"a\",1]"), DOCS("[1]", "[\"a\",1,2]"));
    check_schema("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}],\"minItems\":1,"
                 "\"items\":{\"type\":\"boolean\"}}",
                 DOCS("[\"a\"]", "[\"a\",true,false]"), DOCS("[]", "[\"a\",1]"));
}

static void test_refs(void) {
    /* a recursive schema: a tree of named nodes */
    const char *tree =
        "{\"$ref\":\"#/$defs/node\",\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/"
        "node\"}}},\"required\":[\"name\"]}}}";
    check_schema(
        tree, DOCS("{\"name\":\"a\"}", "{\"name\":\"a\",\"kids\":[{\"name\":\"b\",\"kids\":[]}]}"),
        DOCS("{\"name\":\"a\",\"kids\":[{}]}"));
    check_schema("{\"definitions\":{\"n\":{\"type\":\"integer\"}},\"type\":\"array\",\"items\":{"
                 "\"$ref\":\"#/definitions/n\"}}",
                 DOCS("[1,2]"), DOCS("[true]"));
}

static const char *refusal(const char *schema_json) {
    static m40_err err;
    memset(&err, 0, sizeof err);
    cJSON *s = cJSON_Parse(schema_json);
    char *gbnf = NULL;
    int rc = m40_json_schema_to_gbnf(s, &gbnf, &err);
    cJSON_Delete(s);
    free(gbnf);
    if (rc == 0)
        return "";
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    return err.msg;
}

static void test_refusals(void) {
    CHECK_CONTAINS(refusal("{\"type\":\"string\",\"pattern\":\"^a\"}"),
                   "unsupported keyword 'pattern'");
    CHECK_CONTAINS(refusal("{\"properties\":{\"age\":{\"type\":\"integer\",\"multipleOf\":2}}}"),
                   "json_schema: .age: unsupported keyword 'multipleOf'");
    CHECK_CONTAINS(refusal("{\"type\":\"integer\",\"minimum\":5}"), "'minimum' other than 0");
    CHECK_CONTAINS(refusal("{\"type\":\"number\",\"minimum\":0}"), "integers only");
    CHECK_CONTAINS(refusal("{\"type\":\"martian\"}"), "unknown type 'martian'");
    CHECK_CONTAINS(refusal("{\"$ref\":\"http://x/y\"}"), "only '#'");
    CHECK_CONTAINS(refusal("{\"$ref\":\"#/$defs/none\"}"), "names no definition");
    CHECK_CONTAINS(refusal("{\"required\":[\"a\"],\"properties\":{}}"), "required property 'a'");
    CHECK_CONTAINS(refusal("{\"allOf\":[{},{}]}"), "'allOf' with more than one");
    CHECK_CONTAINS(refusal("{\"enum\":[]}"), "'enum' is empty");
    CHECK_CONTAINS(refusal("false"), "matches nothing");
    CHECK_CONTAINS(refusal("{\"type\":\"array\",\"maxItems\":1,\"minItems\":2}"), "below minItems");
    CHECK_CONTAINS(refusal("{\"type\":\"string\",\"maxLength\":5000}"), "above 1000");
    CHECK_CONTAINS(refusal("3"), "must be an object or a boolean");
    /* a schema nested past the limit */
    char deep[4096] = "";
    for (int i = 0; i < 80; i++)
        strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "{}");
    for (int i = 0; i < 80; i++)
        strcat(deep, "}");
    CHECK_CONTAINS(refusal(deep), "nested deeper than");
}

static void test_json_object(void) {
    const char *gbnf = m40_json_object_gbnf();
    m40_grammar *g = NULL;
    m40_err err = {0};
    CHECK(m40_grammar_parse(gbnf, strlen(gbnf), &g, &err) == 0);
    CHECK(whole(g, "{}"));
    CHECK(whole(g, "{\"a\": [1, 2.5, \"x\", true, null, {\"b\": {}}]}"));
    CHECK(!whole(g, "[]"));
    CHECK(!whole(g, "\"s\""));
    CHECK(!whole(g, "{} "));
    m40_grammar_free(g);
}

int main(void) {
    test_primitives();
    test_enum_const_combinations();
    test_objects();
    test_arrays();
    test_refs();
    test_refusals();
    test_json_object();
    return check_report();
}
