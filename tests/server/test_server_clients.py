#!/usr/bin/env python3
"""test_server_clients.py BINARY [DEFAULT_MODEL] - `m40-llm serve` against real clients.

1. The official `openai` Python client (PyPI; scripts/test.sh installs the
   pinned version) completes and streams on /v1/completions and
   /v1/chat/completions, and the streamed pieces join to the non-streamed
   text for the same seed; n, logprobs and logit_bias parse into its types.
2. A soak: 200 concurrent streaming requests against --parallel 4 --queue 64.
   Every request must either complete (its stream ends in [DONE]) or get an
   explicit 429/503; none may hang (each has a timeout) or be lost, and the
   server must be healthy afterwards. Prints the throughput.
   The official `ollama` client (pinned likewise) lists, shows and ps-es
   the served model, and generates and chats, streamed and not.
3. With DEFAULT_MODEL (SmolLM2-135M-Instruct): a chat completion through
   the model's own chat template answers in words.
Prints "N passed, M failed"; exits non-zero on any failure.
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, failures, report  # noqa: E402
import serveproc  # noqa: E402

BIN = sys.argv[1]


def start(model, *extra):
    return serveproc.start(BIN, model, *extra)


def stop(proc):
    return serveproc.stop(proc, show_log=failures() > 0)


def test_openai_client(port):
    try:
        import openai
    except ImportError:
        check(False, "the openai package is missing (scripts/test.sh installs it)")
        return
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused",
                           timeout=60, max_retries=0)
    args = dict(model="m40", max_tokens=12, temperature=0.8, seed=5)
    c = client.completions.create(prompt="hello there", **args)
    check(len(c.choices) == 1 and isinstance(c.choices[0].text, str), "completion shape")
    check(c.usage.completion_tokens > 0, "completion usage")
    streamed = "".join(ch.choices[0].text for ch in
                       client.completions.create(prompt="hello there", stream=True, **args)
                       if ch.choices)
    check(streamed == c.choices[0].text, "streamed completion == completion")

    msgs = [{"role": "user", "content": "Say something."}]
    r = client.chat.completions.create(messages=msgs, **args)
    check(r.choices[0].message.role == "assistant", "chat message role")
    text = r.choices[0].message.content or ""
    parts = []
    for ch in client.chat.completions.create(messages=msgs, stream=True, **args):
        if ch.choices and ch.choices[0].delta.content:
            parts.append(ch.choices[0].delta.content)
    check("".join(parts) == text, "streamed chat == chat")
    check(r.choices[0].finish_reason in ("stop", "length"), "chat finish_reason")
    models = client.models.list()
    check(len(models.data) >= 1, "models list")

    # n, logprobs and logit_bias through the client's own types
    r = client.chat.completions.create(messages=msgs, n=3, **args)
    check([c.index for c in r.choices] == [0, 1, 2], "n=3 gives 3 choices")
    joined = {}
    for ch in client.chat.completions.create(messages=msgs, n=3, stream=True, **args):
        for c in ch.choices:
            joined[c.index] = joined.get(c.index, "") + (c.delta.content or "")
    check([joined.get(i) for i in range(3)] == [c.message.content for c in r.choices],
          "streamed n=3 joins to the choices")
    r = client.chat.completions.create(messages=msgs, logprobs=True, top_logprobs=2,
                                       **dict(args, temperature=0))
    lp = r.choices[0].logprobs
    check(lp is not None and len(lp.content) == r.usage.completion_tokens and
          all(e.logprob <= 0 and len(e.top_logprobs) == 2 and
              e.top_logprobs[0].logprob == e.logprob for e in lp.content),
          "chat logprobs: %r" % (lp,))
    entries = 0
    for ch in client.chat.completions.create(messages=msgs, stream=True, logprobs=True,
                                             **dict(args, temperature=0)):
        if ch.choices and ch.choices[0].logprobs and ch.choices[0].logprobs.content:
            entries += len(ch.choices[0].logprobs.content)
    check(entries == r.usage.completion_tokens, "streamed chat logprobs: %d" % entries)
    c = client.completions.create(prompt="hello there", logprobs=3, **args)
    check(c.choices[0].logprobs is not None and
          len(c.choices[0].logprobs.token_logprobs) == c.usage.completion_tokens,
          "completion logprobs")
    c = client.completions.create(prompt="hello there", logit_bias={"300": 100},
                                  **dict(args, max_tokens=3))
    one = client.completions.create(prompt="hello there", logit_bias={"300": 100},
                                    **dict(args, max_tokens=1))
    check(c.choices[0].text == one.choices[0].text * 3, "logit_bias through the client")


def test_ollama_client(port):
    """The official ollama client's list, show and ps against our /api/."""
    try:
        import ollama
    except ImportError:
        check(False, "the ollama package is missing (scripts/test.sh installs it)")
        return
    client = ollama.Client(host=f"http://127.0.0.1:{port}", timeout=60)
    listed = client.list()
    check(len(listed.models) == 1 and listed.models[0].model == "tiny.gguf" and
          listed.models[0].details.format == "gguf", "ollama list: %r" % (listed,))
    shown = client.show("tiny.gguf")
    check(shown.modelinfo["general.architecture"] == "llama" and
          shown.details.quantization_level == "Q8_0", "ollama show: %r" % (shown,))
    running = client.ps()
    check(len(running.models) == 1 and running.models[0].context_length > 0,
          "ollama ps: %r" % (running,))
    opts = {"temperature": 0, "num_predict": 6}
    g = client.generate(model="tiny.gguf", prompt="hello", options=opts)
    check(g.done and isinstance(g.response, str) and g.eval_count > 0, "ollama generate: %r" % g)
    pieces = [p.response for p in client.generate(model="tiny.gguf", prompt="hello",
                                                  options=opts, stream=True)]
    check("".join(pieces) == g.response, "ollama generate streamed")
    msgs = [{"role": "user", "content": "hello"}]
    ch = client.chat(model="tiny.gguf", messages=msgs, options=opts)
    streamed = "".join(p.message.content or "" for p in
                       client.chat(model="tiny.gguf", messages=msgs, options=opts, stream=True))
    check(ch.message.role == "assistant" and streamed == ch.message.content,
          "ollama chat: %r / %r" % (ch.message.content, streamed))
    g = client.generate(model="tiny.gguf", prompt="x", format="json",
                        options={"seed": 2, "num_predict": 400})
    check(isinstance(json.loads(g.response), dict), "ollama format=json: %r" % g.response)
    try:
        client.generate(model="tiny.gguf", prompt="x", images=["aGk="])
        check(False, "ollama images are refused")
    except ollama.ResponseError as e:
        check(e.status_code == 400 and "images" in str(e.error), "ollama error: %r" % e)


def soak(port, n=200):
    results = [None] * n
    tokens = [0] * n

    def one(i):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            body = json.dumps({"prompt": f"request {i}", "max_tokens": 8, "stream": True,
                               "temperature": 0})
            c.request("POST", "/v1/completions", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            c.close()
            if r.status == 200:
                results[i] = "done" if b"data: [DONE]" in data else "truncated"
                tokens[i] = data.count(b"data: {") - 1
            elif r.status in (429, 503):
                results[i] = "refused"
            else:
                results[i] = f"status {r.status}"
        except Exception as e:  # a timeout is a hang
            results[i] = f"error {e!r}"

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    secs = time.time() - t0
    done = results.count("done")
    refused = results.count("refused")
    other = [r for r in results if r not in ("done", "refused")]
    check(not other, f"every request completes or is refused: {other[:5]}")
    check(done + refused == n, f"{n} requests accounted for ({done} done, {refused} refused)")
    check(done > 0, "some requests complete")
    print(f"soak: {n} concurrent streams, --parallel 4 --queue 64: {done} completed, "
          f"{refused} refused (503/429), {secs:.1f} s, {done / secs:.1f} req/s, "
          f"{sum(tokens) / secs:.1f} streamed chunks/s")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/health")
    check(c.getresponse().status == 200, "healthy after the soak")
    c.close()


def test_default_model(path):
    import openai
    proc, port = start(path)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused",
                               timeout=120, max_retries=0)
        r = client.chat.completions.create(
            model="m40", max_tokens=24, temperature=0,
            messages=[{"role": "user", "content": "What is the capital of France?"}])
        text = r.choices[0].message.content or ""
        print(f"default model: {text!r}")
        check("Paris" in text, "the default model answers the capital question")
    finally:
        check(stop(proc) == 0, "default-model server exits 0 on SIGTERM")


def main():
    with tempfile.TemporaryDirectory() as d:
        model = f"{d}/tiny.gguf"
        subprocess.run([BIN, "synth", "--shape", "tiny", "--type", "q8_0", "-o", model],
                       check=True, stdout=subprocess.DEVNULL)
        proc, port = start(model, "--parallel", "4", "--queue", "64")
        try:
            test_openai_client(port)
            test_ollama_client(port)
            soak(port)
        finally:
            check(stop(proc) == 0, "server exits 0 on SIGTERM")
    if len(sys.argv) > 2:
        test_default_model(sys.argv[2])
    report()


if __name__ == "__main__":
    main()
