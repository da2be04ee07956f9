#!/usr/bin/env python3
"""loadtest.py - drive `m40-llm serve` with concurrent streaming clients.

    scripts/loadtest.py --url http://127.0.0.1:8080 --clients 8 [--requests 4]
    scripts/loadtest.py --bin dist/gpu/m40-llm --model 7b.gguf --clients 8 \\
        --server-args "--parallel 8 -c 512"

Each client sends its requests one after another to /v1/completions with
`stream: true` (greedy, ignore_eos, --max-tokens each, a prompt of about
--prompt-words words, different per request) and reads the Server-Sent
Events as they come. Reported (text, or one JSON object with --json):

- aggregate t/s: completion tokens of all requests (their `usage`) over the
  wall time from the first request sent to the last stream ended;
- TTFT p50/p99: request sent to its first text chunk;
- inter-token p50/p99: gaps between a stream's consecutive text chunks
  (a chunk is a token, or a few when bytes wait for a whole character or a
  possible stop string);
- requests that failed (non-200 or a broken stream), which should be none.

With --bin and --model it starts the server itself on a free port (and
stops it); with --url it uses a running one. Standard library only.
"""
import argparse
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def one_request(host, port, body, timeout):
    """Returns (ttft_s, [gaps_s], completion_tokens), or a string saying why
    the request failed."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    t0 = time.time()
    try:
        c.request("POST", "/v1/completions", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            return "HTTP %d: %s" % (r.status, r.read()[:300].decode(errors="replace"))
        ttft, last, gaps, tokens, done = None, None, [], 0, False
        while True:
            line = r.fp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                break
            # a token may end inside a character: the server's JSON can hold
            # invalid UTF-8 (issue 19), which must not count as a failure here
            chunk = json.loads(data.decode("utf-8", "replace"))
            if "error" in chunk:
                return "error in the stream: %r" % chunk["error"]
            now = time.time()
            text = chunk["choices"][0].get("text", "")
            if text:
                if ttft is None:
                    ttft = now - t0
                else:
                    gaps.append(now - last)
                last = now
            if chunk.get("usage"):
                tokens = chunk["usage"].get("completion_tokens", 0)
        if not done:
            return "the stream ended without [DONE]"
        return (ttft if ttft is not None else time.time() - t0, gaps, tokens)
    except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
        return "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()


def start_server(binary, model, extra):
    proc = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    seen = b""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        m = re.search(rb"http://([0-9.]+):(\d+)", line)
        if m:
            # keep draining stderr so the server never blocks on it
            threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()
            return proc, m.group(1).decode(), int(m.group(2))
    proc.kill()
    sys.exit("loadtest: the server did not start: " + seen.decode(errors="replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--bin", help="m40-llm binary to start a server with (with --model)")
    ap.add_argument("--model", help="GGUF for the server started here")
    ap.add_argument("--server-args", default="", help="more `serve` flags, e.g. '--parallel 8'")
    ap.add_argument("--clients", type=int, default=8, help="concurrent streaming clients")
    ap.add_argument("--requests", type=int, default=2, help="requests per client, one by one")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    a = ap.parse_args()
    proc = None
    if a.url:
        u = urllib.parse.urlparse(a.url)
        host, port = u.hostname, u.port or 80
    elif a.bin and a.model:
        proc, host, port = start_server(a.bin, a.model, shlex.split(a.server_args))
    else:
        sys.exit("loadtest: give --url, or --bin and --model")

    results, lock = [], threading.Lock()

    def client(ci):
        for k in range(a.requests):
            words = " ".join("w%d_%d_%d" % (ci, k, i) for i in range(a.prompt_words))
            body = {"prompt": words, "max_tokens": a.max_tokens, "temperature": 0,
                    "ignore_eos": True, "stream": True}
            r = one_request(host, port, body, a.timeout)
            with lock:
                results.append(r)

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    if proc:
        proc.terminate()
        proc.wait(timeout=60)

    ok = [r for r in results if not isinstance(r, str)]
    failures = [r for r in results if isinstance(r, str)]
    ttft = [r[0] for r in ok]
    gaps = [g for r in ok for g in r[1]]
    decoding_s = sum(gaps)
    tokens = sum(r[2] for r in ok)
    report = {
        "clients": a.clients,
        "requests": len(results),
        "failed": len(results) - len(ok),
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "aggregate_tps": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_p50_ms": round(1e3 * percentile(ttft, 50), 2),
        "ttft_p99_ms": round(1e3 * percentile(ttft, 99), 2),
        "itl_p50_ms": round(1e3 * percentile(gaps, 50), 2),
        "itl_p99_ms": round(1e3 * percentile(gaps, 99), 2),
        # a stream's speed between its first and last token (all gaps
        # pooled): with 1 client, what to set beside bench's tg
        "stream_tps": round(len(gaps) / decoding_s, 2) if decoding_s > 0 else 0.0,
    }
    if failures:
        report["first_failure"] = failures[0]
    if a.json:
        print(json.dumps(report))
    else:
        print("%(clients)d clients, %(requests)d requests (%(failed)d failed): "
              "%(completion_tokens)d tokens in %(wall_s).2f s = %(aggregate_tps).1f t/s; "
              "TTFT p50 %(ttft_p50_ms).1f ms, p99 %(ttft_p99_ms).1f ms; "
              "inter-token p50 %(itl_p50_ms).1f ms, p99 %(itl_p99_ms).1f ms; "
              "a stream decodes at %(stream_tps).1f t/s" % report)
        if failures:
            print("first failure: " + failures[0])
    sys.exit(1 if report["failed"] else 0)


if __name__ == "__main__":
    main()
