"""Kernel-free figures: the data they embed, the arithmetic they share with gpt2lib.generation, bad input.

The browser side (the controls redraw the figure in the built book) is tests/test_browser_interactive.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from gpt2lib import interactive
from gpt2lib.generation import filter_logits


def _data(markup: str) -> dict:
    match = re.search(r"var DATA=(\{.*?\});\n", markup, re.S)
    assert match, "the figure's script carries no DATA"
    return json.loads(match.group(1))


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, 0, 1.0), (0.7, 5, 1.0), (1.5, 0, 0.8), (0.4, 12, 0.5), (2.0, 1, 1.0), (1.0, 0, 0.01)])
def test_filter_probs_agrees_with_generate(temperature, top_k, top_p):
    logits = torch.randn(200, generator=torch.Generator().manual_seed(0)) * 3
    ours = torch.tensor(interactive.filter_probs(logits.tolist(), temperature, top_k or None,
                                                 top_p if top_p < 1 else None), dtype=torch.float64)
    theirs = torch.softmax(filter_logits(logits.double(), temperature, top_k or None,
                                         top_p if top_p < 1 else None), dim=-1)
    torch.testing.assert_close(ours, theirs, atol=1e-9, rtol=0)
    if top_k and top_p == 1.0:
        assert int((ours > 0).sum()) == top_k


def test_filter_probs_rejects_bad_settings():
    with pytest.raises(ValueError):
        interactive.filter_probs([0.0, 1.0], temperature=0)
    with pytest.raises(ValueError):
        interactive.filter_probs([0.0, 1.0], top_p=1.5)


def test_attention_explorer_embeds_maps_and_tokens():
    maps = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    fig = interactive.attention_explorer(maps, ["The", " cat", " sat", "."], layer=1, head=2)
    data = _data(fig.data)
    assert len(data["maps"]) == 2 and len(data["maps"][0]) == 3 and len(data["maps"][0][0]) == 4
    assert abs(data["maps"][1][2][3][1] - maps[1, 2, 3, 1].item()) < 1e-3
    assert data["tokens"] == ["The", " cat", " sat", "."]
    assert (data["layer"], data["head"], data["query"]) == (1, 2, 3)
    root = re.search(r'<div id="([^"]+)" class="gpt2-interactive gpt2-attention-explorer"', fig.data)
    assert root and f'var ROOT_ID="{root.group(1)}"' in fig.data


def test_attention_explorer_accepts_a_batch_of_one_and_gives_unique_ids():
    maps = torch.softmax(torch.randn(1, 1, 2, 3, 3), dim=-1)
    a = interactive.attention_explorer(maps, list("abc"))
    b = interactive.attention_explorer(maps, list("abc"))
    ids = [re.search(r'id="(gpt2-attn-[^"]+)"', f.data).group(1) for f in (a, b)]
    assert ids[0] != ids[1]


@pytest.mark.parametrize("maps, tokens, match", [
    (torch.rand(3, 3), list("abc"), "n_layer, n_head"),
    (torch.rand(1, 1, 3, 3), list("ab"), "2 tokens"),
])
def test_attention_explorer_rejects_bad_shapes(maps, tokens, match):
    with pytest.raises(ValueError, match=match):
        interactive.attention_explorer(maps, tokens)


def test_sampling_explorer_keeps_the_most_likely_tokens_and_the_tail_mass():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0, -1.0])
    fig = interactive.sampling_explorer(logits, ["a", "b", "c", "d", "e"], prompt="x", keep=3, top_k=2)
    data = _data(fig.data)
    ctx = data["contexts"][0]
    assert ctx["ids"] == [1, 3, 2] and ctx["labels"] == ["b", "d", "c"] and ctx["vocab"] == 5
    p = torch.softmax(logits, dim=-1)
    assert ctx["tail"] == pytest.approx(float(p[0] + p[4]), abs=1e-6)
    assert data["top_k"] == 2 and data["contexts"][0]["prompt"] == "x"


def test_sampling_explorer_takes_several_contexts_and_a_label_function():
    fig = interactive.sampling_explorer({"one": torch.randn(10), "two": torch.randn(1, 10)}, lambda i: f"<{i}>")
    data = _data(fig.data)
    assert [c["prompt"] for c in data["contexts"]] == ["one", "two"]
    assert all(lab.startswith("<") for lab in data["contexts"][1]["labels"])
    assert "</" not in re.search(r"var DATA=(\{.*?\});\n", fig.data, re.S).group(1)  # cannot close the script


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=torch.randn(2, 5), labels=list("abcde")), "1-D"),
    (dict(logits=torch.randn(5), labels=list("abc")), "labels"),
    (dict(logits=torch.randn(5), labels=list("abcde"), top_p=0), "start values"),
])
def test_sampling_explorer_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        interactive.sampling_explorer(**kwargs)


def test_importing_interactive_pulls_in_no_heavy_module():
    code = ("import sys, gpt2lib.interactive; print([m for m in ('torch', 'matplotlib', 'gpt2lib.model') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
