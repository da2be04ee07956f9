#!/usr/bin/env python3
"""make_chat_fixtures.py - expected chat-template renders from Python jinja2.

Renders every template in tests/fixtures/chat/templates/*.jinja (real
models' templates, committed; the default model's own is extracted from its
GGUF with the `gguf` package and written there first), over the
conversations below, exactly as Hugging Face transformers renders chat
templates:

    ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                  extensions=[loopcontrols])
    filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=indent,
                                    separators=separators, sort_keys=sort_keys)
    globals["raise_exception"], globals["strftime_now"]
    render(messages=..., tools=None|..., documents=None,
           add_generation_prompt=..., **special_tokens, **kwargs)

strftime_now uses a fixed clock (FIXED_NOW, 2024-07-26 12:00:00 UTC) so the
output is deterministic; the C tests pass the same instant through
m40_chat_options.fixed_now.

It also renders a list of small feature templates (expressions, filters,
whitespace control, errors) so the C interpreter is checked against jinja2
itself, not against hand-written expectations.

Usage (from the repository root):
    python3 -m venv /tmp/chat-venv
    /tmp/chat-venv/bin/pip install -r scripts/reference/requirements-chat.txt
    /tmp/chat-venv/bin/python scripts/reference/make_chat_fixtures.py \
        [--model models/...gguf]

Outputs (committed): tests/fixtures/chat/conversations.json,
tests/fixtures/chat/expected/<template>.json, tests/fixtures/chat/features.json,
tests/fixtures/chat/templates/SmolLM2-135M-Instruct.jinja.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
FIXED_NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)  # = 1721995200 s, UTC
PINNED_JINJA2 = "3.1.6"


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    class AssistantTracker(jinja2.ext.Extension):
        # transformers' {% generation %} tag; outside training it renders
        # its body unchanged
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            call = self.call_method("_generation_support")
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _generation_support(self, caller):
            return caller()

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[AssistantTracker, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()


def render(source, messages, add_generation_prompt, variables):
    """Returns {"expected": text} or {"error": message, "error_type": name}."""
    kwargs = {"tools": None, "documents": None}
    kwargs.update(variables)
    try:
        tmpl = ENV.from_string(source)
        text = tmpl.render(
            messages=messages, add_generation_prompt=add_generation_prompt, **kwargs
        )
        return {"expected": text}
    except Exception as e:  # the C side must fail the same way
        return {"error": str(e), "error_type": type(e).__name__}


# ---- conversations ---------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "threshold": {"type": "number", "default": 0.5},
            },
            "required": ["city"],
        },
        "return": {"type": "string"},
    },
}

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Heure locale — «ünïcödé» & <tags>",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}

CALL = {
    "id": "call12345",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}},
}
CALL2 = {
    "id": "call67890",
    "type": "function",
    "function": {"name": "get_time", "arguments": {}},
}

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello!"}
A1 = {"role": "assistant", "content": "Hi! How can I help you today?"}
U2 = {"role": "user", "content": "What's the weather in Paris?"}

CONVERSATIONS = {
    "user_only": {"messages": [U1]},
    "system_user": {"messages": [SYS, U1]},
    "multi_turn": {"messages": [U1, A1, U2]},
    "system_multi_turn": {"messages": [SYS, U1, A1, U2]},
    "assistant_last": {"messages": [SYS, U1, A1]},
    "whitespace_and_unicode": {
        "messages": [
            {"role": "system", "content": "  Be brief.\n\n /no_think "},
            {"role": "user", "content": "  Ça va? 日本語 🙂 \"quotes\" 'single' \\ back\n"},
            {"role": "assistant", "content": "\n\nTrès bien.  "},
            {"role": "user", "content": "Tab\there, <b>tags</b> & {braces} {{ not jinja }}"},
        ]
    },
    "tools_available": {"messages": [SYS, U2], "vars": {"tools": [WEATHER_TOOL, TIME_TOOL]}},
    "tool_call_round_trip": {
        "messages": [
            SYS,
            U2,
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {
                "role": "tool",
                "tool_call_id": "call12345",
                "name": "get_weather",
                "content": "{\"temperature\": 21, \"sky\": \"clear\"}",
            },
            {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
        ],
        "vars": {"tools": [WEATHER_TOOL]},
    },
    "tool_call_pending": {
        "messages": [
            U2,
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {
                "role": "tool",
                "tool_call_id": "call12345",
                "content": {"temperature": 21, "sky": "clear"},
            },
        ],
        "vars": {"tools": [WEATHER_TOOL]},
    },
    "two_tool_calls": {
        "messages": [
            U2,
            {"role": "assistant", "content": "", "tool_calls": [CALL, CALL2]},
            {"role": "tool", "tool_call_id": "call12345", "content": "21 C"},
            {"role": "tool", "tool_call_id": "call67890", "content": "12:00"},
        ],
        "vars": {"tools": [WEATHER_TOOL, TIME_TOOL]},
    },
    "bad_tool_call_id": {
        "messages": [
            U2,
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [dict(CALL, id="short")],
            },
        ],
        "vars": {"tools": [WEATHER_TOOL]},
    },
    "roles_not_alternating": {"messages": [U1, U2]},
    "starts_with_assistant": {"messages": [A1, U2]},
    "system_only": {"messages": [SYS]},
    "no_messages": {"messages": []},
    "content_parts": {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Describe"},
                                         {"type": "image"}, {"type": "text", "text": " this."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        ]
    },
    "custom_vars": {
        "messages": [SYS, U1],
        "vars": {"date_string": "01 Jan 2025", "enable_thinking": False, "tools_in_user_message": False,
                 "tools": [TIME_TOOL]},
    },
}

# Special tokens as each model's tokenizer defines them (transformers passes
# them to the template).
SPECIAL_TOKENS = {
    "HuggingFaceTB-SmolLM3-3B": {"bos_token": "", "eos_token": "<|im_end|>"},
    "Qwen-Qwen2.5-7B-Instruct": {"bos_token": "", "eos_token": "<|im_end|>"},
    "google-gemma-2-2b-it": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "meta-llama-Llama-3.1-8B-Instruct": {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
    },
    "microsoft-Phi-3.5-mini-instruct": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "mistralai-Mistral-Nemo-Instruct-2407": {"bos_token": "<s>", "eos_token": "</s>"},
    "SmolLM2-135M-Instruct": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
}


# ---- feature templates -----------------------------------------------------

# (name, template, variables). Each renders through jinja2; the C test
# expects the same text or an error containing the same message.
FEATURES = [
    ("literals", "{{ 1 }}|{{ 1.0 }}|{{ 1.5e3 }}|{{ 1_000 }}|{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 'a' 'b' }}|{{ true }}|{{ none }}|{{ None }}|{{ False }}", {}),
    ("float_repr", "{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 1e-5 }}|{{ 0.0001 }}|{{ -0.0 }}|{{ 123456789.125 }}|{{ 1/3 }}|{{ 2.5e-10 }}|{{ 1e22 }}", {}),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 3 * 'ab' }} {{ [1] * 3 }} {{ true + 1 }} {{ 1 - 2.5 }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 1 ~ 2 ~ 3 * 2 }} {{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' if 0 else 'b' if 0 else 'c' }}", {}),
    ("strings_repr", "{{ ['a', \"b'c\", 'd\"e', 'f\\'g\"', 'tab\\there', 'nl\\n', 'é', '\\x07'] }}|{{ {'k': [1, 2.0, none, true]} }}|{{ ('x',) }}|{{ (1, 2) }}", {}),
    ("escapes", "{{ 'a\\nb\\tc\\\\d\\'e' }}|{{ \"\\u00e9\\x41\\101\" }}|{{ 'back\\qslash' }}", {}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ undefined_var ~ [1] }}", {}),
    ("compare", "{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 'ab' in 'xaby' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ none == none }} {{ (1, 2) == [1, 2] }}", {}),
    ("and_or_values", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' and 'z' }} {{ none or none }} {{ [] or {} }}", {}),
    ("slicing", "{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ 'hello'[-3:] }}|{{ [1,2,3,4,5][::2] }}|{{ [1,2,3][5:] }}|{{ 'héllo'[1:2] }}|{{ xs[-1] }}|{{ xs[10] }}|{{ 'abc'[-1] }}|{{ xs[1:-1] }}|{{ xs[::-2] }}", {"xs": [1, 2, 3, 4]}),
    ("getattr_getitem", "{{ d.a }}|{{ d['a'] }}|{{ d.items is callable }}|{{ d['items'] }}|{{ d.missing }}|{{ d.missing is defined }}|{{ xs.0 }}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') }}", {"d": {"a": 1, "items": "key"}, "xs": [9]}),
    ("undefined_ops", "[{{ nope }}]|{{ nope is defined }}|{{ nope | default('d') }}|{{ nope | length }}|{% for x in nope %}x{% else %}empty{% endfor %}|{{ nope | list }}|{{ not nope }}|{{ nope == nope }}", {}),
    ("undefined_attr_error", "{{ nope.attr }}", {}),
    ("undefined_call_error", "{{ nope() }}", {}),
    ("undefined_add_error", "{{ nope + 1 }}", {}),
    ("missing_key_chain_error", "{{ d.a.b }}", {"d": {}}),
    ("type_errors", "{{ 'a' + 1 }}", {}),
    ("type_errors2", "{{ 1 + 'a' }}", {}),
    ("type_errors3", "{{ [1] < 'a' }}", {}),
    ("zero_div", "{{ 1 // 0 }}", {}),
    ("if_elif_else", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}other{% endif %},{% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('x', 'y') }};{% endfor %}", {}),
    ("for_filter_clause", "{% for x in range(10) if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}", {}),
    ("for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_else_and_dict", "{% for k in {} %}x{% else %}none{% endfor %}|{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}", {}),
    ("loop_scoping", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}|{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in range(5) %}{% set ns.count = ns.count + i %}{% if i == 3 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns.missing }}|{% set ns2 = namespace({'a': 1}, b=2) %}{{ ns2.a }}{{ ns2.b }}", {}),
    ("namespace_error", "{% set d = {} %}{% set d.a = 1 %}", {}),
    ("nested_loops_break_continue", "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{% for j in range(3) %}{% if j > i %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}", {}),
    ("outer_loop", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in [3] %}{{ outer.index }}{{ loop.index }}{% endfor %}{% endfor %}", {}),
    ("recursive_loop", "{% for item in tree recursive %}[{{ item.name }}{% if item.children %}:{{ loop(item.children) }}{% endif %}@{{ loop.depth }}]{% endfor %}", {"tree": [{"name": "a", "children": [{"name": "b", "children": []}, {"name": "c"}]}, {"name": "d"}]}),
    ("macros", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }}|{{ greet('Bob', 'Hi') }}|{{ greet('Cy', punct='?') }}|{{ greet(name='Di', greeting='Yo') }}|{{ greet }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("macro_too_many_args", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(10) }}", {}),
    ("macro_scope", "{% set g = 1 %}{% macro m() %}{{ g }}{% set g = 9 %}{{ g }}{% endmacro %}{{ m() }}{% set g = 2 %}{{ m() }}{{ g }}", {}),
    ("macro_missing_param", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", {}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %}|{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) each([1, 2]) %}<{{ v }}>{% endcall %}", {}),
    ("set_block", "{% set body %}  Hello {{ 'World' }}  {% endset %}[{{ body }}]{% set up | upper | trim %} shout {% endset %}[{{ up }}]", {}),
    ("filter_block", "{% filter upper %}abc {{ 'def' }}{% endfilter %}|{% filter replace('a', 'o') | title %}banana split{% endfilter %}", {}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("tuple_set", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", {}),
    ("string_methods", "{{ '  x y  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'Hello'.startswith('He') }}|{{ 'Hello'.endswith(('x', 'lo')) }}|{{ 'hello world'.title() }}|{{ \"they're bill's\".title() }}|{{ 'aBc'.upper() }}{{ 'aBc'.lower() }}|{{ 'abc'.replace('b', 'X') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}|{{ 'a-b'.join(['1', '2']) }}|{{ 'x'.center(5, '*') }}|{{ '42'.zfill(5) }}|{{ 'ab\\ncd'.splitlines() }}|{{ 'k=v'.partition('=') }}|{{ 'abc'.count('') }}|{{ 'v1'.removeprefix('v') }}", {}),
    ("string_format", "{{ '{} and {}'.format(1, 'two') }}|{{ '{0}{1}{0}'.format('a', 'b') }}|{{ '{name}!'.format(name='Z') }}|{{ '{:>5}|{:<4}|{:^5}'.format('r', 'l', 'c') }}|{{ '{{literal}}'.format() }}|{{ '%s is %d, %.2f %r %5s|%-4s|%03d %x %%' % ('a', 42, 3.14159, 'q', 'r', 'l', 7, 255) }}|{{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}|{{ '%s'|format('f') }}", {}),
    ("filters_text", "{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'hello WORLD-foo(bar)'|title }}|{{ 'hELLO world'|capitalize }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ 'aaa'|replace('a', 'bb') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 42|string }}|{{ 'a<b>&\"c\\''|e }}|{{ 'x'|center(7) }}|{{ 'one two three four'|wordcount }}|{{ 'Hello world, this is long'|truncate(12) }}|{{ 'Hello world, this is long'|truncate(12, true) }}|{{ 'ab'|reverse }}", {}),
    ("filter_indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x\\ny'|indent('> ') }}|{{ 'a\\r\\nb'|indent(1) }}", {}),
    ("filters_numbers", "{{ '42'|int }} {{ '42.7'|int }} {{ 'x'|int }} {{ 'x'|int(5) }} {{ '0x1A'|int(base=16) }} {{ ' 12 '|int }} {{ 3.9|int }} {{ '3.5'|float }} {{ 'nan'|float }} {{ 'x'|float }} {{ 3|float }} {{ -3|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 5|round }} {{ true|int }} {{ none|int }}", {}),
    ("filters_seq", "{{ xs|length }} {{ xs|count }} {{ xs|first }} {{ xs|last }} {{ xs|join('-') }} {{ xs|sum }} {{ xs|max }} {{ xs|min }} {{ xs|sort }} {{ xs|sort(reverse=true) }} {{ xs|unique|list }} {{ xs|reverse|list }} {{ xs|list }} {{ 'ab'|list }} {{ []|first }}|{{ xs|batch(2)|list }}|{{ {'b': 2, 'a': 1}|dictsort }}|{{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}", {"xs": [3, 1, 2, 3]}),
    ("filters_case_insensitive", "{{ ['b', 'A', 'a', 'B']|unique|list }} {{ ['b', 'A', 'a', 'B']|unique(case_sensitive=true)|list }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ ['b', 'A', 'c']|max }} {{ ['B', 'a']|min }}", {}),
    ("filters_attr", "{{ users|map(attribute='name')|join(', ') }}|{{ users|map(attribute='missing', default='?')|list }}|{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ users|rejectattr('admin')|map(attribute='name')|list }}|{{ users|selectattr('age', 'gt', 30)|list|length }}|{{ users|selectattr('name', 'equalto', 'bo')|first }}|{{ users|sort(attribute='age')|map(attribute='name')|list }}|{{ users|sort(attribute='admin,name')|map(attribute='name')|list }}|{{ users|sum(attribute='age') }}|{{ users|map(attribute='tags.0')|list }}|{{ users|join(',', attribute='name') }}|{{ users|max(attribute='age') }}", {"users": [{"name": "al", "age": 40, "admin": True, "tags": ["x"]}, {"name": "bo", "age": 25, "admin": False, "tags": ["y"]}, {"name": "cy", "age": 33, "admin": True, "tags": ["z"]}]}),
    ("filters_select_map", "{{ xs|select('odd')|list }}|{{ xs|reject('odd')|list }}|{{ xs|select|list }}|{{ xs|map('string')|join }}|{{ xs|map('int')|sum }}|{{ ['a', 'B']|map('upper')|list }}|{{ xs|select('in', [1, 2])|list }}|{{ xs|select('divisibleby', 2)|list }}|{{ ['x', '', 'y']|select|list }}|{{ xs|reject('equalto', 0)|list }}", {"xs": [0, 1, 2, 3]}),
    ("filter_default", "{{ none|default('d') }}|{{ none|default('d', true) }}|{{ ''|d('e', boolean=true) }}|{{ 0|default(5) }}|{{ missing|d }}|{{ missing|default(missing2)|default('z') }}", {}),
    ("filter_items_list", "{{ d|items|list }}|{{ d|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}", {"d": {"x": 1, "y": [2]}}),
    ("tojson", "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|tojson(indent=0) }}|{{ [d]|tojson(indent='\\t') }}|{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ 'é\\u2028\\x01</script>'|tojson }}|{{ 'é😀'|tojson(ensure_ascii=true) }}|{{ [1.0, 1e100, -0.0, none, true]|tojson }}|{{ {1: 2, true: 3, none: 4, 1.5: 5}|tojson }}|{{ []|tojson(indent=2) }}{{ {}|tojson(indent=2) }}|{{ 'x'|tojson(indent=4) }}", {"d": {"z": [1, 2.5, {"q": None}], "a": "x\"y", "n": {}}}),
    ("tojson_undefined_error", "{{ missing|tojson }}", {}),
    ("tests", "{{ 1 is odd }}{{ 2 is even }}{{ 6 is divisibleby 3 }}{{ none is none }}{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is sequence }}{{ 'a' is sequence }}{{ {} is iterable }}{{ 1 is iterable }}{{ x is undefined }}{{ x is defined }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 2 is in [1, 2] }}{{ 3 is gt 2 }}{{ 3 is lessthan 2 }}{{ 'x' is ne 'y' }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ none is callable }}{{ range is callable }}", {}),
    ("test_is_not", "{{ 1 is not none }}{{ x is not defined }}{{ not x is defined }}{{ 'a' is not string }}", {}),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true %}\n  d\n  {%- endif %}\ne {# comment #}  f\n  {#- trimmed comment -#}\n  g", {}),
    ("lstrip_trim_blocks", "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n    {%+ if true %}kept indent{% endif %}\n{% if true +%}\nkept newline{% endif %}\n", {}),
    ("lstrip_not_for_variables", "line\n    {{ 'var keeps indent' }}\n    {# comment lstripped #}\nend", {}),
    ("comment_then_newline", "{# a #}\nx{# b #}\n\ny\n{#- c -#}\n\nz", {}),
    ("raw_block", "{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%- raw -%}  spaced  {%- endraw -%}  |", {}),
    ("crlf_and_trailing_newline", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("dict_list_literals", "{{ {'a': 1, 'b': [1, 2], 'c': {'d': none}} }}|{{ [1, 'two', 3.0, [4]] }}|{{ {} }}|{{ [] }}|{{ () }}|{{ [1, 2,] }}", {}),
    ("generator_semantics", "{% if []|select %}Y{% else %}N{% endif %}|{% if not ([]|map('upper')) %}empty{% else %}gen{% endif %}|{{ (xs|select('odd')|list)[1] }}|{% if 5|map('string') %}lazy{% endif %}|{{ xs|select('odd') is sequence }}", {"xs": [1, 2, 3]}),
    ("generator_length_error", "{{ [1, 2]|select|length }}", {}),
    ("generator_deferred_error", "{% set g = 5|map('string') %}ok{{ g|list }}", {}),
    ("concat_binds_looser_than_plus", "{{ 1 ~ 2 + 3 }}", {}),
    ("print_tuple", "{{ 1, 'a' }}", {}),
    ("inline_if_no_else", "[{{ 'yes' if false }}]", {}),
    ("range", "{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ range(0)|list }}", {}),
    ("range_too_big", "{{ range(1000000)|list|length }}", {}),
    ("dict_global", "{{ dict(a=1, b=2) }}|{{ dict([('x', 1)]) }}", {}),
    ("strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %j %f %%') }}", {}),
    ("raise_exception", "{% if true %}{{ raise_exception('Custom error: ' ~ 42) }}{% endif %}", {}),
    ("raise_exception_line", "line one\nline two\n{{ raise_exception('on line three') }}", {}),
    ("sandbox_unsafe", "{{ xs.append(4) }}", {"xs": [1]}),
    ("sandbox_unsafe_dict", "{{ d.pop('a') }}", {"d": {"a": 1}}),
    ("unknown_filter_runtime_in_if", "{% if false %}{{ x|nosuchfilter }}{% endif %}ok", {}),
    ("unknown_filter_compile", "{{ x|nosuchfilter }}", {}),
    ("unknown_filter_in_loop", "{% if true %}{% for i in [1] %}{{ i|nosuchfilter }}{% endfor %}{% endif %}", {}),
    ("unknown_test", "{{ x is nosuchtest }}", {}),
    ("unknown_tag", "{% frobnicate %}", {}),
    ("unterminated_if", "{% if true %}never closed", {}),
    ("unterminated_for", "{% for x in y %}", {}),
    ("unterminated_variable", "{{ x ", {}),
    ("unterminated_comment", "{# never closed", {}),
    ("unterminated_string", "{{ 'abc }}", {}),
    ("bad_syntax", "{{ 1 + }}", {}),
    ("bad_syntax2", "{% set = 1 %}", {}),
    ("unbalanced", "{{ (1 }}", {}),
    ("endfor_mismatch", "{% if x %}{% endfor %}", {}),
    ("messages_like", "{% for m in messages %}{{ m.role }}:{{ m['content']|trim }}{% if m.tool_calls is defined %}[{{ m.tool_calls|length }}]{% endif %}\n{% endfor %}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}", {"messages": [{"role": "user", "content": " a "}, {"role": "assistant", "content": "b", "tool_calls": [{"x": 1}]}]}),
    ("json_numbers", "{{ n }} {{ f }} {{ n is integer }} {{ f is float }} {{ n / 2 }} {{ big }}", {"n": 3, "f": 2.5, "big": 1234567890123}),
    ("json_nested_tojson", "{{ tools[0]|tojson }}|{{ tools|tojson(indent=4) }}", {"tools": [WEATHER_TOOL]}),
    ("string_iter_unicode", "{% for ch in 'aé😀' %}[{{ ch }}]{% endfor %}{{ 'aé😀'|length }}{{ 'aé😀'[2] }}{{ 'ÀÉÎ'|lower }}{{ 'àéî'|upper }}", {}),
    ("mistral_like_ns", "{%- set ns = namespace(index=0) %}{%- for message in messages %}{%- if (message['role'] == 'user') != (ns.index % 2 == 0) %}{{- raise_exception('alternate!') }}{%- endif %}{%- set ns.index = ns.index + 1 %}{%- endfor %}ok", {"messages": [{"role": "user"}, {"role": "user"}]}),
    ("generation_tag", "{% for m in messages %}{% generation %}<{{ m }}>{% endgeneration %}{% endfor %}", {"messages": ["a", "b"]}),
    ("joiner", "{% set pipe = joiner('|') %}{% for x in [1, 2, 3] %}{{ pipe() }}{{ x }}{% endfor %}", {}),
    ("loop_changed", "{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {}),
    ("list_methods", "{{ xs.index(2) }}{{ xs.count(1) }}|{{ xs.copy() }}", {"xs": [1, 2, 1]}),
    ("keyword_names", "{% set in_ = 1 %}{{ in_ }}{% set items = 2 %}{{ items }}{% set loop_ = 3 %}{{ loop_ }}", {}),
    ("attr_filter", "{{ d|attr('a') }}|{{ d|attr('zz') }}|{{ 'abc'|attr('upper') is callable }}", {"d": {"a": 5}}),
]


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def template_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def extract_model_template(model_path):
    from gguf import GGUFReader

    reader = GGUFReader(model_path)
    field = reader.fields["tokenizer.chat_template"]
    return field.contents()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="the default model's GGUF (default: fetch it)")
    args = ap.parse_args()
    if jinja2.__version__ != PINNED_JINJA2:
        sys.exit(f"jinja2 {PINNED_JINJA2} is pinned, found {jinja2.__version__}")

    model = args.model or run(["bash", os.path.join(ROOT, "scripts", "get-default-model.sh")])
    os.makedirs(os.path.join(OUT, "templates"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    smol = extract_model_template(model)
    with open(os.path.join(OUT, "templates", "SmolLM2-135M-Instruct.jinja"), "w", encoding="utf-8", newline="") as f:
        f.write(smol)

    templates = []  # (name, source)
    tdir = os.path.join(OUT, "templates")
    for fn in sorted(os.listdir(tdir)):
        if fn.endswith(".jinja"):
            with open(os.path.join(tdir, fn), encoding="utf-8", newline="") as f:
                templates.append((template_name(fn), f.read()))

    write_json(os.path.join(OUT, "conversations.json"), CONVERSATIONS)
    for name, source in templates:
        cases = []
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (False, True):
                variables = dict(SPECIAL_TOKENS.get(name, {}))
                variables.update(conv.get("vars", {}))
                r = render(source, conv["messages"], agp, variables)
                cases.append(dict({"conversation": conv_name, "add_generation_prompt": agp,
                                   "special_tokens": SPECIAL_TOKENS.get(name, {})}, **r))
        write_json(os.path.join(OUT, "expected", name + ".json"),
                   {"template": name + ".jinja", "jinja2": jinja2.__version__,
                    "cases": cases})

    features = []
    for name, source, variables in FEATURES:
        variables = dict(variables)
        messages = variables.pop("messages", [])
        r = render(source, messages, False, variables)
        features.append(dict({"name": name, "template": source, "messages": messages,
                              "vars": variables}, **r))
    write_json(os.path.join(OUT, "features.json"),
               {"jinja2": jinja2.__version__, "fixed_now_utc": int(FIXED_NOW.replace(
                   tzinfo=datetime.timezone.utc).timestamp()), "features": features})
    print(f"wrote {len(templates)} templates x {len(CONVERSATIONS) * 2} renders, "
          f"{len(features)} features to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
