"""Figures that stay interactive without a kernel: precomputed numbers + a few lines of inline JavaScript.

The published HTML book runs no Python, so an ipywidgets slider there moves but changes nothing. The
figures here carry their data as JSON inside the cell's HTML output and redraw themselves in the
browser when a control moves: in Jupyter, on Colab and in the static book alike, offline, with no
library to fetch. Each function returns an ``IPython.display.HTML`` object (display it, or leave it as
the last expression of a cell).

* :func:`attention_explorer`: pick a layer, a head and a query token over a sentence; see the
  attention weights as a heat map and as shading over the text.
* :func:`sampling_explorer`: temperature, top-k and top-p applied to a real next-token distribution;
  see the filtered, renormalised distribution as bars next to the original one.

Importing this module pulls in nothing heavy: the data comes in as tensors, arrays or lists; the
drawing code is JavaScript shipped as package data (``gpt2lib/js/``); :func:`filter_probs` is the
package's own filters (imported when called), which the browser check holds the page's arithmetic to.
"""
from __future__ import annotations

import functools
import hashlib
import html
import itertools
import json
import math
from importlib import resources
from typing import Any, Callable, Mapping, Sequence

__all__ = ["attention_explorer", "sampling_explorer", "filter_probs"]

_counter = itertools.count()


def _nested(values: Any) -> list:
    if hasattr(values, "detach"):
        values = values.detach().float().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    return values


def _fig_id(kind: str, payload: str) -> str:
    digest = hashlib.sha1(payload.encode("utf-8")).hexdigest()[:8]
    return f"gpt2-{kind}-{digest}-{next(_counter)}"


def _label(tok: Any) -> str:
    if isinstance(tok, (bytes, bytearray)):
        return tok.decode("utf-8", errors="replace")
    return str(tok)


def _html_object(markup: str) -> Any:
    from IPython.display import HTML

    return HTML(markup)


@functools.lru_cache(maxsize=None)
def _javascript(name: str) -> str:
    """The drawing code of one figure, shipped as package data in ``gpt2lib/js/``."""
    folder = resources.files("gpt2lib") / "js"
    return (folder / "common.js").read_text("utf-8") + (folder / f"{name}_explorer.js").read_text("utf-8")


def _script(name: str, fig_id: str, data: Any) -> str:
    """The figure's inline script: the shared drawing code with this figure's id and data."""
    code = _javascript(name)
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")
    return f"<script>(function(){{var ROOT_ID={json.dumps(fig_id)};var DATA={blob};\n{code}\n}})();</script>"


_NOSCRIPT = ('<div class="gpt2-noscript" style="color:#a00;font-size:85%">This figure is drawn by JavaScript: '
             'if you see this line, scripts are blocked here (in Jupyter, trust the notebook or run the cell).</div>')


# --------------------------------------------------------------------------- attention explorer
def attention_explorer(maps: Any, tokens: Sequence[Any], *, title: str | None = None,
                       layer: int = 0, head: int = 0, query: int | None = None, digits: int = 3) -> Any:
    """An attention map explorer over one sentence, interactive without a kernel.

    ``maps`` has shape (n_layer, n_head, T, T), as ``GPT.attention_maps(idx)`` returns for one sequence
    (a leading batch dimension of 1 is dropped); ``tokens`` are the T token strings. Three sliders choose
    the layer, the head and the query token; the heat map shows the chosen head's whole (T, T) map and
    the text below shades every token by how much the query token attends to it.
    """
    m = _nested(maps)
    if isinstance(m, list) and len(m) == 1 and _depth(m) == 5:
        m = m[0]
    if _depth(m) != 4:
        raise ValueError(f"maps must have shape (n_layer, n_head, T, T), got {_depth(m)} dimensions; "
                         "use model.attention_maps(ids) for one sequence")
    n_layer, n_head, T = len(m), len(m[0]), len(m[0][0])
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} tokens for attention maps over {T} positions")
    if not (0 <= layer < n_layer and 0 <= head < n_head):
        raise ValueError(f"layer must be in [0, {n_layer}) and head in [0, {n_head})")
    query = T - 1 if query is None else query
    if not 0 <= query < T:
        raise ValueError(f"query must be in [0, {T})")
    rounded = [[[[round(float(x), digits) for x in row] for row in h] for h in layer] for layer in m]
    data = {"maps": rounded, "tokens": [_label(t) for t in tokens], "layer": layer, "head": head, "query": query}
    fig_id = _fig_id("attn", json.dumps(data))
    heading = f'<div style="font-weight:600;margin-bottom:4px">{html.escape(title)}</div>' if title else ""
    markup = (f'<div id="{fig_id}" class="gpt2-interactive gpt2-attention-explorer" '
              f'style="font-family:sans-serif;font-size:13px;max-width:760px">{heading}{_NOSCRIPT}</div>'
              + _script("attention", fig_id, data))
    return _html_object(markup)


def _depth(x: Any) -> int:
    d = 0
    while isinstance(x, list) and x:
        d, x = d + 1, x[0]
    return d


# --------------------------------------------------------------------------- sampling explorer
def filter_probs(logits: Sequence[float], temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None) -> list[float]:
    """The distribution the sampling explorer draws: :func:`gpt2lib.generation.filter_logits` (temperature,
    then top-k, then top-p; ``None`` = off), then softmax, as a list of probabilities.

    The browser check compares the page's JavaScript with this on the page's own data, so the figure
    is held to the package's one implementation of the filters."""
    import torch

    from .generation import filter_logits

    z = torch.tensor([float(x) for x in logits], dtype=torch.float64)
    return torch.softmax(filter_logits(z, temperature, top_k, top_p), dim=-1).tolist()


def sampling_explorer(logits: Any, labels: Sequence[Any] | Callable[[int], Any], *, prompt: str | None = None,
                      keep: int = 500, show: int = 15, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None) -> Any:
    """Temperature, top-k and top-p over a real next-token distribution, interactive without a kernel.

    ``logits`` is the model's next-token logits, a vector over the vocabulary, or a mapping
    ``{prompt: logits}`` to offer several contexts in a menu. ``labels`` gives each token's text: a
    sequence indexed by token id, or a function ``id -> text`` (e.g. ``lambda i: tok.decode([i])``).
    Only the ``keep`` most likely tokens travel to the page (the figure states how much probability the
    rest held at temperature 1); the ``show`` most likely are drawn as bars: grey for the original
    distribution, blue for the filtered and renormalised one. The starting values of the three
    controls are ``temperature``, ``top_k`` and ``top_p`` (``None`` = off, as in ``gpt2lib.generation``;
    the page's sliders show "off" as k = 0 and p = 1).
    """
    items = list(logits.items()) if isinstance(logits, Mapping) else [(prompt or "", logits)]
    if not items:
        raise ValueError("logits is an empty mapping: give at least one prompt's logits")
    label_of = labels if callable(labels) else (lambda i, _l=labels: _l[i])
    contexts = []
    for name, vec in items:
        v = _nested(vec)
        if isinstance(v, list) and len(v) == 1 and isinstance(v[0], list):
            v = v[0]
        if not isinstance(v, list) or not v or isinstance(v[0], list):
            raise ValueError("logits must be a 1-D vector over the vocabulary (take logits[0, -1] of the model's output)")
        if not callable(labels) and len(labels) != len(v):
            raise ValueError(f"{len(labels)} labels for {len(v)} logits")
        order = sorted(range(len(v)), key=lambda i: -v[i])[: max(1, min(keep, len(v)))]
        top = v[order[0]]
        total = sum(math.exp(x - top) for x in v)
        kept_mass = sum(math.exp(v[i] - top) for i in order) / total
        contexts.append({"prompt": str(name), "ids": order, "logits": [round(float(v[i]), 3) for i in order],
                         "labels": [_label(label_of(i)) for i in order], "vocab": len(v),
                         "tail": round(1.0 - kept_mass, 6)})
    if not temperature > 0 or (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
        raise ValueError("start values: temperature > 0, top_k >= 1 or None (off), top_p in (0, 1] or None (off)")
    data = {"contexts": contexts, "show": int(show), "temperature": float(temperature), "top_k": int(top_k or 0),
            "top_p": float(1.0 if top_p is None else top_p), "max_k": min(100, len(contexts[0]["ids"]))}
    fig_id = _fig_id("sampling", json.dumps(data))
    markup = (f'<div id="{fig_id}" class="gpt2-interactive gpt2-sampling-explorer" '
              f'style="font-family:sans-serif;font-size:13px;max-width:760px">{_NOSCRIPT}</div>'
              + _script("sampling", fig_id, data))
    return _html_object(markup)
