#!/usr/bin/env python3
"""test_server.py BINARY - `m40-llm serve` driven over HTTP, as a client would.

Writes a tiny synth model into a temp dir, starts the server on a free
loopback port (--port 0; the bound port is read from its stderr), and checks
every endpoint, the error replies, the API key, CORS, a full queue, a client
that leaves mid-stream and a graceful SIGTERM. Standard library only; every
network call has a timeout so a hang is a failure, not a stuck test.
Prints "N passed, M failed"; exits non-zero on any failure.
"""
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report  # noqa: E402

BIN = sys.argv[1]
LOADTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                        "loadtest.py")
TIMEOUT = 60


class Server:
    def __init__(self, model, *extra, env=None):
        self.err = tempfile.TemporaryFile()
        if env is None:  # a key in the caller's environment would lock the tests out
            env = {k: v for k, v in os.environ.items() if k != "M40LLM_API_KEY"}
        self.proc = subprocess.Popen(
            [BIN, "serve", "-m", model, "--device", "cpu", "--port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=self.err, env=env)
        self.port = None
        self.host = "127.0.0.1"
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                break
            self.err.seek(0)
            m = re.search(rb"http://(127\.0\.0\.1|localhost|\[::1\]):(\d+)", self.err.read())
            if m:
                self.host = m.group(1).decode().strip("[]")
                self.port = int(m.group(2))
            else:
                time.sleep(0.05)
        if self.port is None:
            self.err.seek(0)
            raise RuntimeError("server did not start: " + self.err.read().decode(errors="replace"))

    def request(self, method, path, body=None, headers=None, raw=None, timeout=TIMEOUT):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), out

    def json(self, method, path, body=None, headers=None, raw=None):
        s, h, out = self.request(method, path, body, headers, raw)
        try:
            return s, h, json.loads(out) if out else None
        except ValueError:
            return s, h, out

    def stop(self):
        """SIGTERM; returns the exit status (None if it hung)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        if rc != 0 and not self.err.closed:  # say why (a sanitizer report...)
            self.err.seek(0)
            sys.stderr.write(self.err.read().decode(errors="replace")[-4000:])
            self.err.close()
        return rc


def sse_events(raw):
    return [l[6:] for l in raw.decode().split("\n\n") if l.startswith("data: ")]


def is_error(body, status):
    return (isinstance(body, dict) and isinstance(body.get("error"), dict)
            and isinstance(body["error"].get("message"), str)
            and isinstance(body["error"].get("type"), str))


SAMPLING = {"temperature": 1.0, "top_k": 0, "seed": 11, "max_tokens": 24, "ignore_eos": True}


def test_generation(s):
    # /generate: NDJSON pieces concatenate to the non-streaming text.
    st, _, full = s.json("POST", "/generate", dict(SAMPLING, prompt="hello world"))
    check(st == 200 and isinstance(full.get("text"), str), "/generate: %r" % (full,))
    check(full.get("tokens_generated") == 24 and full.get("finish_reason") == "length",
          "/generate counts: %r" % (full,))
    check(full.get("tokens_prompt", 0) > 0 and "prompt_per_second" in full.get("timings", {}),
          "/generate timings: %r" % (full,))
    st, h, raw = s.request("POST", "/generate", dict(SAMPLING, prompt="hello world", stream=True))
    lines = [json.loads(l) for l in raw.decode().splitlines() if l]
    text = "".join(l.get("text", "") for l in lines[:-1])
    check(st == 200 and "ndjson" in h.get("content-type", ""), "/generate stream status %d" % st)
    check(text == full["text"], "/generate stream %r != %r" % (text, full["text"]))
    check(lines and lines[-1].get("finish_reason") == "length" and "timings" in lines[-1],
          "/generate stream final line: %r" % (lines[-1:],))

    # /v1/completions
    st, _, c = s.json("POST", "/v1/completions", dict(SAMPLING, prompt="hello world", model="x"))
    ok = st == 200 and c.get("object") == "text_completion" and c["choices"][0]["index"] == 0
    check(ok and c["choices"][0]["text"] == full["text"], "/v1/completions: %r" % (c,))
    u = c.get("usage", {})
    check(u.get("completion_tokens") == 24 and u.get("prompt_tokens") == full["tokens_prompt"]
          and u.get("total_tokens") == u.get("prompt_tokens", 0) + 24, "usage: %r" % (u,))
    check(c.get("id", "").startswith("cmpl-") and isinstance(c.get("created"), int)
          and c.get("model") == "tiny.gguf", "completion envelope: %r" % (c,))
    st, h, raw = s.request("POST", "/v1/completions", dict(SAMPLING, prompt="hello world", stream=True))
    ev = sse_events(raw)
    check(st == 200 and "text/event-stream" in h.get("content-type", ""), "completions stream")
    check(ev and ev[-1] == "[DONE]", "completions stream ends with [DONE]: %r" % ev[-2:])
    chunks = [json.loads(e) for e in ev[:-1]]
    text = "".join(ch["choices"][0]["text"] for ch in chunks)
    check(text == full["text"], "completions stream text %r != %r" % (text, full["text"]))
    check(chunks[-1]["choices"][0]["finish_reason"] == "length"
          and all(ch["choices"][0]["finish_reason"] is None for ch in chunks[:-1]),
          "completions stream finish_reason")

    # /v1/chat/completions
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    st, _, c = s.json("POST", "/v1/chat/completions", dict(SAMPLING, messages=msgs))
    ok = st == 200 and c.get("object") == "chat.completion"
    msg = c["choices"][0]["message"] if ok else {}
    check(ok and msg.get("role") == "assistant" and isinstance(msg.get("content"), str),
          "chat: %r" % (c,))
    check(ok and c["usage"]["completion_tokens"] == 24 and c["id"].startswith("chatcmpl-"),
          "chat usage: %r" % (c,))
    st, _, raw = s.request("POST", "/v1/chat/completions", dict(SAMPLING, messages=msgs, stream=True))
    ev = sse_events(raw)
    chunks = [json.loads(e) for e in ev[:-1]]
    check(st == 200 and ev[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"].get("role") ==
          "assistant" and chunks[0]["object"] == "chat.completion.chunk", "chat stream shape")
    text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
    check(text == msg.get("content"), "chat stream text %r != %r" % (text, msg.get("content")))
    check(chunks[-1]["choices"][0]["finish_reason"] == "length", "chat stream finish")

    # A stop string cuts the text, finish_reason stop.
    if len(full["text"]) > 6:
        stop = full["text"][3:6]
        st, _, c = s.json("POST", "/generate", dict(SAMPLING, prompt="hello world", stop=[stop]))
        check(st == 200 and c["text"] == full["text"][: full["text"].find(stop)]
              and c["finish_reason"] == "stop", "stop string: %r" % (c,))


def test_misc(s):
    st, _, m = s.json("GET", "/v1/models")
    check(st == 200 and m["object"] == "list" and m["data"][0]["id"] == "tiny.gguf",
          "/v1/models: %r" % (m,))
    st, _, h = s.json("GET", "/health")
    check(st == 200 and h == {"status": "ok"}, "/health: %r" % (h,))
    st, _, t = s.json("POST", "/tokenize", {"content": "hello world"})
    toks = t.get("tokens") if st == 200 else None
    check(isinstance(toks, list) and len(toks) > 0 and all(isinstance(x, int) for x in toks),
          "/tokenize: %r" % (t,))
    st, _, d = s.json("POST", "/detokenize", {"tokens": toks or []})
    # The synth vocabulary has no U+2581 token: SentencePiece's space marks
    # go through as byte tokens and come back as the marks themselves.
    content = d.get("content") if st == 200 else None
    check(content in ("hello world", "\u2581hello\u2581world"), "/detokenize: %r" % (d,))
    st, h, raw = s.request("GET", "/metrics")
    text = raw.decode()
    check(st == 200 and "m40_requests_total{" in text and "m40_slots_busy" in text and
          "m40_time_to_first_token_seconds_bucket" in text, "/metrics")


def test_bad_input(s):
    long_prompt = "word " * 3000
    cases = [
        ("POST", "/generate", None, b"{not json", 400),
        ("POST", "/generate", None, b"[1,2]", 400),
        ("POST", "/generate", {"prompt": 1}, None, 400),
        ("POST", "/generate", {}, None, 400),
        ("POST", "/generate", {"prompt": "x", "temperature": "hot"}, None, 400),
        ("POST", "/generate", {"prompt": "x", "temperature": -1}, None, 400),
        ("POST", "/generate", {"prompt": "x", "top_p": 0}, None, 400),
        ("POST", "/generate", {"prompt": "x", "top_p": 1.5}, None, 400),
        ("POST", "/generate", {"prompt": "x", "min_p": 2}, None, 400),
        ("POST", "/generate", {"prompt": "x", "top_k": -3}, None, 400),
        ("POST", "/generate", {"prompt": "x", "max_tokens": -5}, None, 400),
        ("POST", "/generate", {"prompt": "x", "max_tokens": 10 ** 9}, None, 400),
        ("POST", "/generate", {"prompt": "x", "max_tokens": 1.5}, None, 400),
        ("POST", "/generate", {"prompt": "x", "n_predict": 10 ** 6}, None, 400),
        ("POST", "/generate", {"prompt": "x", "stop": 5}, None, 400),
        ("POST", "/generate", {"prompt": "x", "stream": "yes"}, None, 400),
        ("POST", "/v1/completions", {"prompt": long_prompt}, None, 400),
        ("POST", "/v1/completions", {"prompt": long_prompt, "stream": True}, None, 400),
        ("POST", "/v1/chat/completions", {"messages": "hi"}, None, 400),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user"}]}, None, 400),
        ("POST", "/tokenize", {"content": 3}, None, 400),
        ("POST", "/detokenize", {"tokens": [-1]}, None, 400),
        ("POST", "/detokenize", {"tokens": [10 ** 9]}, None, 400),
        ("POST", "/detokenize", {"tokens": "abc"}, None, 400),
        ("POST", "/generate", None, b'{"prompt": "' + b"a" * (2 << 20) + b'"}', 413),
        # UTF-8 forms that are not Unicode, or not UTF-8 at all: bad input
        ("POST", "/tokenize", None, b'{"content": "\xf4\x90\x80\x80"}', 400),
        ("POST", "/generate", None, b'{"prompt": "\xf4\x90\x80\x80"}', 400),
        ("POST", "/v1/chat/completions", None,
         b'{"messages": [{"role": "user", "content": "\xf4\x90\x80\x80"}]}', 400),
        ("POST", "/tokenize", None, b'{"content": "\xc0\xaf overlong"}', 400),
        ("POST", "/tokenize", None, b'{"content": "\xed\xa0\x80 surrogate"}', 400),
        # a NUL would cut the prompt silently
        ("POST", "/tokenize", None, b'{"content": "before\\u0000after"}', 400),
        ("GET", "/nope", None, None, 404),
        ("GET", "/generate", None, None, 405),
    ]
    for method, path, body, raw, want in cases:
        try:
            st, _, b = s.json(method, path, body, raw=raw)
        except (OSError, http.client.HTTPException) as e:
            st, b = str(e), None
        label = (raw[:30] if raw else json.dumps(body)[:60]) if (raw or body) else ""
        check(st == want and is_error(b, st), "%s %s %s: got %s %r, want %d" %
              (method, path, label, st, str(b)[:200], want))
    st, _, b = s.json("POST", "/v1/completions", {"prompt": long_prompt})
    check(st == 400 and b["error"].get("code") == "context_length_exceeded",
          "long prompt code: %r" % (b,))
    # an escaped backslash before "u0000" is text, not a NUL
    st, _, b = s.json("POST", "/tokenize", raw=b'{"content": "a\\\\u0000b"}')
    check(st == 200, "escaped backslash then u0000: %s %r" % (st, b))
    # every token alone, some of them parts of a character: /detokenize
    # answers valid UTF-8 JSON (U+FFFD for what is not a whole character)
    bad = 0
    for tok in range(0, 512, 7):
        st, _, raw = s.request("POST", "/detokenize", {"tokens": [tok]})
        try:
            raw.decode("utf-8")
            ok = st == 200 and isinstance(json.loads(raw).get("content"), str)
        except ValueError:
            ok = False
        bad += not ok
    check(bad == 0, "/detokenize of single tokens: %d replies not valid UTF-8 JSON" % bad)
    st, _, _ = s.json("GET", "/health")
    check(st == 200, "healthy after bad input")
    st, h, _ = s.json("GET", "/generate")
    check(st == 405 and "POST" in h.get("allow", ""), "405 has Allow: %r" % h)
    # too long a URL, too large headers: JSON errors, not libmicrohttpd's HTML
    st, h, b = s.json("GET", "/v1/models?" + "a" * 9000)
    check(st == 414 and is_error(b, st), "long URL: %s %r" % (st, str(b)[:80]))
    st, h, b = s.json("GET", "/v1/models", headers={"X-Big": "b" * 20000})
    check(st == 431 and is_error(b, st), "large headers: %s %r" % (st, str(b)[:80]))
    st, h, _ = s.json("POST", "/v1/models", {})
    check(st == 405 and "GET" in h.get("allow", ""), "405 on a GET path has Allow: %r" % h)


def test_openai_fields(s):
    """logit_bias works (both forms); what is not done yet is a 400 naming it."""
    greedy = {"temperature": 0, "max_tokens": 4, "ignore_eos": True}
    st, _, b = s.json("POST", "/detokenize", {"tokens": [300]})
    piece = b["content"] if st == 200 else None
    for form in ({"300": 100}, [[300, 100]]):
        st, _, b = s.json("POST", "/generate", dict(greedy, prompt="go", logit_bias=form))
        # (a piece alone loses its leading space in /detokenize)
        text = b.get("text", "") if st == 200 else ""
        check(piece and text.count(piece.strip()) == 4 and
              not text.replace(piece.strip(), "").strip(),
              "logit_bias %r forces token 300: %s %r" % (form, st, b))
    st, _, b = s.json("POST", "/generate", dict(greedy, prompt="go", max_tokens=1))
    first = b.get("text") if st == 200 else ""
    st, _, t = s.json("POST", "/tokenize", {"content": first})
    ids = t.get("tokens", []) if st == 200 else []
    st, _, b = s.json("POST", "/v1/completions",
                      dict(greedy, prompt="go", max_tokens=1,
                           logit_bias={str(i): -100 for i in ids}))
    check(ids and st == 200 and b["choices"][0]["text"] != first,
          "logit_bias -100 bans the greedy token: %r -> %r" % (first, b))
    for bad in ({"abc": 1}, {"999999": 1}, {"5": 101}, {"5": "x"}, [[5]], 7):
        st, _, b = s.json("POST", "/generate", dict(greedy, prompt="go", logit_bias=bad))
        check(st == 400 and is_error(b, st), "logit_bias %r: %s" % (bad, st))
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    # logprobs: one entry per token; greedy picks the most likely, whose
    # logprob leads its top list; probabilities <= 1 in all
    st, _, b = s.json("POST", "/v1/chat/completions",
                      dict(chat, max_tokens=5, temperature=0, ignore_eos=True, logprobs=True,
                           top_logprobs=3))
    content = (b["choices"][0].get("logprobs") or {}).get("content", []) if st == 200 else []
    ok = st == 200 and len(content) == b["usage"]["completion_tokens"] == 5
    for e in content:
        tops = e["top_logprobs"]
        ok = ok and len(tops) == 3 and e["logprob"] <= 0 and tops[0]["logprob"] == e["logprob"]
        ok = ok and tops[0]["token"] == e["token"] and isinstance(e["bytes"], list)
        ok = ok and all(tops[i]["logprob"] >= tops[i + 1]["logprob"] for i in range(2))
        ok = ok and sum(math.exp(t["logprob"]) for t in tops) <= 1.0 + 1e-6
    check(ok, "chat logprobs: %s %r" % (st, b))
    st, _, b = s.json("POST", "/v1/completions",
                      dict(greedy, prompt="go", max_tokens=3, logprobs=2))
    lp = b["choices"][0].get("logprobs") if st == 200 else None
    check(lp and len(lp["tokens"]) == 3 and len(lp["token_logprobs"]) == 3 and
          len(lp["top_logprobs"]) == 3 and all(len(t) <= 2 for t in lp["top_logprobs"]) and
          lp["text_offset"][0] == 0, "completions logprobs: %s %r" % (st, b))
    st, _, b = s.json("POST", "/v1/chat/completions", chat)
    check(st == 200 and b["choices"][0].get("logprobs") is None, "no logprobs asked: null")
    # streamed: the chunks' entries add up to every sampled token
    st, _, raw = s.request("POST", "/v1/chat/completions",
                           dict(chat, max_tokens=6, temperature=0, ignore_eos=True,
                                logprobs=True, top_logprobs=1, stream=True))
    events = [json.loads(e) for e in sse_events(raw) if e != "[DONE]"] if st == 200 else []
    n_entries = sum(len((e["choices"][0].get("logprobs") or {}).get("content", []))
                    for e in events if e.get("choices"))
    usage = [e["usage"] for e in events if e.get("usage")]
    check(st == 200 and usage and n_entries == usage[-1]["completion_tokens"] == 6,
          "streamed logprobs: %d entries, %r" % (n_entries, usage))
    for bad in ({"top_logprobs": 2}, {"logprobs": True, "top_logprobs": 21}):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **bad))
        check(st == 400 and is_error(b, st), "logprobs %r: %s" % (bad, st))
    st, _, b = s.json("POST", "/v1/completions", dict(greedy, prompt="go on", echo=True))
    st2, _, b2 = s.json("POST", "/v1/completions", dict(greedy, prompt="go on"))
    check(st == st2 == 200 and
          b["choices"][0]["text"] == "go on" + b2["choices"][0]["text"],
          "echo: %r / %r" % (b, b2))
    for bad in ({"echo": True, "logprobs": 1}, {"echo": True, "stream": True}):
        st, _, b = s.json("POST", "/v1/completions", dict(greedy, prompt="go", **bad))
        check(st == 400, "echo %r: %s" % (bad, st))
    for field, value in (("echo", True), ("functions", [{"name": "f"}])):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **{field: value}))
        check(st == 400 and b["error"].get("code") == "unsupported" and
              "'%s'" % field in b["error"]["message"], "%s=%r: %s %r" % (field, value, st, b))
    st, _, b = s.json("POST", "/v1/chat/completions",
                      dict(chat, max_tokens=None, max_completion_tokens=3, ignore_eos=True))
    check(st == 200 and b["usage"]["completion_tokens"] == 3,
          "max_completion_tokens: %s %r" % (st, b))
    # n: that many choices, each its own seed (seed, seed + 1, ...)
    req = dict(chat, n=3, seed=5, temperature=1.0, top_k=0, max_tokens=6)
    st, _, b = s.json("POST", "/v1/chat/completions", req)
    ch = b.get("choices", []) if st == 200 else []
    texts = [c["message"]["content"] for c in ch]
    check(st == 200 and [c["index"] for c in ch] == [0, 1, 2] and len(set(texts)) > 1 and
          b["usage"]["completion_tokens"] == 18, "n=3: %s %r" % (st, b))
    st, _, b2 = s.json("POST", "/v1/chat/completions", req)
    check(st == 200 and [c["message"]["content"] for c in b2["choices"]] == texts,
          "n=3 with a seed is reproducible")
    st, _, one = s.json("POST", "/v1/chat/completions", dict(req, n=1, seed=6))
    check(st == 200 and one["choices"][0]["message"]["content"] == texts[1],
          "choice 1 of seed 5 is the choice of seed 6")
    st, _, b = s.json("POST", "/v1/completions", dict(greedy, prompt="go", n=2))
    check(st == 200 and len(b["choices"]) == 2 and b["choices"][1]["index"] == 1,
          "completions n=2: %s %r" % (st, b))
    # streamed: the three choices' chunks interleave, each with its index,
    # joining to the texts above; one end marker, after all of them
    st, _, raw = s.request("POST", "/v1/chat/completions", dict(req, stream=True))
    events = sse_events(raw) if st == 200 else []
    parts, finished = {}, set()
    for e in events[:-1]:
        for c in json.loads(e).get("choices", []):
            parts[c["index"]] = parts.get(c["index"], "") + (c["delta"].get("content") or "")
            if c.get("finish_reason"):
                finished.add(c["index"])
    check(st == 200 and events and events[-1] == "[DONE]" and events.count("[DONE]") == 1 and
          [parts.get(i) for i in range(3)] == texts and finished == {0, 1, 2},
          "streamed n=3: %r vs %r" % (parts, texts))
    for bad in ({"n": 0}, {"n": 17}, {"n": 1.5}):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **bad))
        check(st == 400 and is_error(b, st), "%r: %s" % (bad, st))
    st, _, b = s.json("POST", "/generate", dict(greedy, prompt="go", n=2))
    check(st == 400, "/generate n=2: %s" % st)
    for field, value in (("n", 1), ("logprobs", False), ("tools", []),
                         ("response_format", {"type": "text"}), ("tool_choice", "none")):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **{field: value}))
        check(st == 200, "%s=%r asks for nothing: %s %r" % (field, value, st, b))


def test_structured(s):
    """A grammar or a JSON schema constrains the output, whatever the
    (random) model prefers; what cannot be done is a 400 naming it."""
    for prompt in ("is it?", "what now", "x"):
        st, _, b = s.json("POST", "/generate", {"prompt": prompt, "temperature": 1.0, "seed": 3,
                                                 "grammar": 'root ::= "yes" | "no"'})
        check(st == 200 and b["text"] in ("yes", "no") and b["finish_reason"] == "stop",
              "grammar on /generate: %s %r" % (st, b))
    schema = {"type": "object", "properties": {"a": {"enum": ["x", "y"]},
                                               "n": {"type": "integer"}},
              "required": ["a", "n"]}
    chat = {"messages": [{"role": "user", "content": "json please"}], "max_tokens": 400,
            "temperature": 0.7, "seed": 11}
    rf = {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, response_format=rf))
    doc = json.loads(b["choices"][0]["message"]["content"]) if st == 200 else None
    check(isinstance(doc, dict) and doc.get("a") in ("x", "y") and isinstance(doc.get("n"), int),
          "json_schema on chat: %s %r" % (st, b))
    st, _, raw = s.request("POST", "/v1/chat/completions", dict(chat, response_format=rf,
                                                                 stream=True))
    text = "".join((json.loads(e)["choices"][0]["delta"].get("content") or "")
                   for e in sse_events(raw)[:-1] if json.loads(e)["choices"]) if st == 200 else ""
    check(st == 200 and text == b["choices"][0]["message"]["content"],
          "streamed json_schema joins to the same document: %r" % text)
    # any object: a random model may write a string until max_tokens, so a
    # whole document is only asked of a text that stopped by itself
    st, _, b = s.json("POST", "/v1/completions", {"prompt": "{", "max_tokens": 400, "seed": 4,
                                                   "response_format": {"type": "json_object"}})
    c = b["choices"][0] if st == 200 else {}
    check(c.get("text", "").startswith("{") and
          (c["finish_reason"] == "length" or isinstance(json.loads(c["text"]), dict)),
          "json_object on completions: %s %r" % (st, b))
    st, _, b = s.json("POST", "/generate", {"prompt": "p", "n_predict": 400, "seed": 5,
                                            "json_schema": {"type": "array", "maxItems": 2,
                                                            "items": {"type": "boolean"}}})
    doc = json.loads(b["text"]) if st == 200 else None
    check(isinstance(doc, list) and len(doc) <= 2 and all(isinstance(v, bool) for v in doc),
          "json_schema on /generate: %s %r" % (st, b))
    st, _, b = s.json("POST", "/api/generate", {"model": "m", "prompt": "p", "stream": False,
                                                "format": schema, "options": {"seed": 1}})
    doc = json.loads(b["response"]) if st == 200 else None
    check(isinstance(doc, dict) and doc.get("a") in ("x", "y"), "ollama format schema: %r" % b)
    for body, what in (
            ({"response_format": {"type": "json_schema", "json_schema": {"schema": {
                "type": "string", "pattern": "^a"}}}}, "'pattern'"),
            ({"response_format": {"type": "json_schema"}}, "json_schema"),
            ({"response_format": {"type": "xml"}}, "'response_format'"),
            ({"grammar": "root ::= foo"}, "rule 'foo' is used but not defined"),
            ({"grammar": "root ::= root \"a\""}, "left-recursive"),
            ({"grammar": 5}, "'grammar'"),
            ({"grammar": 'root ::= "a"', "json_schema": {}}, "give one of")):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **body))
        check(st == 400 and is_error(b, st) and what in b["error"]["message"],
              "%r: %s %r" % (body, st, b))


def test_tools(s):
    """Tool calls (docs/tool-calls.md): a required call is a valid call of a
    given tool whatever the (random) model prefers; earlier calls and tool
    results are taken as messages; bad tools are 400s."""
    tools = [{"type": "function", "function": {
        "name": "set_mode", "description": "Sets the mode",
        "parameters": {"type": "object", "properties": {"mode": {"enum": ["fast", "slow"]}},
                       "required": ["mode"]}}},
        {"type": "function", "function": {"name": "ping"}}]
    chat = {"messages": [{"role": "user", "content": "go fast"}], "max_tokens": 300,
            "temperature": 0.8, "seed": 21, "tools": tools, "parallel_tool_calls": False}
    st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, tool_choice="required"))
    ch = b["choices"][0] if st == 200 else {}
    calls = ch.get("message", {}).get("tool_calls") or []
    check(st == 200 and ch["finish_reason"] == "tool_calls" and len(calls) == 1 and
          calls[0]["type"] == "function" and calls[0]["id"].startswith("call_") and
          calls[0]["function"]["name"] in ("set_mode", "ping") and
          isinstance(json.loads(calls[0]["function"]["arguments"]), dict),
          "required tool call: %s %r" % (st, b))
    st, _, b = s.json("POST", "/v1/chat/completions",
                      dict(chat, tool_choice={"type": "function",
                                              "function": {"name": "set_mode"}}))
    calls = b["choices"][0]["message"].get("tool_calls") or [] if st == 200 else []
    args = json.loads(calls[0]["function"]["arguments"]) if calls else {}
    check(calls and calls[0]["function"]["name"] == "set_mode" and
          args.get("mode") in ("fast", "slow"), "named tool call: %s %r" % (st, b))
    # streamed: the same call, in one delta, then finish_reason tool_calls
    st, _, raw = s.request("POST", "/v1/chat/completions",
                           dict(chat, stream=True, tool_choice={
                               "type": "function", "function": {"name": "set_mode"}}))
    deltas = [json.loads(e)["choices"][0] for e in sse_events(raw)[:-1]] if st == 200 else []
    sc = [d["delta"]["tool_calls"] for d in deltas if d["delta"].get("tool_calls")]
    check(len(sc) == 1 and sc[0][0]["index"] == 0 and
          sc[0][0]["function"]["arguments"] == calls[0]["function"]["arguments"] and
          deltas[-1]["finish_reason"] == "tool_calls", "streamed tool call: %r" % deltas)
    # the round trip's messages: the call (content null) and its result
    history = chat["messages"] + [
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"] if calls else "x", "content": "done"},
        {"role": "user", "content": [{"type": "text", "text": "and now?"}]}]
    st, _, b = s.json("POST", "/v1/chat/completions",
                      dict(chat, messages=history, tool_choice="none", max_tokens=4))
    check(st == 200 and isinstance(b["choices"][0]["message"]["content"], str) and
          b["choices"][0]["finish_reason"] != "tool_calls", "round trip: %s %r" % (st, b))
    for body, what in (
            ({"tools": [{"type": "function"}]}, "each tool"),
            ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]},
             "each tool"),
            ({"tool_choice": {"type": "function", "function": {"name": "nope"}}},
             "not in 'tools'"),
            ({"tool_choice": "sometimes"}, "'tool_choice'"),
            ({"tool_choice": "required", "response_format": {"type": "json_object"}},
             "cannot be combined"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
             "content parts"),
            ({"messages": [{"role": "user", "content": None}]}, "'content'"),
            ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{}]}]},
             "'tool_calls'")):
        st, _, b = s.json("POST", "/v1/chat/completions", dict(chat, **body))
        check(st == 400 and is_error(b, st) and what in b["error"]["message"],
              "%r: %s %r" % (body, st, b))
    st, _, b = s.json("POST", "/v1/completions", {"prompt": "x", "tools": tools})
    check(st == 400 and "'tools' (a chat field)" in b["error"]["message"],
          "tools on completions: %s %r" % (st, b))


def test_prompt_cache(s):
    """A request reuses the K/V its slot holds of the prefix it shares with
    the slot's last request (cache_prompt, default on): reported in usage,
    /generate's timings and /metrics, and the text is the same as without
    the cache."""
    system = "You are a terse assistant who answers in one line. " * 3
    def ask(q, **kw):
        return s.json("POST", "/v1/chat/completions", dict({
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": q}],
            "max_tokens": 8, "temperature": 0, "ignore_eos": True}, **kw))
    before = metric(s, "m40_prompt_tokens_cached_total")
    st, _, plain = ask("first question", cache_prompt=False)
    st2, _, b1 = ask("second question", cache_prompt=False)
    st3, _, b2 = ask("first question")
    cached = b2["usage"]["prompt_tokens_details"]["cached_tokens"] if st3 == 200 else 0
    check(st == st2 == st3 == 200 and
          plain["usage"]["prompt_tokens_details"]["cached_tokens"] == 0 and
          cached > len(system) // 4 and cached < b2["usage"]["prompt_tokens"],
          "the shared system prompt is kept: %r" % (b2.get("usage"),))
    check(st3 == 200 and b2["choices"][0]["message"]["content"] ==
          plain["choices"][0]["message"]["content"],
          "the same text with the cache: %r / %r" % (b2, plain))
    check(metric(s, "m40_prompt_tokens_cached_total") - before == cached,
          "/metrics counts the kept tokens")
    st, _, g = s.json("POST", "/generate", {"prompt": system + "x", "n_predict": 2})
    st, _, g = s.json("POST", "/generate", {"prompt": system + "y", "n_predict": 2})
    t = g.get("timings", {}) if st == 200 else {}
    check(t.get("cache_n", 0) > 0 and t["prompt_n"] + t["cache_n"] == g["tokens_prompt"],
          "/generate timings: %r" % t)


def test_ollama_models(s):
    """The ollama API's model endpoints describe the served model."""
    st, _, b = s.json("GET", "/api/version")
    check(st == 200 and isinstance(b.get("version"), str), "/api/version: %s %r" % (st, b))
    st, _, tags = s.json("GET", "/api/tags")
    models = tags.get("models", []) if st == 200 else []
    check(len(models) == 1 and models[0]["name"] == "tiny.gguf" and
          models[0]["details"]["format"] == "gguf" and
          models[0]["details"]["family"] == "llama" and
          models[0]["details"]["quantization_level"] == "Q8_0" and models[0]["size"] > 0,
          "/api/tags: %s %r" % (st, tags))
    st, _, ps = s.json("GET", "/api/ps")
    check(st == 200 and len(ps.get("models", [])) == 1 and
          ps["models"][0]["context_length"] == 2048, "/api/ps: %s %r" % (st, ps))
    st, _, show = s.json("POST", "/api/show", {"model": "tiny.gguf"})
    check(st == 200 and show["model_info"]["general.architecture"] == "llama" and
          show["model_info"]["llama.block_count"] == 2 and isinstance(show["template"], str),
          "/api/show: %s %r" % (st, show))
    st, _, b = s.json("POST", "/api/show", {"nope": 1})
    check(st == 400 and isinstance(b.get("error"), str), "/api/show without a model: %s" % st)
    st, h, _ = s.json("POST", "/api/tags", {})
    check(st == 405 and "GET" in h.get("allow", ""), "POST /api/tags: %s" % st)
    st, _, _ = s.json("POST", "/api/pull", {})
    check(st == 404, "an /api path not served: %s" % st)


def ndjson(raw):
    return [json.loads(l) for l in raw.decode().split("\n") if l.strip()]


def test_ollama_generate(s):
    """/api/generate and /api/chat: ollama's shapes over the same engine."""
    opts = {"temperature": 0, "num_predict": 5}
    st, _, b = s.json("POST", "/api/generate",
                      {"model": "any", "prompt": "hi", "stream": False, "options": opts})
    check(st == 200 and b.get("done") is True and isinstance(b.get("response"), str) and
          b.get("done_reason") in ("stop", "length") and 0 < b.get("eval_count", 0) <= 5 and
          b.get("prompt_eval_count", 0) > 1 and
          all(isinstance(b.get(k), int) for k in ("total_duration", "eval_duration")),
          "/api/generate: %s %r" % (st, b))
    # streamed (ollama's default): lines whose pieces join to the same text
    st, h, raw = s.request("POST", "/api/generate", {"model": "any", "prompt": "hi",
                                                      "options": opts})
    lines = ndjson(raw) if st == 200 else []
    check(lines and lines[-1].get("done") is True and
          all(l.get("done") is False for l in lines[:-1]) and
          "".join(l.get("response", "") for l in lines) == b.get("response") and
          h.get("content-type", "").startswith("application/x-ndjson"),
          "/api/generate streamed: %r" % (lines[-2:],))
    # raw: the prompt as it is, as /v1/completions takes it
    st, _, rawb = s.json("POST", "/api/generate", {"model": "any", "prompt": "hi", "raw": True,
                                                   "stream": False, "options": opts})
    st2, _, c = s.json("POST", "/v1/completions", {"prompt": "hi", "temperature": 0,
                                                   "max_tokens": 5})
    check(st == st2 == 200 and rawb["response"] == c["choices"][0]["text"],
          "/api/generate raw == /v1/completions: %r %r" % (rawb, c))
    msgs = [{"role": "user", "content": "hi"}]
    st, _, b = s.json("POST", "/api/chat", {"model": "any", "messages": msgs, "stream": False,
                                            "options": opts})
    check(st == 200 and b.get("message", {}).get("role") == "assistant" and
          b.get("done") is True, "/api/chat: %s %r" % (st, b))
    st, _, raw = s.request("POST", "/api/chat", {"model": "any", "messages": msgs,
                                                 "options": opts})
    lines = ndjson(raw) if st == 200 else []
    check(lines and "".join(l["message"]["content"] for l in lines) ==
          b.get("message", {}).get("content"), "/api/chat streamed")
    # the prompt through the chat template == /api/chat with that one message
    st, _, g = s.json("POST", "/api/generate", {"model": "any", "prompt": "hi",
                                                "stream": False, "options": opts})
    check(st == 200 and g["response"] == b["message"]["content"],
          "/api/generate (templated) == /api/chat")
    for bad, what in (({"prompt": "hi", "format": 5}, "format"),
                      ({"prompt": "hi", "format": "xml"}, "format"),
                      ({"prompt": "hi", "options": 3}, "options"),
                      ({"prompt": "hi", "options": {"num_ctx": 10 ** 7}}, "num_ctx"),
                      ({"prompt": 5, "stream": False}, "")):
        st, _, b = s.json("POST", "/api/generate", bad)
        check(st == 400 and isinstance(b, dict) and isinstance(b.get("error"), str) and
              what in b["error"], "/api/generate %r: %s %r" % (bad, st, b))
    st, h, _ = s.json("GET", "/api/chat")
    check(st == 405 and "POST" in h.get("allow", ""), "GET /api/chat: %s" % st)


def test_cors(s):
    o = {"Origin": "http://ok.example", "Access-Control-Request-Method": "POST"}
    st, h, _ = s.request("OPTIONS", "/v1/chat/completions", headers=o)
    check(st == 204 and h.get("access-control-allow-origin") == "http://ok.example"
          and "POST" in h.get("access-control-allow-methods", "")
          and "authorization" in h.get("access-control-allow-headers", "").lower(),
          "preflight: %d %r" % (st, h))
    st, h, _ = s.request("GET", "/v1/models", headers={"Origin": "http://ok.example"})
    check(st == 200 and h.get("access-control-allow-origin") == "http://ok.example", "CORS GET")
    st, h, _ = s.request("GET", "/v1/models", headers={"Origin": "http://evil.example"})
    check(st == 200 and "access-control-allow-origin" not in h, "CORS other origin")
    # the openai JS SDK's own headers: a preflight asking for them gets them
    asked = "authorization, content-type, x-stainless-os, x-stainless-lang"
    st, h, _ = s.request("OPTIONS", "/v1/chat/completions",
                         headers=dict(o, **{"Access-Control-Request-Headers": asked}))
    got = h.get("access-control-allow-headers", "").lower()
    check(st == 204 and "x-stainless-os" in got and "x-stainless-lang" in got,
          "preflight with x-stainless-* headers: %r" % got)
    # ...but nothing that is not a header-name list is echoed
    st, h, _ = s.request("OPTIONS", "/v1/models",
                         headers=dict(o, **{"Access-Control-Request-Headers": "a\tb;c=d"}))
    check(";" not in h.get("access-control-allow-headers", ""), "bad request-headers list")


def test_full_queue(s):
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            st, h, raw = s.request("POST", "/v1/completions",
                                   dict(SAMPLING, prompt="count %d" % i, max_tokens=64,
                                        stream=True), timeout=120)
            if st == 200:
                r = "ok" if raw.endswith(b"data: [DONE]\n\n") else "truncated"
            elif st == 503:
                r = "busy" if h.get("retry-after") and b'"error"' in raw else "bad503"
            else:
                r = "status %d" % st
        except Exception as e:  # a timeout is a hang: a failure
            r = "exception %r" % e
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    check(len(results) == 20 and all(r in ("ok", "busy") for r in results),
          "20 concurrent streams: %r" % results)
    check(results.count("ok") >= 1, "some concurrent stream completed: %r" % results)
    check(results.count("busy") >= 1, "a full queue answered 503: %r" % results)
    st, _, _ = s.json("GET", "/health")
    check(st == 200, "healthy after the burst")


def metric(s, name):
    _, _, raw = s.request("GET", "/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), raw.decode(), re.M)
    return float(m.group(1)) if m else None


def wait_metric(s, name, want, seconds):
    """Polls a metric until it equals want or `seconds` pass; returns its
    last value."""
    deadline = time.time() + seconds
    value = metric(s, name)
    while value != want and time.time() < deadline:
        time.sleep(0.02)
        value = metric(s, name)
    return value


def send_generate(s, prompt, stream):
    """Starts an endless greedy /generate on a raw socket (so that the test
    can hang up on it) and returns the socket."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT)
    body = json.dumps({"prompt": prompt, "max_tokens": -1, "ignore_eos": True, "stream": stream,
                       "temperature": 0}).encode()
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return sock


def open_stream(s, prompt):
    """send_generate streaming; returns the socket and whether text arrived."""
    sock = send_generate(s, prompt, True)
    got = b""
    while b'"text"' not in got:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return sock, b'"text"' in got


def leave_early(s, stream):
    """A client asks for a long generation, then hangs up: the slot must be
    free within 1 s and the job must not have run to the end."""
    before = metric(s, "m40_generated_tokens_total")
    if stream:
        sock, ok = open_stream(s, "go")
        check(ok, "stream started before the disconnect")
    else:
        sock = send_generate(s, "go", False)
        check(wait_metric(s, "m40_slots_busy", 1, 5) == 1,
              "the job started before the disconnect")
    sock.close()
    busy = wait_metric(s, "m40_slots_busy", 0, 1.0)
    what = "streaming" if stream else "non-streaming"
    check(busy == 0, "%s: slot still busy 1 s after the client left" % what)
    after = metric(s, "m40_generated_tokens_total")
    check(after is not None and before is not None and after - before < 2000,
          "%s: the abandoned job ran on: %s -> %s tokens" % (what, before, after))
    st, _, _ = s.json("GET", "/health")
    check(st == 200, "healthy after a disconnect")


def test_disconnect(s):
    leave_early(s, True)
    leave_early(s, False)


def test_parallel(model):
    """--parallel 3: three requests generate at once, each on its own slot,
    and a request's text does not depend on what runs beside it."""
    s = Server(model, "--parallel", "3", "--ctx-size", "2048")
    try:
        req = dict(SAMPLING, prompt="the same prompt", max_tokens=40, ignore_eos=True, seed=11)
        st, _, alone = s.json("POST", "/generate", req)
        check(st == 200 and alone.get("text"), "parallel: a request alone: %s %r" % (st, alone))
        socks = []
        for i in range(2):
            sock, ok = open_stream(s, "neighbour %d" % i)
            check(ok, "parallel: stream %d started" % i)
            socks.append(sock)
        # two long streams hold two slots; the third slot serves this one now
        st, _, beside = s.json("POST", "/generate", req)
        check(st == 200 and beside.get("text") == alone.get("text"),
              "parallel: same text beside two streams: %r vs %r" %
              (beside.get("text") if isinstance(beside, dict) else beside, alone.get("text")))
        sock, ok = open_stream(s, "third")
        socks.append(sock)
        busy = wait_metric(s, "m40_slots_busy", 3, 5)
        check(ok and busy == 3, "parallel: three jobs running at once (busy %r)" % busy)
        # a fourth waits in the queue while three run
        fourth = threading.Thread(target=lambda: s.request("POST", "/generate",
                                                           dict(req, max_tokens=4)))
        fourth.start()
        depth = wait_metric(s, "m40_queue_depth", 1, 2)
        check(depth == 1, "parallel: the fourth request waits (queue depth %r)" % depth)
        for sock in socks:
            sock.close()
        fourth.join(60)
        check(not fourth.is_alive(), "parallel: the fourth request ran once slots freed")
        check(wait_metric(s, "m40_slots_busy", 0, 2) == 0,
              "parallel: all slots free after hang-ups")
        rc = s.stop()
        check(rc == 0, "parallel: SIGTERM exit %r" % rc)
    finally:
        s.stop()


def metric_sum(s, name):
    """The sum of every series of a metric (all labels)."""
    _, _, raw = s.request("GET", "/metrics")
    return sum(float(v) for v in re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name),
                                            raw.decode(), re.M))


def test_batching(model):
    """--parallel 8 and 32 concurrent streams: none is lost, each gives
    the text it gives alone (greedy and seeded, prompts of mixed lengths),
    and the engine's steps carried several requests' tokens at once."""
    s = Server(model, "--parallel", "8", "--queue", "64", "--ctx-size", "256")
    try:
        reqs = []
        for i in range(32):
            r = {"prompt": ("q%d " % i) * (1 + i % 7), "max_tokens": 8 + i % 13,
                 "ignore_eos": True, "stream": i % 3 != 0}
            r.update({"temperature": 0} if i % 2 else {"temperature": 0.9, "seed": 50 + i})
            reqs.append(r)

        def run(r):
            st, _, raw = s.request("POST", "/generate", r)
            if st != 200:
                return None
            if not r["stream"]:
                return json.loads(raw)["text"]
            lines = [json.loads(l) for l in raw.decode().splitlines() if l]
            return "".join(l.get("text", "") for l in lines[:-1])

        alone = [run(r) for r in reqs]
        check(all(isinstance(t, str) and t for t in alone), "batching: every request alone")
        steps_before = metric(s, "m40_steps_total")
        rows_before = metric(s, "m40_step_batch_size_sum")
        out = [None] * len(reqs)

        def worker(i):
            out[i] = run(reqs[i])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(all(not t.is_alive() for t in threads), "batching: every stream ended")
        lost = [i for i in range(len(reqs)) if out[i] is None]
        check(not lost, "batching: requests lost: %r" % lost)
        differ = [i for i in range(len(reqs)) if out[i] is not None and out[i] != alone[i]]
        check(not differ, "batching: outputs beside 31 others differ from alone: %r" % differ)
        steps = metric(s, "m40_steps_total") - steps_before
        rows = metric(s, "m40_step_batch_size_sum") - rows_before
        check(steps > 0 and rows > steps,
              "batching: decode tokens per step %r over %r steps" % (rows / max(steps, 1), steps))
        check(metric_sum(s, "m40_queue_wait_seconds_count") >= 64,
              "batching: queue waits observed")
        check(metric(s, "m40_inter_token_seconds_count") > 0, "batching: inter-token latencies")
        check(metric(s, "m40_decode_step_seconds_total") > 0 and
              metric(s, "m40_decode_turn_seconds_count") > 0 and
              metric(s, "m40_decode_turn_seconds_sum") > 0,
              "batching: decode steps' time and the host's turns between them")
        # the load generator against the same server: every request through
        lt = subprocess.run([sys.executable, LOADTEST, "--url", "http://127.0.0.1:%d" % s.port,
                             "--clients", "8", "--requests", "2", "--max-tokens", "6",
                             "--prompt-words", "4", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        try:
            rep = json.loads(lt.stdout)
        except ValueError:
            rep = {}
        check(lt.returncode == 0 and rep.get("failed") == 0 and
              rep.get("completion_tokens") == 8 * 2 * 6 and rep.get("aggregate_tps", 0) > 0 and
              rep.get("ttft_p99_ms", 0) >= rep.get("ttft_p50_ms", -1) > 0 and
              rep.get("stream_tps", 0) > 0,
              "loadtest.py: %r %r" % (lt.stdout, lt.stderr))
        rc = s.stop()
        check(rc == 0, "batching: SIGTERM exit %r" % rc)
    finally:
        s.stop()


def test_long_keys(model, tmp):
    """Keys of any length; from a file or the environment; bearer in any case."""
    long_key = "k" * 600 + "Z"
    s = Server(model, "--api-key", long_key)
    try:
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer " + long_key})
        check(st == 200, "a 601-byte key: %s" % st)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer " + long_key[:-1]
                                                         + "Y"})
        check(st == 401, "a key differing in its last byte: %s" % st)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer " + long_key[:504]})
        check(st == 401, "a prefix of the key: %s" % st)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "bearer " + long_key})
        check(st == 200, "lower-case bearer: %s" % st)
    finally:
        s.stop()
    path = os.path.join(tmp, "key.txt")
    with open(path, "w") as f:
        f.write("from-a-file\n")
    s = Server(model, "--api-key-file", path)
    try:
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer from-a-file"})
        check(st == 200, "--api-key-file: %s" % st)
        check(b"from-a-file" not in open("/proc/%d/cmdline" % s.proc.pid, "rb").read(),
              "the key is not on the command line")
    finally:
        s.stop()
    env = dict(os.environ, M40LLM_API_KEY="from-env")
    s = Server(model, env=env)
    try:
        st, _, _ = s.json("GET", "/v1/models")
        check(st == 401, "M40LLM_API_KEY: no key given: %s" % st)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer from-env"})
        check(st == 200, "M40LLM_API_KEY: %s" % st)
    finally:
        s.stop()
    for args in (["--api-key-file", os.path.join(tmp, "missing")], ["--api-key", "has space"],
                 ["--api-key", "a", "--api-key-file", path]):
        p = subprocess.run([BIN, "serve", "-m", model, "--device", "cpu", *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        check(p.returncode == 2 and p.stderr.count(b"\n") == 1,
              "serve %r: exit %d, %r" % (args, p.returncode, p.stderr))


def test_api_key(model):
    s = Server(model, "--api-key", "sekret")
    try:
        st, h, b = s.json("GET", "/v1/models")
        check(st == 401 and is_error(b, st), "no key: %s" % st)
        check(h.get("www-authenticate", "").startswith("Bearer"),
              "401 has WWW-Authenticate: %r" % h)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
        check(st == 401, "wrong key: %s" % st)
        st, _, _ = s.json("GET", "/v1/models", headers={"Authorization": "Bearer sekret"})
        check(st == 200, "right key: %s" % st)
        st, _, _ = s.json("GET", "/health")
        check(st == 200, "/health needs no key: %s" % st)
        # SIGTERM while a stream runs: the stream ends, the server exits 0.
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=TIMEOUT)
        c.request("POST", "/generate", body=json.dumps(
            {"prompt": "go", "max_tokens": -1, "ignore_eos": True, "stream": True}),
            headers={"Authorization": "Bearer sekret"})
        r = c.getresponse()
        r.fp.readline()
        t0 = time.time()
        rc = s.stop()
        check(rc == 0 and time.time() - t0 < 10, "SIGTERM mid-stream: exit %r" % rc)
        c.close()
    finally:
        s.stop()


def test_slot_choice(model):
    """With --parallel 2, a request goes to the slot whose prompt cache
    holds most of its prompt (two conversations keep their own slots), and
    a new conversation to the slot idle the longest, not over another's
    cache."""
    s = Server(model, "--parallel", "2", "--ctx-size", "2048")
    try:
        systems = ["You answer about the sea, in short sentences. " * 4,
                   "Only numbers are allowed in answers, nothing else. " * 4]
        def ask(system, q):
            st, _, b = s.json("POST", "/v1/chat/completions", {
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": q}],
                "max_tokens": 4, "temperature": 0, "ignore_eos": True})
            u = b.get("usage", {}) if st == 200 else {}
            return u.get("prompt_tokens_details", {}).get("cached_tokens", 0), \
                u.get("prompt_tokens", 1)
        ask(systems[0], "first")
        ask(systems[1], "first")  # a new conversation: the other, unused slot
        # turns out of step (the slot idle the longest is the wrong one
        # after two turns of the same conversation)
        for k, i in enumerate((0, 0, 1, 0, 1, 1)):
            cached, total = ask(systems[i], "question %d" % k)
            check(2 * cached >= total, "conversation %d, turn %d kept its slot's cache: "
                                       "%d of %d" % (i, k, cached, total))
    finally:
        s.stop()


def test_cache_ram(model):
    """With one slot and three conversations taking turns, each turn finds
    its conversation's K/V in the host-RAM store (--cache-ram, on by
    default) where another had pushed it out of the slot: most of the prompt
    is cached, /metrics counts it, and every answer is the one the same
    request gets with no cache at all. --cache-ram 0: only the slot's own
    prefix is kept."""
    systems = ["You answer about the sea, in short sentences. " * 4,
               "Only numbers are allowed in answers, nothing else. " * 4,
               "Reply as a pirate would, and keep it brief, matey. " * 4]
    def ask(s, i, q, cache=True):
        st, _, b = s.json("POST", "/v1/chat/completions", {
            "messages": [{"role": "system", "content": systems[i]},
                         {"role": "user", "content": q}],
            "max_tokens": 4, "temperature": 0, "ignore_eos": True, "cache_prompt": cache})
        u = b.get("usage", {}) if st == 200 else {}
        text = b["choices"][0]["message"]["content"] if st == 200 else None
        return u.get("prompt_tokens_details", {}).get("cached_tokens", 0), \
            u.get("prompt_tokens", 1), text
    turns = [(k % 3, "question %d" % (k // 3)) for k in range(9)]
    s = Server(model, "--ctx-size", "2048")
    try:
        plain = [ask(s, i, q, cache=False)[2] for i, q in turns]
        for k, (i, q) in enumerate(turns):
            cached, total, text = ask(s, i, q)
            if k >= 3:
                check(2 * cached >= total, "turn %d of conversation %d: %d of %d tokens "
                                           "cached" % (k, i, cached, total))
            check(text == plain[k], "turn %d: %r with the store, %r without" %
                  (k, text, plain[k]))
        check(metric(s, "m40_cache_ram_restored_total") >= 6 and
              metric(s, "m40_cache_ram_entries") >= 2,
              "/metrics: %r restored, %r entries" % (metric(s, "m40_cache_ram_restored_total"),
                                                     metric(s, "m40_cache_ram_entries")))
    finally:
        s.stop()
    s = Server(model, "--ctx-size", "2048", "--cache-ram", "0")
    try:
        for k, (i, q) in enumerate(turns):
            cached, total, _ = ask(s, i, q)
            check(2 * cached < total, "--cache-ram 0, turn %d: %d of %d cached" %
                  (k, cached, total))
        check(metric(s, "m40_cache_ram_entries") == 0, "--cache-ram 0 holds nothing")
    finally:
        s.stop()


QWEN_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "chat",
                             "templates", "Qwen-Qwen2.5-7B-Instruct.jinja")


def test_tools_template(model):
    """A template with tools support (Qwen 2.5's, by --chat-template-file): it
    renders the tools itself, and a required call, its result and a reply
    make the round trip; a template that does not compile stops the server
    before it serves."""
    s = Server(model, "--chat-template-file", QWEN_TEMPLATE, "--ctx-size", "4096")
    try:
        tools = [{"type": "function", "function": {
            "name": "lookup", "description": "Looks a word up",
            "parameters": {"type": "object", "properties": {"word": {"enum": ["cat", "dog"]}},
                           "required": ["word"]}}}]
        chat = {"messages": [{"role": "user", "content": "look up cat"}], "max_tokens": 200,
                "temperature": 0.7, "seed": 8}
        st, _, plain = s.json("POST", "/v1/chat/completions", dict(chat, max_tokens=1))
        st2, _, b = s.json("POST", "/v1/chat/completions",
                           dict(chat, tools=tools, tool_choice="required",
                                parallel_tool_calls=False))
        calls = b["choices"][0]["message"].get("tool_calls") or [] if st2 == 200 else []
        # Qwen's template lists the tools in its system turn: a longer prompt
        check(st == st2 == 200 and b["usage"]["prompt_tokens"] >
              plain["usage"]["prompt_tokens"] + 100, "the template renders the tools")
        args = json.loads(calls[0]["function"]["arguments"]) if calls else {}
        check(len(calls) == 1 and calls[0]["function"]["name"] == "lookup" and
              args.get("word") in ("cat", "dog"), "Qwen-format call: %r" % b)
        history = chat["messages"] + [
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"] if calls else "", "content": "a pet"}]
        st, _, b = s.json("POST", "/v1/chat/completions",
                          dict(chat, messages=history, tools=tools, tool_choice="none",
                               max_tokens=8))
        check(st == 200 and isinstance(b["choices"][0]["message"]["content"], str) and
              b["choices"][0]["finish_reason"] in ("stop", "length"),
              "the reply after the tool's result: %s %r" % (st, b))
    finally:
        s.stop()
    with tempfile.NamedTemporaryFile("w", suffix=".jinja") as bad:
        bad.write("{% for m in messages %}")
        bad.flush()
        p = subprocess.run([BIN, "serve", "-m", model, "--device", "cpu", "--port", "0",
                            "--chat-template-file", bad.name], capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        check(p.returncode == 1 and "chat template" in err and "serving" not in err,
              "a bad template stops the server: %s %r" % (p.returncode, err))
    p = subprocess.run([BIN, "serve", "-m", model, "--chat-template-file", "/no/such.jinja"],
                       capture_output=True, timeout=60)
    check(p.returncode == 2 and b"--chat-template-file" in p.stderr,
          "a missing template file is a usage error: %r" % p.stderr)


def test_hosts(model):
    """--host takes names and IPv6 addresses, and a bad one fails before loading."""
    for host in ("localhost", "::1"):
        s = Server(model, "--host", host)
        try:
            st, _, _ = s.json("GET", "/health")
            check(st == 200, "--host %s: /health %s" % (host, st))
        finally:
            s.stop()
    # checked before the model: a missing model is not what it reports
    p = subprocess.run([BIN, "serve", "-m", "/nonexistent/x.gguf", "--device", "cpu", "--host",
                        "192.0.2.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 1 and b"cannot listen" in p.stderr and b"x.gguf" not in p.stderr,
          "a foreign address fails before the model loads: %r" % p.stderr)


def test_slow_clients(model):
    """Half-sent requests neither lock others out nor hold a thread for long."""
    s = Server(model, "--timeout", "2")
    socks = []
    try:
        for _ in range(300):  # issue 19's flood: headers never finished
            c = socket.create_connection((s.host, s.port), timeout=10)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(c)
        time.sleep(0.5)
        t0 = time.time()
        st, _, _ = s.json("GET", "/health")
        check(st == 200 and time.time() - t0 < 5,
              "/health beside 300 half-sent requests: %s in %.1f s" % (st, time.time() - t0))
        # each of them is closed once idle for --timeout (2 s), not 600
        time.sleep(4)
        closed = 0
        for c in socks:
            try:
                c.settimeout(2)
                closed += c.recv(1) == b""
            except OSError:
                closed += 1
        check(closed == len(socks), "idle half-sent requests closed: %d of %d" %
              (closed, len(socks)))
        # a body shorter than its Content-Length: closed too
        c = socket.create_connection((s.host, s.port), timeout=10)
        c.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"content\":")
        t0 = time.time()
        try:
            c.settimeout(10)
            data = c.recv(4096)
        except OSError:
            data = b""
        check(time.time() - t0 < 6 and not data.startswith(b"HTTP/1.1 200"),
              "short body closed after the timeout: %.1f s, %r" % (time.time() - t0, data[:40]))
        c.close()
        st, _, _ = s.json("GET", "/health")
        check(st == 200, "healthy after slow clients: %s" % st)
    finally:
        for c in socks:
            c.close()
        s.stop()


def test_shutdown_reply(model):
    """A request cut short by SIGTERM gets 503 shutting_down, as documented."""
    s = Server(model, "--ctx-size", "16384")  # seconds of generation: still running at SIGTERM
    out = {}

    def run():
        out["r"] = s.json("POST", "/generate",
                          {"prompt": "go", "max_tokens": -1, "ignore_eos": True})
    t = threading.Thread(target=run)
    try:
        t.start()
        time.sleep(0.3)  # generating by now
        rc = s.stop()
        t.join(30)
        st, _, b = out.get("r", (None, None, None))
        check(rc == 0 and st == 503 and is_error(b, st)
              and b["error"].get("code") == "shutting_down",
              "a running request at SIGTERM: %r %r" % (st, b))
    finally:
        s.stop()


def test_cli_errors(model, busy_port):
    """Bad flags exit 2, a server that cannot start exits 1; one line each."""
    cases = [
        (["--bogus", "1"], 2, "unknown option"),
        (["--port", "70000"], 2, "--port"),
        (["--queue", "0"], 2, "--queue"),
        (["--timeout", "0"], 2, "--timeout"),
        (["--device", "tpu"], 2, "--device"),
        (["--cache-ram", "-2"], 2, "--cache-ram"),
        (["--one-stream"], 1, 'has no switch "one-stream"'),
        (["--host", "not-an-ip"], 1, "cannot listen"),
        (["--port", str(busy_port)], 1, "cannot listen"),
    ]
    for args, want, says in cases:
        p = subprocess.run([BIN, "serve", "-m", model, "--device", "cpu", *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode(errors="replace")
        check(p.returncode == want and says in err and err.count("\n") == 1,
              "serve %s: exit %d, stderr %r" % (" ".join(args), p.returncode, err))
    p = subprocess.run([BIN, "serve", "-m", "/nonexistent/x.gguf"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    check(p.returncode == 1 and b"x.gguf" in p.stderr, "serve with a missing model: %r" % p.stderr)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        subprocess.run([BIN, "synth", "--shape", "tiny", "--type", "q8_0", "--seed", "3",
                        "-o", model], check=True, stdout=subprocess.DEVNULL)
        s = Server(model, "--queue", "4", "--ctx-size", "2048", "--cors-origin",
                   "http://ok.example")
        try:
            test_cli_errors(model, s.port)
        except Exception as e:
            check(False, "test_cli_errors raised %r" % e)
        try:
            for t in (test_generation, test_misc, test_bad_input, test_openai_fields, test_structured,
                      test_tools, test_prompt_cache,
                      test_ollama_models, test_ollama_generate, test_cors, test_full_queue,
                      test_disconnect):
                try:
                    t(s)
                except Exception as e:
                    check(False, "%s raised %r" % (t.__name__, e))
            rc = s.stop()
            check(rc == 0, "SIGTERM: exit status %r" % rc)
        finally:
            s.stop()
        for t in (test_api_key, test_parallel, test_batching, test_tools_template,
                  test_slot_choice, test_cache_ram):
            try:
                t(model)
            except Exception as e:
                check(False, "%s raised %r" % (t.__name__, e))
        for t in (test_long_keys, test_hosts, test_slow_clients, test_shutdown_reply):
            try:
                t(model, tmp) if t is test_long_keys else t(model)
            except Exception as e:
                check(False, "%s raised %r" % (t.__name__, e))
    report()


if __name__ == "__main__":
    main()
