#!/usr/bin/env python3
"""Reference fixtures for the CPU forward pass, computed outside m40-llm.

Writes tests/fixtures/forward/*.bin: for a few fixed prompts, the prompt's
token ids, 64 greedy tokens and, at every step, the top-16 logits and the
largest |logit| of that step, as Hugging Face transformers computes them in
float32 from the default model's GGUF (SmolLM2-135M-Instruct Q4_1). Nothing
here uses m40-llm's own code. docs/reference-fixtures.md says how the tests
use them.

transformers' GGUF loader dequantizes every tensor to float32 with the gguf
package (gguf.quants.dequantize) and, for llama, undoes the Q/K row
permutation llama.cpp's converter applies for GGML's "normal" (adjacent pair)
RoPE, so that transformers' rotate-half RoPE computes the same model. The
script checks both claims:

  * every weight the model holds equals gguf.quants.dequantize of the file's
    tensor, bit for bit (Q/K after the same reverse permutation; the tied
    lm_head equals token_embd);
  * an independent float64 NumPy forward pass that works on the file's own
    layout (no permutation, GGML's adjacent-pair RoPE, as llama.cpp runs it)
    gives the same prefill logits as transformers (to float32 rounding).

It also checks transformers' tokenizer against a tokenizer with llama.cpp's
"smollm" pre-tokenizer (digits split one by one, then GPT-2's regex), and the
KV-cached greedy loop against one uncached forward over prompt + generation.

Usage (versions pinned in requirements-forward.txt beside this file):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -r scripts/reference/requirements-forward.txt
    bash scripts/get-default-model.sh
    /tmp/refvenv/bin/python scripts/reference/make_forward_fixtures.py
    /tmp/refvenv/bin/python scripts/reference/make_forward_fixtures.py \\
        --dump tests/fixtures/forward/capital.bin      # read one back

Greedy decoding here is the plain argmax of the raw logits (ties: lowest id)
at every step, with no logit processor at all: no repetition penalty, and EOS
(<|im_end|>, id 2) is not special. If it wins, it is fed back like any other
token and generation goes on, so there are always exactly 64 new tokens.

File format (all little-endian, no padding, nothing after the last field):

    offset  size            field
    0       8               magic b"M40FWD01"
    8       4   u32         n_vocab (49152)
    12      4   u32         n_prompt: prompt token ids
    16      4   u32         n_gen: generated token ids (64)
    20      4   u32         n_steps: recorded steps (n_gen + 1)
    24      4   u32         top_k (16)
    28      4   u32         flags: bit 0 = the full logit row of step 0
                            is stored at the end
    32      32  u8[32]      SHA-256 of the model file (raw bytes)
    64      ...             7 strings, each a u32 byte length then that many
                            UTF-8 bytes (no terminator), in this order:
                              model     model file name
                              versions  "transformers X; torch Y; gguf Z; numpy W"
                              name      fixture name (the file's stem)
                              kind      "plain" or "chat"
                              source    the plain prompt, or the user message
                                        of the chat prompt
                              prompt    the exact text tokenized (for chat:
                                        rendered with the GGUF's chat template,
                                        add_generation_prompt=True)
                              output    the 64 generated ids, decoded
    then    4*n_prompt  u32 prompt ids (no BOS: add_bos_token is false)
    then    4*n_gen     u32 generated ids
    then    n_steps records of (4 + 8*top_k) bytes:
                f32           max |logit| over the step's whole row
                u32[top_k]    top ids, by logit descending (ties: lower id)
                f32[top_k]    their logits
    then    4*n_vocab   f32 full logit row of step 0, if flags bit 0

Step 0 is the prefill: logits at the last prompt position. Step s >= 1 is the
decode step that feeds generated id s-1 at position n_prompt + s - 1. The
generated id s (s < n_gen) is the top id of step s; step n_gen is recorded
too, though no token is taken from it.
"""

import argparse
import hashlib
import importlib.metadata
import os
import struct
import sys
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "forward")
MAGIC = b"M40FWD01"
N_GEN = 64
TOP_K = 16

# (name, kind, text). The first one also stores its full prefill logit row.
PROMPTS = [
    ("capital", "plain", "The capital of France is"),
    ("once_upon", "plain", "Once upon a time, in a small village,"),
    ("chat_boiling", "chat", "What is the boiling point of water in Celsius?"),
]
FULL_ROW_FOR = "capital"


# --------------------------------------------------------------------------
# file format


def write_fixture(path, fx):
    out = bytearray()
    out += MAGIC
    flags = 1 if fx["full_row"] is not None else 0
    out += struct.pack(
        "<6I", fx["n_vocab"], len(fx["prompt_ids"]), len(fx["gen_ids"]), len(fx["steps"]), TOP_K, flags
    )
    out += bytes.fromhex(fx["sha256"])
    for key in ("model", "versions", "name", "kind", "source", "prompt", "output"):
        b = fx[key].encode("utf-8")
        out += struct.pack("<I", len(b)) + b
    out += np.asarray(fx["prompt_ids"], dtype="<u4").tobytes()
    out += np.asarray(fx["gen_ids"], dtype="<u4").tobytes()
    for max_abs, ids, vals in fx["steps"]:
        out += np.float32(max_abs).astype("<f4").tobytes()
        out += np.asarray(ids, dtype="<u4").tobytes()
        out += np.asarray(vals, dtype="<f4").tobytes()
    if flags & 1:
        out += np.asarray(fx["full_row"], dtype="<f4").tobytes()
    with open(path + ".part", "wb") as f:
        f.write(out)
    os.replace(path + ".part", path)
    return len(out)


def read_fixture(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: bad magic")
    n_vocab, n_prompt, n_gen, n_steps, top_k, flags = struct.unpack_from("<6I", data, 8)
    fx = {"n_vocab": n_vocab, "top_k": top_k, "sha256": data[32:64].hex()}
    off = 64
    for key in ("model", "versions", "name", "kind", "source", "prompt", "output"):
        (n,) = struct.unpack_from("<I", data, off)
        fx[key] = data[off + 4 : off + 4 + n].decode("utf-8")
        off += 4 + n
    fx["prompt_ids"] = np.frombuffer(data, "<u4", n_prompt, off).tolist()
    off += 4 * n_prompt
    fx["gen_ids"] = np.frombuffer(data, "<u4", n_gen, off).tolist()
    off += 4 * n_gen
    steps = []
    for _ in range(n_steps):
        max_abs = float(np.frombuffer(data, "<f4", 1, off)[0])
        ids = np.frombuffer(data, "<u4", top_k, off + 4).tolist()
        vals = np.frombuffer(data, "<f4", top_k, off + 4 + 4 * top_k).astype(np.float32)
        steps.append((max_abs, ids, vals))
        off += 4 + 8 * top_k
    fx["steps"] = steps
    fx["full_row"] = None
    if flags & 1:
        fx["full_row"] = np.frombuffer(data, "<f4", n_vocab, off).astype(np.float32)
        off += 4 * n_vocab
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} trailing bytes")
    return fx


def dump(path):
    fx = read_fixture(path)
    for key in ("model", "versions", "name", "kind", "source"):
        print(f"{key}: {fx[key]}")
    print(f"sha256: {fx['sha256']}")
    print(f"prompt: {fx['prompt']!r}")
    print(f"prompt_ids ({len(fx['prompt_ids'])}): {fx['prompt_ids']}")
    print(f"gen_ids ({len(fx['gen_ids'])}): {fx['gen_ids']}")
    print(f"output: {fx['output']!r}")
    for s, (max_abs, ids, vals) in enumerate(fx["steps"]):
        top = " ".join(f"{i}:{v:.4f}" for i, v in zip(ids[:4], vals[:4]))
        print(f"step {s:2d}: max|logit| {max_abs:.4f}  margin {vals[0] - vals[1]:.4f}  top {top}")
    if fx["full_row"] is not None:
        print(f"full row of step 0: {fx['full_row'].size} floats, argmax {int(np.argmax(fx['full_row']))}")


# --------------------------------------------------------------------------
# independent checks


def topk_of(row, k=TOP_K):
    """Top-k of one float32 row: ids by value descending, ties by lower id."""
    order = np.argsort(-row.astype(np.float64), kind="stable")[:k]
    return order.tolist(), row[order].astype(np.float32)


def reverse_permute(w, n_head):
    """Undo llama.cpp's convert_hf_to_gguf permute of Q/K rows (as transformers does)."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def check_weights(model, reader, cfg):
    """Every model weight == gguf.quants.dequantize of the file's tensor, bit for bit."""
    import gguf.quants

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
    }
    per_layer = {
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    checked = 0
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name in names:
            hf = names[t.name]
        else:
            _, layer, kind, _ = t.name.split(".")
            hf = f"model.layers.{layer}.{per_layer[kind]}.weight"
            if kind == "attn_q":
                w = reverse_permute(w, cfg.num_attention_heads)
            elif kind == "attn_k":
                w = reverse_permute(w, cfg.num_key_value_heads)
        got = sd[hf]
        if got.dtype != np.float32 or got.shape != w.shape or not np.array_equal(got, w):
            raise SystemExit(f"weight mismatch: {t.name} ({t.tensor_type.name}) vs {hf}")
        checked += 1
    lm = sd.get("lm_head.weight")
    if lm is not None and not np.array_equal(lm, sd["model.embed_tokens.weight"]):
        raise SystemExit("lm_head.weight is not token_embd.weight")
    if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        raise SystemExit("lm_head is not tied to the token embedding")
    return checked


def numpy_forward_ggml_layout(reader, ids, hp):
    """Float64 llama forward over `ids` on the file's own tensors, as llama.cpp runs it.

    Q/K stay in the file's (permuted) row order and RoPE rotates adjacent pairs
    (GGML_ROPE_TYPE_NORM). Returns the logits of the last position.
    """
    import gguf.quants

    t = {x.name: x for x in reader.tensors}

    def W(name):
        x = t[name]
        return gguf.quants.dequantize(x.data, x.tensor_type).astype(np.float64)

    n_head, n_kv, d, eps, base = hp["n_head"], hp["n_kv"], hp["d"], hp["eps"], hp["base"]
    hd = d // n_head
    n = len(ids)
    emb = W("token_embd.weight")
    x = emb[ids]

    def rms(v, w):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * w

    pos = np.arange(n, dtype=np.float64)[:, None]
    theta = pos * base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)  # (n, hd/2)
    cos, sin = np.cos(theta), np.sin(theta)

    def rope_norm(v):  # v: (n, heads, hd), rotate (v[2i], v[2i+1])
        a, b = v[..., 0::2], v[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        out = np.empty_like(v)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for L in range(hp["n_layer"]):
        p = f"blk.{L}."
        h = rms(x, W(p + "attn_norm.weight"))
        q = rope_norm((h @ W(p + "attn_q.weight").T).reshape(n, n_head, hd))
        k = rope_norm((h @ W(p + "attn_k.weight").T).reshape(n, n_kv, hd))
        v = (h @ W(p + "attn_v.weight").T).reshape(n, n_kv, hd)
        att = np.empty((n, n_head, hd))
        for hh in range(n_head):
            kv = hh // (n_head // n_kv)
            sc = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
            sc /= sc.sum(axis=-1, keepdims=True)
            att[:, hh, :] = sc @ v[:, kv, :]
        x = x + att.reshape(n, d) @ W(p + "attn_output.weight").T
        h = rms(x, W(p + "ffn_norm.weight"))
        g = h @ W(p + "ffn_gate.weight").T
        u = h @ W(p + "ffn_up.weight").T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ W(p + "ffn_down.weight").T
    h = rms(x[-1:], W("output_norm.weight"))
    return (h @ emb.T)[0]


def smollm_reference_tokenizer(tok):
    """transformers' tokenizer with llama.cpp's 'smollm' pre-tokenizer put in.

    llama.cpp (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_SMOLLM) splits with
    "\\p{N}" first, then GPT-2's regex; that is HF's Digits(individual) then
    ByteLevel(use_regex=True), which is also what SmolLM2's own tokenizer.json
    says. transformers' GGUF loader knows no "smollm" entry and keeps plain
    GPT-2 splitting, which differs only on text with runs of digits.
    """
    import copy

    from tokenizers import pre_tokenizers

    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return backend


# --------------------------------------------------------------------------


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", MODEL_NAME))
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--dump", metavar="FILE", help="print a fixture file and exit")
    args = ap.parse_args()
    if args.dump:
        dump(args.dump)
        return

    import torch
    import transformers
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)

    sha = sha256_of(args.model)
    if sha != MODEL_SHA256:
        raise SystemExit(f"{args.model}: SHA-256 {sha}, expected {MODEL_SHA256}")
    versions = "transformers {}; torch {}; gguf {}; numpy {}".format(
        transformers.__version__,
        torch.__version__,
        importlib.metadata.version("gguf"),
        np.__version__,
    )
    print(f"model: {args.model}\nsha256: {sha}\nversions: {versions}")

    mdir, mfile = os.path.split(os.path.abspath(args.model))
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
    model = AutoModelForCausalLM.from_pretrained(
        mdir, gguf_file=mfile, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    cfg = model.config
    print(
        f"loaded in {time.time() - t0:.1f} s: {type(model).__name__}, layers {cfg.num_hidden_layers}, "
        f"d {cfg.hidden_size}, ffn {cfg.intermediate_size}, heads {cfg.num_attention_heads}/"
        f"{cfg.num_key_value_heads}, vocab {cfg.vocab_size}, rope {cfg.rope_parameters}, "
        f"eps {cfg.rms_norm_eps}, tied {cfg.tie_word_embeddings}, attn {cfg._attn_implementation}"
    )
    assert cfg._attn_implementation == "eager"
    assert next(model.parameters()).dtype == torch.float32

    reader = GGUFReader(args.model)
    n = check_weights(model, reader, cfg)
    print(f"check: all {n} GGUF tensors equal gguf.quants.dequantize bit for bit (Q/K reverse-permuted)")

    hp = {
        "n_layer": cfg.num_hidden_layers,
        "n_head": cfg.num_attention_heads,
        "n_kv": cfg.num_key_value_heads,
        "d": cfg.hidden_size,
        "eps": float(reader.fields["llama.attention.layer_norm_rms_epsilon"].contents()),
        "base": float(reader.fields["llama.rope.freq_base"].contents()),
    }
    ref_tok = smollm_reference_tokenizer(tok)

    os.makedirs(args.out, exist_ok=True)
    summary = []
    for name, kind, text in PROMPTS:
        if kind == "chat":
            prompt = tok.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        else:
            prompt = text
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids_default = tok(prompt)["input_ids"]
        if ids_default != ids:
            raise SystemExit(f"{name}: the tokenizer adds special tokens by default: {ids_default}")
        ref_ids = ref_tok.encode(prompt, add_special_tokens=False).ids
        if ref_ids != ids:
            raise SystemExit(f"{name}: ids differ from llama.cpp-style smollm splitting: {ids} vs {ref_ids}")
        if tok.decode(ids) != prompt:
            raise SystemExit(f"{name}: decode(encode(prompt)) != prompt")

        # greedy loop with the KV cache: plain argmax of the raw logits
        t0 = time.time()
        steps, gen, full_row = [], [], None
        rows = []
        with torch.inference_mode():
            out = model(torch.tensor([ids]), use_cache=True)
            past = out.past_key_values
            for s in range(N_GEN + 1):
                row = out.logits[0, -1].float().numpy().copy()
                rows.append(row)
                top_ids, top_vals = topk_of(row)
                steps.append((float(np.max(np.abs(row))), top_ids, top_vals))
                if s == 0 and name == FULL_ROW_FOR:
                    full_row = row
                if s == N_GEN:
                    break
                nxt = int(torch.argmax(out.logits[0, -1]))
                assert nxt == top_ids[0], (name, s, nxt, top_ids[:2])
                gen.append(nxt)
                out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
        dt = time.time() - t0

        # cross-checks: model.generate, one uncached forward, the NumPy GGML-layout forward
        with torch.inference_mode():
            g = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=N_GEN,
                min_new_tokens=0,
                repetition_penalty=1.0,
                eos_token_id=None,
                pad_token_id=tok.pad_token_id,
                stop_strings=None,
            )[0, len(ids) :].tolist()
            full = model(torch.tensor([ids + gen]), use_cache=False).logits[0].float().numpy()
        gen_note = "same" if g == gen else f"DIFFERS (generate stopped or diverged: {len(g)} ids)"
        uncached = full[len(ids) - 1 :]
        rel_uncached = max(
            float(np.max(np.abs(uncached[s] - rows[s]))) / steps[s][0] for s in range(N_GEN + 1)
        )
        if not np.array_equal(np.argmax(uncached[:N_GEN], axis=1), np.asarray(gen)):
            raise SystemExit(f"{name}: the uncached forward picks different greedy ids")
        np_logits = numpy_forward_ggml_layout(reader, ids, hp)
        rel_np = float(np.max(np.abs(np_logits - rows[0]))) / steps[0][0]
        if rel_np > 1e-4:
            raise SystemExit(f"{name}: NumPy GGML-layout forward differs: rel {rel_np:.3g}")

        margins = [float(v[0] - v[1]) for _, _, v in steps[:N_GEN]]
        rel_margin = min(m / st[0] for m, st in zip(margins, steps))
        output = tok.decode(gen)
        fx = {
            "n_vocab": cfg.vocab_size,
            "sha256": sha,
            "model": MODEL_NAME,
            "versions": versions,
            "name": name,
            "kind": kind,
            "source": text,
            "prompt": prompt,
            "output": output,
            "prompt_ids": ids,
            "gen_ids": gen,
            "steps": steps,
            "full_row": full_row,
        }
        path = os.path.join(args.out, name + ".bin")
        size = write_fixture(path, fx)
        back = read_fixture(path)
        assert back["gen_ids"] == gen and back["prompt_ids"] == ids and back["output"] == output
        assert all(np.array_equal(a[2], b[2]) and a[1] == b[1] for a, b in zip(back["steps"], steps))

        print(f"\n== {name} ({kind}) -> {os.path.relpath(path, ROOT)} ({size} bytes)")
        print(f"prompt: {prompt!r}")
        print(f"prompt ids ({len(ids)}): {ids}")
        print(f"generated ids: {gen}")
        print(f"continuation: {output!r}")
        print(f"greedy loop: {dt:.2f} s for prefill + {N_GEN} decode steps ({N_GEN / dt:.1f} tok/s)")
        print(f"model.generate(greedy, eos off): {gen_note}")
        print(f"uncached forward vs KV-cached steps: max |diff| / max|logit| = {rel_uncached:.3g}")
        print(f"NumPy float64 GGML-layout prefill vs transformers: max |diff| / max|logit| = {rel_np:.3g}")
        print(
            f"smallest top-1/top-2 margin over the {N_GEN} greedy steps: {min(margins):.4f} "
            f"(step {int(np.argmin(margins))}), relative to that step's max|logit|: {rel_margin:.3g}"
        )
        summary.append((name, size, min(margins), rel_margin, dt))

    # llama.cpp's smollm splitting vs transformers' GPT-2 splitting on digits (informational)
    probe = "In 2024, 1234567 people paid $3.50 each."
    a = tok(probe, add_special_tokens=False)["input_ids"]
    b = ref_tok.encode(probe, add_special_tokens=False).ids
    print(f"\ndigit probe {probe!r}:\n  transformers GGUF tokenizer: {a}\n  smollm (llama.cpp) split:    {b}")
    print("  same" if a == b else "  DIFFERENT: transformers does not split digits one by one for this GGUF")

    total = sum(s for _, s, _, _, _ in summary)
    print(f"\nwrote {len(summary)} fixtures, {total} bytes in all")
    for name, size, m, rm, dt in summary:
        print(f"  {name}: {size} bytes, min margin {m:.4f} (rel {rm:.3g}), {dt:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
