#!/usr/bin/env python3
"""chat-ttft.py BINARY MODEL [--device cpu|cuda] [--turns 10] [--system-tokens 1000] [--chats 1]

Time to first token per turn of a scripted chat, with the prompt cache and
without (issue 20): a server on MODEL, a system prompt of about
--system-tokens tokens, then --turns user turns, each sent with the whole
history (the assistant's earlier answers included), greedy, 32 tokens an
answer. Runs the chat twice, cache_prompt off then on, and prints a
markdown table of TTFT per turn (the server's own ttft_ms, queue excluded)
and whether the two runs' answers are the same bytes, turn by turn.
With --chats N it runs N chats (each its own system prompt and questions
in another order) and prints, after the first chat's table, how many
answers differ with the cache and where each first differs.
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

QUESTIONS = ["What is a prime number?", "Name three primes.", "Is 91 prime?",
             "What is the largest known prime type?", "Why do primes matter in cryptography?",
             "What is a twin prime?", "Give an example of twin primes.",
             "What is the sieve of Eratosthenes?", "How fast is it?", "Summarize our chat."]


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def chat(port, system, turns, cache, order=0):
    msgs = [{"role": "system", "content": system}]
    rows = []
    qs = QUESTIONS[order % len(QUESTIONS):] + QUESTIONS[:order % len(QUESTIONS)]
    for q in qs[:turns]:
        msgs.append({"role": "user", "content": q})
        t0 = time.time()
        # /generate gives the server's timings; the chat template by hand is
        # not needed: /v1/chat/completions with timings is not OpenAI's, so
        # use the ollama endpoint, which reports prompt_eval_duration
        r = post(port, "/api/chat", {"model": "m", "messages": msgs, "stream": False,
                                     "options": {"temperature": 0, "num_predict": 32},
                                     "cache_prompt": cache})
        wall = time.time() - t0
        text = r["message"]["content"]
        msgs.append({"role": "assistant", "content": text})
        rows.append((r.get("prompt_eval_count", 0), r.get("prompt_eval_duration", 0) / 1e6,
                     wall, text))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--system-tokens", type=int, default=1000)
    ap.add_argument("--chats", type=int, default=1)
    a = ap.parse_args()
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([a.binary, "serve", "-m", a.model, "--device", a.device, "--port", "0",
                             "-c", "8192"], stdout=subprocess.DEVNULL, stderr=err)
    port = None
    for _ in range(1200):
        err.seek(0)
        m = re.search(rb"http://127\.0\.0\.1:(\d+)", err.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.1)
    if port is None:
        err.seek(0)
        sys.exit("server did not start: " + err.read().decode(errors="replace"))
    try:
        # about 5 tokens a sentence of this kind
        system = " ".join(f"Rule {i}: answer plainly, cite no sources, keep numbers exact."
                          for i in range(a.system_tokens // 12))
        off = chat(port, system, a.turns, False)
        on = chat(port, system, a.turns, True)
        diffs, total = [], 0
        for k in range(1, a.chats):
            sysk = f"Chat {k}. " + system.replace("Rule", f"R{k}")
            x = chat(port, sysk, a.turns, False, k)
            y = chat(port, sysk, a.turns, True, k)
            for t, (p, q) in enumerate(zip(x, y)):
                total += 1
                if p[3] != q[3]:
                    at = next((i for i, (u, v) in enumerate(zip(p[3], q[3])) if u != v),
                              min(len(p[3]), len(q[3])))
                    diffs.append((k, t + 1, at, p[3][max(0, at - 20):at + 20],
                                  q[3][max(0, at - 20):at + 20]))
    finally:
        proc.terminate()
        proc.wait()
    print(f"| turn | prompt tokens | prompt ms, no cache | prompt ms, cache | ratio | same answer |")
    print("|---|---|---|---|---|---|")
    for i, (x, y) in enumerate(zip(off, on)):
        ratio = x[1] / y[1] if y[1] else float("inf")
        print(f"| {i + 1} | {x[0]} | {x[1]:.1f} | {y[1]:.1f} | {ratio:.1f} | "
              f"{'yes' if x[3] == y[3] else 'NO'} |")
    if a.chats > 1:
        same = sum(x[3] == y[3] for x, y in zip(off, on))
        print(f"\n{a.chats} chats, {total + len(off)} answers: "
              f"{len(diffs) + len(off) - same} differ with the cache")
        for k, t, at, p, q in diffs:
            print(f"- chat {k} turn {t}, byte {at}: {p!r} vs {q!r}")


if __name__ == "__main__":
    main()
