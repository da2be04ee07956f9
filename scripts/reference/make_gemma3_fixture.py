#!/usr/bin/env python3
"""Greedy continuations of Gemma 3 270M (Q4_K_M GGUF) by Hugging Face
transformers, the reference for tests/test_real_greedy.c.

transformers loads the GGUF on the CPU in float32 (its GGUF loader
dequantizes every tensor with the gguf package) with its own tokenizer;
for each prompt the fixture keeps the prompt's token ids (BOS first) and
the 32 token ids greedy decoding adds. Nothing of m40-llm is used.

Usage (versions pinned in requirements-forward.txt; the model from
scripts/get-gemma3-270m.sh):

    /tmp/refvenv/bin/python scripts/reference/make_gemma3_fixture.py models/gemma-3-270m-q4_k_m.gguf
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "forward", "gemma3-270m.json")
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village by the sea,",
]
N_NEW = 32


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_gemma3_fixture.py GEMMA3_270M_GGUF")
    path = os.path.abspath(sys.argv[1])
    folder, name = os.path.dirname(path), os.path.basename(path)
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    cases = []
    for prompt in PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=N_NEW, do_sample=False)
        new = out[0][ids.shape[1]:].tolist()
        cases.append({"prompt": prompt, "prompt_ids": ids[0].tolist(), "greedy_ids": new,
                      "greedy_text": tok.decode(new)})
        print(repr(prompt), "->", repr(tok.decode(new)))
    fixture = {"model": name, "transformers": transformers.__version__,
               "torch": torch.__version__, "n_new": N_NEW, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
