"""A stand-in for OpenAI's GPT-2 in Hugging Face's cache: GPT-2's configuration and vocabulary, random weights.

Placed where ``from_pretrained("openai-community/gpt2")`` leaves the real files, it lets the tests take
the chapters' OpenAI path offline: the code path is the same, only the numbers differ. Also a script:
``python tests/hf_standin.py HF_HUB_CACHE [--layers N]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REVISION = "0" * 40  # the commit hash a snapshot folder is named after; any 40 hex digits do


def write_standin(hub_cache: Path, n_layer: int = 12, seed: int = 0) -> Path:
    """Write config.json, model.safetensors, vocab.json and merges.txt of a random GPT-2 (124M's shape
    unless ``n_layer`` is smaller) as the cached snapshot of ``openai-community/gpt2``; return its folder."""
    import torch
    from safetensors.torch import save_file

    from gpt2lib import GPT, GPTConfig
    from gpt2lib.hf import OPENAI_GPT2, config_to_hf, ours_to_hf
    from gpt2lib.tokenizer import BPETokenizer

    repo = Path(hub_cache) / ("models--" + OPENAI_GPT2.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset("gpt2", n_layer=n_layer))
    save_file(ours_to_hf(model), str(snapshot / "model.safetensors"), metadata={"format": "pt"})
    (snapshot / "config.json").write_text(json.dumps(config_to_hf(model.config), indent=2) + "\n")
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
