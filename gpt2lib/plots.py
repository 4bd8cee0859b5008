"""Static figures the chapters share: loss curves, attention maps, next-token bars, token boundaries.

Nothing here imports a heavy gpt2lib module (model, train, ...): a figure takes plain numbers, lists or
tensors, so any chapter can draw with it, and no gpt2lib module imports this one. matplotlib is
imported when a figure is drawn, not when the module is imported.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

__all__ = ["plot_losses", "read_metrics", "plot_attention", "plot_distribution", "show_tokens",
           "tokens_html", "token_colour"]

_TRAIN_KEYS = ("train_loss", "loss", "train")
_VAL_KEYS = ("val_loss", "val", "eval_loss")


def _to_list(values: Any) -> list[float]:
    if hasattr(values, "detach"):
        values = values.detach().cpu().tolist()
    elif hasattr(values, "tolist"):
        values = values.tolist()
    return [float(v) for v in values]


def _to_matrix(values: Any) -> list[list[float]]:
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().tolist()
    elif hasattr(values, "tolist"):
        values = values.tolist()
    try:
        return [[float(x) for x in row] for row in values]
    except TypeError:
        raise ValueError("weights must be a square (T, T) matrix of numbers; for a (layers, heads, T, T) "
                         "stack pick one map first, e.g. maps[layer, head]") from None


def read_metrics(path: str | Path) -> dict[str, list[float]]:
    """Read a ``metrics.jsonl`` log (one JSON object per line, each with a ``step``) into columns.

    Returns ``{"step": [...], "train": [...], "val_step": [...], "val": [...]}``; a line may carry a
    train loss, a validation loss or both (keys ``train_loss``/``loss`` and ``val_loss``/``val``).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no metrics file at {path}: train a model first, or pass the steps and losses directly")
    out: dict[str, list[float]] = {"step": [], "train": [], "val_step": [], "val": []}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ValueError(f"{path}:{n} is not JSON: {line[:60]!r}") from None
        step = row.get("step", row.get("iter"))
        if step is None:
            continue
        train = next((row[k] for k in _TRAIN_KEYS if isinstance(row.get(k), (int, float))), None)
        val = next((row[k] for k in _VAL_KEYS if isinstance(row.get(k), (int, float))), None)
        if train is not None:
            out["step"].append(float(step))
            out["train"].append(float(train))
        if val is not None:
            out["val_step"].append(float(step))
            out["val"].append(float(val))
    if not out["train"] and not out["val"]:
        raise ValueError(f"{path} has no lines with a step and a train_loss or val_loss")
    return out


def plot_losses(steps: Sequence[float] | str | Path, train: Sequence[float] | None = None,
                val: Sequence[float] | None = None, ax: Any = None, *, val_steps: Sequence[float] | None = None,
                baselines: dict[str, float] | None = None, title: str | None = None) -> Any:
    """Training (and validation) loss against step; returns the matplotlib Axes.

    ``steps`` may instead be the path of a ``metrics.jsonl`` log, or the :class:`TrainResult` that
    ``gpt2lib.train`` returned (its ``history``). ``val`` may be logged less often
    than ``train``: give its own ``val_steps`` then (by default it shares ``steps`` when the lengths
    match, or is spread evenly over them). ``baselines`` draws horizontal reference lines, e.g.
    ``{"bigram": 2.35, "uniform": math.log(256)}``: the loss a model has to beat.
    """
    import matplotlib.pyplot as plt

    if hasattr(steps, "history"):  # a TrainResult (duck-typed: plots imports no other gpt2lib module)
        rows = steps.history
        val_rows = [r for r in rows if r.get("val_loss") is not None]
        train_rows = [r for r in rows if r.get("train_loss") is not None]
        steps, train = [r["step"] for r in train_rows], [r["train_loss"] for r in train_rows]
        if val_rows:
            val, val_steps = [r["val_loss"] for r in val_rows], [r["step"] for r in val_rows]
    elif isinstance(steps, (str, Path)):
        m = read_metrics(steps)
        steps, train = m["step"], m["train"]
        if m["val"]:
            val, val_steps = m["val"], m["val_step"]
    steps_l = _to_list(steps)
    train_l = _to_list(train) if train is not None else []
    if train_l and len(train_l) != len(steps_l):
        raise ValueError(f"steps and train differ in length: {len(steps_l)} vs {len(train_l)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    if train_l:
        ax.plot(steps_l, train_l, label="train", lw=1.2)
    if val is not None:
        val_l = _to_list(val)
        if val_steps is not None:
            vs = _to_list(val_steps)
        elif len(val_l) == len(steps_l):
            vs = steps_l
        else:
            lo, hi = (steps_l[0], steps_l[-1]) if steps_l else (0.0, float(len(val_l) - 1))
            vs = [lo + (hi - lo) * i / max(1, len(val_l) - 1) for i in range(len(val_l))]
        if len(vs) != len(val_l):
            raise ValueError(f"val_steps and val differ in length: {len(vs)} vs {len(val_l)}")
        ax.plot(vs, val_l, "o-", label="validation", lw=1.5, ms=3)
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(float(value), ls="--", lw=1, color=f"C{i + 2}", label=f"{name} ({float(value):.3f})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_attention(weights: Any, tokens: Sequence[str], ax: Any = None, *, title: str | None = None,
                   cmap: str = "viridis") -> Any:
    """One attention map as a heat map: row = the query token, column = the key it attends to.

    ``weights`` is a (T, T) matrix (tensor, array or nested list) whose rows sum to 1; ``tokens`` its T
    labels. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    w = _to_matrix(weights)
    T = len(w)
    if any(len(row) != T for row in w):
        raise ValueError(f"weights must be a square (T, T) matrix; got {T} rows of lengths "
                         f"{sorted({len(r) for r in w})} (pick one layer and head first, e.g. maps[layer, head])")
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} token labels for a {T} x {T} attention map")
    if ax is None:
        side = max(3.5, min(9.0, 0.35 * T + 1.5))
        _, ax = plt.subplots(figsize=(side + 0.8, side))
    im = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=1.0)
    labels = [repr(t)[1:-1] if isinstance(t, str) else str(t) for t in tokens]
    ax.set_xticks(range(T), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(T), labels, fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_distribution(probs: Any, labels: Sequence[str], ax: Any = None, *, top: int = 15,
                      chosen: int | None = None, title: str | None = None) -> Any:
    """The ``top`` most probable next tokens as horizontal bars, the ``chosen`` token id highlighted.

    ``probs`` is a vector over the vocabulary (summing to 1) and ``labels[i]`` the text of token i.
    """
    import matplotlib.pyplot as plt

    p = _to_list(probs)
    if len(labels) != len(p):
        raise ValueError(f"{len(labels)} labels for a distribution over {len(p)} tokens")
    order = sorted(range(len(p)), key=lambda i: -p[i])[:top]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.25 * len(order) + 1))
    colours = ["C3" if i == chosen else "C0" for i in order]
    ax.barh(range(len(order)), [p[i] for i in order], color=colours)
    ax.set_yticks(range(len(order)), [repr(labels[i]) for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("probability")
    ax.set_xlim(0, max(p[i] for i in order) * 1.1 if order else 1)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def token_colour(i: int) -> str:
    """A pale background colour for the i-th token, cycling so that neighbours always differ."""
    hue = (i * 137.508) % 360  # golden-angle steps spread the hues
    return f"hsl({hue:.0f}, 70%, 85%)"


def tokens_html(tokens: Sequence[str | bytes], ids: Sequence[int] | None = None) -> str:
    """The HTML string behind :func:`show_tokens`."""
    if ids is not None and len(ids) != len(tokens):
        raise ValueError(f"{len(ids)} ids for {len(tokens)} tokens")
    spans = []
    for i, tok in enumerate(tokens):
        text = tok.decode("utf-8", errors="replace") if isinstance(tok, (bytes, bytearray)) else str(tok)
        shown = html.escape(text).replace(" ", "&nbsp;").replace("\n", "↵<br>") or "∅"
        tip = f"token {i}" + (f", id {ids[i]}" if ids is not None else "") + f": {text!r}"
        spans.append(f'<span class="gpt2-tok" title="{html.escape(tip)}" style="background:{token_colour(i)};'
                     f'border-radius:3px;padding:1px 0;margin-right:1px;font-family:monospace;color:#000">{shown}</span>')
    count = f'<div style="font-size:80%;color:#666;margin-top:4px">{len(tokens)} tokens</div>'
    return f'<div class="gpt2-tokens" style="line-height:1.9">{"".join(spans)}{count}</div>'


def show_tokens(tokens: Sequence[str | bytes], ids: Sequence[int] | None = None) -> Any:
    """Token boundaries made visible: each token on its own coloured background (hover for its id).

    Returns an ``IPython.display.HTML`` object, so it renders as the cell's output in Jupyter and in the
    HTML book (it needs no kernel).
    """
    from IPython.display import HTML

    return HTML(tokens_html(tokens, ids))
