#!/usr/bin/env python3
"""test_structured.py BINARY MODEL - structured outputs on a real model.

The official `openai` client asks the server (MODEL on the CPU, the default
SmolLM2-135M-Instruct in CI) for 20 different JSON schemas, each with its
own prompt, streamed and not; every answer must parse and validate against
its schema (python `jsonschema`), and the streamed text must equal the
non-streamed one (same seed). The `ollama` client's `format` (a schema, and
"json") does the same through /api/chat. Then a tool-call round trip (the
default model's template has no tools: they reach it in a system message,
docs/tool-calls.md): a required call with valid JSON arguments, the tool's
result sent back, a final answer in text. Prints "N passed, M failed".
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report  # noqa: E402
import serveproc  # noqa: E402

BIN, MODEL = sys.argv[1], sys.argv[2]


S = {"type": "string", "maxLength": 40}
CASES = [
    ("Give a person named Ann, aged 31.",
     {"type": "object", "properties": {"name": S, "age": {"type": "integer"}},
      "required": ["name", "age"]}),
    ("Is the sky blue? Answer yes or no.",
     {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
      "required": ["answer"]}),
    ("List three colors.", {"type": "array", "items": S, "minItems": 3, "maxItems": 3}),
    ("What is 2 + 2?", {"type": "object", "properties": {"result": {"type": "integer"}},
                        "required": ["result"]}),
    ("Describe a city: name and population.",
     {"type": "object", "properties": {"city": S, "population": {"type": "integer",
                                                                  "minimum": 0}},
      "required": ["city", "population"]}),
    ("Give a temperature reading in Celsius.",
     {"type": "object", "properties": {"celsius": {"type": "number"}}, "required": ["celsius"]}),
    ("Is water wet?", {"type": "boolean"}),
    ("Name a fruit.", {"type": "string", "maxLength": 20}),
    ("Give a book with a title and an optional year.",
     {"type": "object", "properties": {"title": S, "year": {"type": "integer"}},
      "required": ["title"]}),
    ("Pick a size.", {"enum": ["small", "medium", "large"]}),
    ("Give a point with x and y coordinates.",
     {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
      "required": ["x", "y"], "additionalProperties": False}),
    ("Give a user with a list of up to two roles.",
     {"type": "object", "properties": {
         "user": S, "roles": {"type": "array", "items": {"enum": ["admin", "editor", "viewer"]},
                              "maxItems": 2}},
      "required": ["user", "roles"]}),
    ("Give an address.",
     {"type": "object", "properties": {"address": {
         "type": "object", "properties": {"street": S, "city": S},
         "required": ["street", "city"]}}, "required": ["address"]}),
    ("Give a value that may be missing.",
     {"type": "object", "properties": {"value": {"type": ["string", "null"], "maxLength": 20}},
      "required": ["value"]}),
    ("Give either a number or a word.",
     {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 12}]}),
    ("Give a pair: a name and a score.",
     {"type": "array", "prefixItems": [S, {"type": "integer"}], "items": False,
      "minItems": 2}),
    ("Give a product with a price and stock flag.",
     {"type": "object", "properties": {"product": S, "price": {"type": "number"},
                                       "in_stock": {"type": "boolean"}},
      "required": ["product", "price", "in_stock"]}),
    ("Give two people, each with a name.",
     {"$defs": {"person": {"type": "object", "properties": {"name": S}, "required": ["name"]}},
      "type": "object", "properties": {"first": {"$ref": "#/$defs/person"},
                                       "second": {"$ref": "#/$defs/person"}},
      "required": ["first", "second"]}),
    ("Say hello in JSON.",
     {"type": "object", "properties": {"greeting": {"const": "hello"}},
      "required": ["greeting"]}),
    ("Rate a movie from 1 to 5 with a comment.",
     {"type": "object", "properties": {"stars": {"enum": [1, 2, 3, 4, 5]}, "comment": S},
      "required": ["stars", "comment"]}),
]


def start():
    return serveproc.start(BIN, MODEL, "--parallel", "2", seconds=120)


def main():
    import jsonschema
    import ollama
    import openai
    proc, port = start()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused",
                               timeout=300, max_retries=0)
        for i, (prompt, schema) in enumerate(CASES):
            args = dict(model="m40", max_tokens=200, temperature=0.7, seed=100 + i,
                        messages=[{"role": "user", "content": prompt + " Answer in JSON."}],
                        response_format={"type": "json_schema",
                                         "json_schema": {"name": f"case{i}", "schema": schema}})
            r = client.chat.completions.create(**args)
            text = r.choices[0].message.content or ""
            streamed = "".join(c.choices[0].delta.content or ""
                               for c in client.chat.completions.create(stream=True, **args)
                               if c.choices)
            try:
                jsonschema.validate(json.loads(text), schema)
                ok = True
            except Exception as e:  # not JSON, or not valid against the schema
                ok = False
                print(f"case {i}: {e}", file=sys.stderr)
            check(ok and r.choices[0].finish_reason == "stop",
                  f"case {i} ({prompt!r}) validates: {text!r}")
            check(streamed == text, f"case {i} streamed equals non-streamed: {streamed!r}")
        oc = ollama.Client(host=f"http://127.0.0.1:{port}", timeout=300)
        schema = CASES[0][1]
        msgs = [{"role": "user", "content": "Give a person as JSON."}]
        ch = oc.chat(model="m", messages=msgs, format=schema, options={"seed": 1})
        try:
            jsonschema.validate(json.loads(ch.message.content), schema)
            ok = True
        except Exception:
            ok = False
        check(ok, f"ollama format=schema validates: {ch.message.content!r}")
        ch = oc.chat(model="m", messages=msgs, format="json", options={"seed": 1,
                                                                        "num_predict": 300})
        try:
            ok = isinstance(json.loads(ch.message.content), dict)
        except Exception:
            ok = False
        check(ok, f"ollama format=json gives an object: {ch.message.content!r}")
        tools = [{"type": "function", "function": {
            "name": "get_weather", "description": "The current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                                     "maxLength": 40}},
                           "required": ["city"]}}}]
        msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
        r = client.chat.completions.create(model="m40", messages=msgs, tools=tools,
                                           tool_choice="required", parallel_tool_calls=False,
                                           temperature=0, max_tokens=100)
        calls = r.choices[0].message.tool_calls or []
        args = {}
        try:
            args = json.loads(calls[0].function.arguments)
        except Exception:
            pass
        check(r.choices[0].finish_reason == "tool_calls" and len(calls) == 1 and
              calls[0].function.name == "get_weather" and isinstance(args.get("city"), str),
              f"the call: {r.choices[0].message!r}")
        if calls:
            msgs += [{"role": "assistant", "content": None,
                      "tool_calls": [calls[0].model_dump()]},
                     {"role": "tool", "tool_call_id": calls[0].id,
                      "content": json.dumps({"temperature_c": 18, "sky": "cloudy"})}]
            r = client.chat.completions.create(model="m40", messages=msgs, tools=tools,
                                               temperature=0, max_tokens=60)
            text = r.choices[0].message.content or ""
            print(f"tool round trip: {args!r} -> {text!r}")
            check(r.choices[0].finish_reason in ("stop", "length") and text.strip() and
                  not r.choices[0].message.tool_calls, f"the final answer: {r.choices[0]!r}")
    finally:
        serveproc.stop(proc)
    report()


if __name__ == "__main__":
    main()
