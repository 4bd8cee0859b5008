"""A stand-in for OpenAI's GPT-2 in Hugging Face's cache: the real checkpoint's files and layout, random
weights shaped so that the logits have the real model's scale.

Placed where ``from_pretrained("openai-community/gpt2")`` leaves the real files, it lets the tests take
the chapters' OpenAI path offline: the code path is the same, only the numbers differ. Also a script:
``python tests/hf_standin.py HF_HUB_CACHE [--layers N]``.

**The layout** is the hub's ``model.safetensors`` of ``openai-community/gpt2``: the ``GPT2Model`` keys
*without* the ``transformer.`` prefix (``wte.weight``, ``h.0.attn.c_attn.weight``, ..., ``ln_f.bias``), no
``lm_head.weight`` (it is tied to ``wte``), the Conv1D weights stored ``(in, out)``, and in every block the
causal-mask buffer ``h.N.attn.bias`` (float32, ``(1, 1, 1024, 1024)``, ones on and below the diagonal) that
the original checkpoint carried. ``config.json`` has the real file's fields, dropout 0.1 included (a loader
must not train with it: ``from_pretrained`` and ``load_hf`` return models in eval mode).

**The scale.** A GPT-2 freshly initialised (weights N(0, 0.02), LayerNorm gains 1) has logits of standard
deviation about 0.5 around 0; the trained model's are of order 100 in magnitude (TOOLCHAIN.md), and float32
rounding grows with them, so a tolerance tuned on the former says nothing about the latter. What the real
model is documented to produce, and what the stand-in copies:

* the logits of one position are a large *shared* negative offset plus a spread of a few units: the printed
  last-position logits of ``gpt2`` for "I am female. Hello, my name is" (github.com/Sciform/sciform-nano-gpt-2,
  its logits notebook) are ``-63.0, -64.0, -67.9, ..., -73.2, -72.5, -64.9``, i.e. an offset near -70 and a
  spread of about 4 (the sample standard deviation of those six), the top token's probability 2e-4;
* the offset moves from position to position (softmax ignores it; float32 rounding does not).

How: the offset comes from a direction ``u`` shared by every token's embedding (``wte += GAMMA * u``; the
position embeddings take it away again, ``wpe -= GAMMA * u``, so the model's inputs are unchanged) that the
final LayerNorm's bias points against (``ln_f.bias = -BETA * u``), so every logit gets about
``-BETA * GAMMA = OFFSET`` plus a per-position term ``GAIN * GAMMA * (n . u)`` (n is the normalised final
hidden state, so that term has standard deviation ``GAIN * GAMMA``); the spread comes from the final
LayerNorm's gain ``GAIN`` times the random embeddings: standard deviation ``GAIN * 0.02 * sqrt(768)``.
``logit_statistics`` measures the result, and tests/test_hf.py holds it to those numbers.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

REVISION = "0" * 40  # the commit hash a snapshot folder is named after; any 40 hex digits do

# The statistics aimed at (see the module's docstring for where they come from).
OFFSET = -70.0        # the shared offset of a position's logits
SPREAD = 4.0          # their standard deviation over the vocabulary
POSITION_SWING = 7.0  # the standard deviation of the offset from position to position
INIT_STD = 0.02       # GPT-2's initialisation (config.json's initializer_range)

# The real config.json of openai-community/gpt2 (its n_layer replaced when a smaller stand-in is asked for).
REAL_CONFIG = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": None,
    "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
    "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}


def real_scale(model) -> None:
    """Reshape a freshly initialised GPT-2-shaped ``model`` (ours) in place so that its logits have the
    real model's offset, spread and swing (module docstring)."""
    import torch

    n_embd = model.config.n_embd
    gain = SPREAD / (INIT_STD * math.sqrt(n_embd))   # spread = gain * 0.02 * sqrt(n_embd)
    gamma = POSITION_SWING / gain                      # swing = gain * gamma
    beta = -OFFSET / gamma                             # offset = -beta * gamma
    u = torch.randn(n_embd)
    u /= u.norm()
    with torch.no_grad():
        model.wte.weight += gamma * u
        model.wpe.weight -= gamma * u   # the inputs (token + position) stay as initialised
        model.ln_f.weight.fill_(gain)
        model.ln_f.bias.copy_(-beta * u)


def logit_statistics(logits) -> dict[str, float]:
    """What the docstring's figures describe, measured on logits of shape (..., T, vocab)."""
    offsets = logits.mean(-1)
    return {"offset": offsets.mean().item(), "swing": offsets.std().item() if offsets.numel() > 1 else 0.0,
            "spread": logits.std(-1).mean().item(), "max_abs": logits.abs().max().item()}


def real_layout(state: dict, n_positions: int) -> dict:
    """Our ``ours_to_hf`` state dict (``transformer.``-prefixed) as the hub's ``model.safetensors`` holds it:
    no prefix, plus each block's causal-mask buffer ``h.N.attn.bias``."""
    import torch

    out = {k.removeprefix("transformer."): v for k, v in state.items()}
    mask = torch.tril(torch.ones(n_positions, n_positions)).view(1, 1, n_positions, n_positions)
    for block in sorted({k.split(".")[1] for k in out if k.startswith("h.")}, key=int):
        out[f"h.{block}.attn.bias"] = mask
    return out


def write_standin(hub_cache: Path, n_layer: int = 12, seed: int = 0) -> Path:
    """Write config.json, model.safetensors, vocab.json and merges.txt of a random GPT-2 (124M's shape
    unless ``n_layer`` is smaller) with real-scale logits, in the real files' layout, as the cached snapshot
    of ``openai-community/gpt2``; return its folder."""
    import torch
    from safetensors.torch import save_file

    from gpt2lib import GPT, GPTConfig
    from gpt2lib.hf import OPENAI_GPT2, ours_to_hf
    from gpt2lib.tokenizer import BPETokenizer

    repo = Path(hub_cache) / ("models--" + OPENAI_GPT2.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset("gpt2", n_layer=n_layer))
    real_scale(model)
    state = real_layout(ours_to_hf(model), model.config.block_size)
    # the buffers share one tensor; safetensors stores each key's bytes, as the real file does
    save_file({k: v.contiguous().clone() if k.endswith("attn.bias") else v for k, v in state.items()},
              str(snapshot / "model.safetensors"), metadata={"format": "pt"})
    (snapshot / "config.json").write_text(json.dumps(REAL_CONFIG | {"n_layer": n_layer}, indent=2) + "\n")
    BPETokenizer.gpt2().save_gpt2_files(snapshot)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hub_cache", type=Path)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()
    print(write_standin(args.hub_cache, args.layers))
