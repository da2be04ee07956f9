#!/usr/bin/env python3
"""Reference logits for every architecture on a tiny synth model.

For each architecture's tiny synth shape (random weights, written by
`m40-llm synth`: the weights are only numbers, nothing of m40-llm's forward
pass is used), Hugging Face transformers loads the GGUF on the CPU in
float32 (its GGUF loader dequantizes every tensor with the gguf package) and
runs one forward over a fixed sequence of token ids; the logits of every
position are written to tests/fixtures/forward/<shape>.json, with the synth
command and the file's FNV-1a 64 hash so the test can check it runs the same
file. tests/test_arch_reference.c compares m40-llm's CPU forward with them.

Usage (versions pinned in requirements-forward.txt):

    /tmp/refvenv/bin/python scripts/reference/make_arch_fixtures.py build/src/m40-llm [SHAPE...]

(only the named shapes' fixtures are rewritten when shapes are given).

The tokenizer is not loaded (a synth file's byte vocabulary is not the
architecture's): the model gets token ids directly.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "forward")

# shape, weight type, seed: F32 weights, so dequantization is exact and the
# comparison is of the forward passes alone
CASES = [("mini-qwen3", "f32", 5), ("mini-qwen2", "f32", 5), ("mini", "f32", 5),
         ("mini-gemma3", "f32", 5), ("mini-gemma2", "f32", 5), ("mini-qwen3moe", "f32", 5)]
# config values transformers' GGUF loader does not read from the file (it
# keeps the family's defaults), given as the synth file has them
OVERRIDES = {"mini-gemma2": {"attn_logit_softcapping": 0.05, "final_logit_softcapping": 0.5},
             "mini-qwen3moe": {"moe_intermediate_size": 128}}
TOKENS = [1, 17, 300, 42, 511, 3, 99, 100, 101, 5, 260, 77, 8, 450, 12, 31]


def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_arch_fixtures.py M40_LLM_BINARY [SHAPE...]")
    binary, only = sys.argv[1], set(sys.argv[2:])
    torch.set_num_threads(2)
    for shape, wtype, seed in CASES:
        if only and shape not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.gguf")
            cmd = ["synth", "--shape", shape, "--type", wtype, "--seed", str(seed), "-o"]
            subprocess.run([binary, *cmd, path], check=True, stdout=subprocess.DEVNULL)
            model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file="model.gguf",
                                                         torch_dtype=torch.float32,
                                                         attn_implementation="eager",
                                                         **OVERRIDES.get(shape, {}))
            model.eval()
            with torch.no_grad():
                out = model(torch.tensor([TOKENS]), use_cache=False)
            logits = out.logits[0].to(torch.float32).numpy()
            fixture = {
                "shape": shape,
                "type": wtype,
                "seed": seed,
                "synth": "m40-llm " + " ".join(cmd) + " FILE",
                "fnv1a64": fnv1a64(path),
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "model_class": type(model).__name__,
                "tokens": TOKENS,
                "logits": [[float(v) for v in row] for row in logits],
            }
            with open(os.path.join(OUT, shape + ".json"), "w") as f:
                json.dump(fixture, f, separators=(",", ":"))
                f.write("\n")
            print("%s: %s, logits %s, max |logit| %.4f" %
                  (shape, type(model).__name__, logits.shape, float(np.abs(logits).max())))


if __name__ == "__main__":
    main()
