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

Mixtral (a llama GGUF with expert tensors) has no GGUF loader in
transformers: build_mixtral makes MixtralForCausalLM from the file's keys
and its tensors, read with the gguf package, undoing the Q/K row order
that GGUF's llama layout uses for RoPE (as transformers' llama GGUF loader
does).
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
         ("mini-gemma3", "f32", 5), ("mini-gemma2", "f32", 5), ("mini-qwen3moe", "f32", 5),
         ("mini-mixtral", "f32", 5), ("mini-phi3", "f32", 5), ("mini-qwen3-yarn", "f32", 5),
         ("mini-phi3-longrope", "f32", 5),
         # 80 tokens, past LongRoPE's original context of 64: the long factors
         ("mini-phi3-longrope", "f32", 5, "mini-phi3-longrope-long",
          [(7 * i * i + 3 * i + 1) % 512 for i in range(80)])]
# config values transformers' GGUF loader does not read from the file (it
# keeps the family's defaults), given as the synth file has them
OVERRIDES = {"mini-gemma2": {"attn_logit_softcapping": 0.05, "final_logit_softcapping": 0.5},
             "mini-qwen3moe": {"moe_intermediate_size": 128},
             # Phi3Config's default pad id (32000) is past a synth vocabulary
             "mini-phi3": {"pad_token_id": None},
             # transformers' GGUF loader does not read rope.scaling.*
             "mini-qwen3-yarn": {"rope_parameters": {
                 "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                 "original_max_position_embeddings": 64}}}
TOKENS = [1, 17, 300, 42, 511, 3, 99, 100, 101, 5, 260, 77, 8, 450, 12, 31]


def fnv1a64(path):
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def unpermute(w, n_head):
    """GGUF's llama Q/K rows (RoPE pairs adjacent) back to Hugging Face's
    (pairs half a head apart)."""
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def build_mixtral(path):
    """MixtralForCausalLM with the weights of a llama GGUF with experts."""
    import gguf

    r = gguf.GGUFReader(path)

    def kv(key):
        f = r.fields["llama." + key]
        return f.parts[f.data[0]].tolist()[0]

    t = {x.name: np.array(x.data, dtype=np.float32) for x in r.tensors}
    n_layer, n_head, n_kv = kv("block_count"), kv("attention.head_count"), kv(
        "attention.head_count_kv")
    cfg = transformers.MixtralConfig(
        vocab_size=t["token_embd.weight"].shape[0], hidden_size=kv("embedding_length"),
        intermediate_size=kv("feed_forward_length"), num_hidden_layers=n_layer,
        num_attention_heads=n_head, num_key_value_heads=n_kv,
        num_local_experts=kv("expert_count"), num_experts_per_tok=kv("expert_used_count"),
        rms_norm_eps=kv("attention.layer_norm_rms_epsilon"), rope_theta=kv("rope.freq_base"),
        max_position_embeddings=kv("context_length"), sliding_window=None,
        tie_word_embeddings="output.weight" not in t)
    sd = {"model.embed_tokens.weight": t["token_embd.weight"],
          "model.norm.weight": t["output_norm.weight"],
          "lm_head.weight": t.get("output.weight", t["token_embd.weight"])}
    for i in range(n_layer):
        b, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "self_attn.q_proj.weight"] = unpermute(t[b + "attn_q.weight"], n_head)
        sd[h + "self_attn.k_proj.weight"] = unpermute(t[b + "attn_k.weight"], n_kv)
        sd[h + "self_attn.v_proj.weight"] = t[b + "attn_v.weight"]
        sd[h + "self_attn.o_proj.weight"] = t[b + "attn_output.weight"]
        sd[h + "input_layernorm.weight"] = t[b + "attn_norm.weight"]
        sd[h + "post_attention_layernorm.weight"] = t[b + "ffn_norm.weight"]
        sd[h + "mlp.gate.weight"] = t[b + "ffn_gate_inp.weight"]
        # experts [E][rows][cols]; transformers stacks gate over up
        sd[h + "mlp.experts.gate_up_proj"] = np.concatenate(
            [t[b + "ffn_gate_exps.weight"], t[b + "ffn_up_exps.weight"]], axis=1)
        sd[h + "mlp.experts.down_proj"] = t[b + "ffn_down_exps.weight"]
    model = transformers.MixtralForCausalLM(cfg).to(torch.float32)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    model.config._attn_implementation = "eager"
    return model


BUILDERS = {"mini-mixtral": build_mixtral}


def longrope_params(path, long_only=False):
    """Phi-3 LongRoPE as the file has it (transformers' GGUF loader does not
    read rope_factors_* or rope.scaling.*). long_only: the long factors as
    both sets. m40-llm picks the long ones when the context is longer than
    the original one (llama.cpp's rule); transformers 5.24 should switch to
    them once a sequence is that long, but in a forward without a cache it
    kept the short ones, so the long case's reference is given only those."""
    import gguf

    r = gguf.GGUFReader(path)
    t = {x.name: np.array(x.data, dtype=np.float32) for x in r.tensors}

    def kv(key):
        f = r.fields["phi3." + key]
        return f.parts[f.data[0]].tolist()[0]

    return {"pad_token_id": None, "rope_parameters": {
        "rope_type": "longrope", "rope_theta": kv("rope.freq_base"),
        "long_factor": t["rope_factors_long.weight"].tolist(),
        "short_factor": t["rope_factors_long.weight" if long_only else "rope_factors_short.weight"]
        .tolist(),
        "original_max_position_embeddings": kv("rope.scaling.original_context_length"),
        "attention_factor": kv("rope.scaling.attn_factor")}}


# config values read from the file itself, for what the loader leaves out
FILE_OVERRIDES = {"mini-phi3-longrope": longrope_params,
                  "mini-phi3-longrope-long": lambda path: longrope_params(path, long_only=True)}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_arch_fixtures.py M40_LLM_BINARY [SHAPE...]")
    binary, only = sys.argv[1], set(sys.argv[2:])
    torch.set_num_threads(2)
    for case in CASES:
        shape, wtype, seed = case[:3]
        name, tokens = (case[3], case[4]) if len(case) > 3 else (shape, TOKENS)
        if only and shape not in only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.gguf")
            cmd = ["synth", "--shape", shape, "--type", wtype, "--seed", str(seed), "-o"]
            subprocess.run([binary, *cmd, path], check=True, stdout=subprocess.DEVNULL)
            if shape in BUILDERS:
                model = BUILDERS[shape](path)
            else:
                extra = dict(OVERRIDES.get(shape, {}))
                if name in FILE_OVERRIDES:
                    extra.update(FILE_OVERRIDES[name](path))
                model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file="model.gguf",
                                                             torch_dtype=torch.float32,
                                                             attn_implementation="eager", **extra)
            model.eval()
            with torch.no_grad():
                out = model(torch.tensor([tokens]), use_cache=False)
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
                "tokens": tokens,
                "logits": [[float(v) for v in row] for row in logits],
            }
            with open(os.path.join(OUT, name + ".json"), "w") as f:
                json.dump(fixture, f, separators=(",", ":"))
                f.write("\n")
            print("%s: %s, logits %s, max |logit| %.4f" %
                  (name, type(model).__name__, logits.shape, float(np.abs(logits).max())))


if __name__ == "__main__":
    main()
