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

This module imports nothing heavy (no torch, no other gpt2lib module): the data comes in as tensors,
arrays or lists, and :func:`filter_probs` repeats the JavaScript's arithmetic in plain Python so the
tests can check the two against ``gpt2lib.generation``.
"""
from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
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


def _script(name: str, fig_id: str, data: Any) -> str:
    """The figure's inline script: the shared drawing code with this figure's id and data."""
    code = _ATTENTION_JS if name == "attention" else _SAMPLING_JS
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
    rounded = [[[[round(float(x), digits) for x in row] for row in h] for h in l] for l in m]
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
def filter_probs(logits: Sequence[float], temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0) -> list[float]:
    """Temperature, then top-k (0 = off), then top-p (1 = off), then renormalise: the explorer's
    arithmetic in plain Python, with ``gpt2lib.generation``'s rules (ties with the k-th kept; the most
    likely token always kept; a token is kept while the mass ranked above it is below p)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if top_k < 0 or not 0 < top_p <= 1:
        raise ValueError("top_k must be >= 0 (0 = off) and top_p in (0, 1] (1 = off)")
    z = [float(x) / temperature for x in logits]
    keep = [math.isfinite(x) for x in z]
    if top_k and top_k < len(z):
        kth = sorted(z, reverse=True)[top_k - 1]
        keep = [k and x >= kth for k, x in zip(keep, z)]
    top = max(x for x, k in zip(z, keep) if k)
    e = [math.exp(x - top) if k else 0.0 for x, k in zip(z, keep)]
    total = sum(e)
    p = [x / total for x in e]
    if top_p < 1:
        order = sorted(range(len(p)), key=lambda i: -p[i])
        before = 0.0
        for i in order:
            if before >= top_p:
                p[i] = 0.0
            before += p[i] if p[i] else 0.0
        total = sum(p)
        p = [x / total for x in p]
    return p


def sampling_explorer(logits: Any, labels: Sequence[Any] | Callable[[int], Any], *, prompt: str | None = None,
                      keep: int = 500, show: int = 15, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0) -> Any:
    """Temperature, top-k and top-p over a real next-token distribution, interactive without a kernel.

    ``logits`` is the model's next-token logits, a vector over the vocabulary, or a mapping
    ``{prompt: logits}`` to offer several contexts in a menu. ``labels`` gives each token's text: a
    sequence indexed by token id, or a function ``id -> text`` (e.g. ``lambda i: tok.decode([i])``).
    Only the ``keep`` most likely tokens travel to the page (the figure states how much probability the
    rest held at temperature 1); the ``show`` most likely are drawn as bars: grey for the original
    distribution, blue for the filtered and renormalised one. The starting values of the three
    controls are ``temperature``, ``top_k`` (0 = off) and ``top_p`` (1 = off).
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
    if not temperature > 0 or top_k < 0 or not 0 < top_p <= 1:
        raise ValueError("start values: temperature > 0, top_k >= 0 (0 = off), top_p in (0, 1]")
    data = {"contexts": contexts, "show": int(show), "temperature": float(temperature), "top_k": int(top_k),
            "top_p": float(top_p), "max_k": min(100, len(contexts[0]["ids"]))}
    fig_id = _fig_id("sampling", json.dumps(data))
    markup = (f'<div id="{fig_id}" class="gpt2-interactive gpt2-sampling-explorer" '
              f'style="font-family:sans-serif;font-size:13px;max-width:760px">{_NOSCRIPT}</div>'
              + _script("sampling", fig_id, data))
    return _html_object(markup)


# --------------------------------------------------------------------------- the JavaScript
# Plain ES5-style DOM code, no library: ROOT_ID and DATA are defined by _script() around it.
_COMMON_JS = r"""
var root = document.getElementById(ROOT_ID);
if (!root) { return; }
var old = root.querySelector('.gpt2-noscript'); if (old) { old.parentNode.removeChild(old); }
function el(tag, style, text) { var e = document.createElement(tag); if (style) { e.style.cssText = style; }
  if (text !== undefined) { e.textContent = text; } return e; }
function slider(parent, name, label, min, max, step, value, fmt) {
  var box = el('label', 'display:inline-flex;align-items:center;gap:6px;margin:0 14px 6px 0');
  var cap = el('span', '', label); var inp = el('input'); inp.type = 'range'; inp.min = min; inp.max = max;
  inp.step = step; inp.value = value; inp.name = name; inp.className = 'gpt2-control gpt2-' + name;
  inp.style.width = '140px'; var out = el('span', 'min-width:5em;font-family:monospace');
  out.className = 'gpt2-value-' + name; box.appendChild(cap); box.appendChild(inp); box.appendChild(out);
  parent.appendChild(box); inp._out = out; inp._fmt = fmt; return inp; }
function show(tok) { return JSON.stringify(tok).slice(1, -1); }
"""

_ATTENTION_JS = _COMMON_JS + r"""
var D = DATA, L = D.maps.length, H = D.maps[0].length, T = D.tokens.length;
var controls = el('div', 'margin-bottom:6px'); root.appendChild(controls);
var sl = {
  layer: slider(controls, 'layer', 'layer', 0, L - 1, 1, D.layer, function (v) { return v + ' of ' + L; }),
  head: slider(controls, 'head', 'head', 0, H - 1, 1, D.head, function (v) { return v + ' of ' + H; }),
  query: slider(controls, 'query', 'query token', 0, T - 1, 1, D.query, function (v) { return show(D.tokens[v]); })
};
var cell = Math.max(10, Math.min(22, Math.floor(420 / T)));
var table = el('table', 'border-collapse:collapse;font-size:11px;margin:4px 0'); table.className = 'gpt2-heatmap';
root.appendChild(table);
var cells = [], rowHeads = [];
var hr = el('tr'); hr.appendChild(el('td'));
for (var j = 0; j < T; j++) { var th = el('td', 'writing-mode:vertical-rl;transform:rotate(180deg);' +
  'font-family:monospace;padding:2px 0;height:60px;white-space:nowrap;overflow:hidden', show(D.tokens[j]));
  hr.appendChild(th); }
table.appendChild(hr);
for (var i = 0; i < T; i++) {
  var tr = el('tr'); var rh = el('td', 'font-family:monospace;text-align:right;padding-right:4px;white-space:nowrap',
    show(D.tokens[i])); tr.appendChild(rh); rowHeads.push(rh); cells.push([]);
  for (var j2 = 0; j2 < T; j2++) { var td = el('td', 'width:' + cell + 'px;height:' + cell + 'px;border:1px solid #eee;padding:0');
    tr.appendChild(td); cells[i].push(td); }
  table.appendChild(tr);
}
var caption = el('div', 'margin:4px 0;color:#444'); caption.className = 'gpt2-caption'; root.appendChild(caption);
var text = el('div', 'line-height:2;font-family:monospace;margin-top:4px'); text.className = 'gpt2-text';
root.appendChild(text);
function draw() {
  var l = +sl.layer.value, h = +sl.head.value, q = +sl.query.value;
  for (var k in sl) { sl[k]._out.textContent = sl[k]._fmt(+sl[k].value); }
  var m = D.maps[l][h];
  for (var i = 0; i < T; i++) { rowHeads[i].style.fontWeight = (i === q) ? '700' : '400';
    for (var j = 0; j < T; j++) { var w = m[i][j]; var td = cells[i][j];
      td.style.background = 'rgba(30,90,200,' + w + ')'; td.title = show(D.tokens[i]) + ' -> ' + show(D.tokens[j]) + ': ' + w.toFixed(3);
      td.setAttribute('data-w', w); td.style.outline = (i === q) ? '1px solid #d33' : ''; } }
  var row = m[q], best = 0; for (var j3 = 1; j3 < T; j3++) { if (row[j3] > row[best]) { best = j3; } }
  caption.textContent = 'layer ' + l + ', head ' + h + ': query "' + show(D.tokens[q]) + '" attends most to "' +
    show(D.tokens[best]) + '" (position ' + best + ', weight ' + row[best].toFixed(3) + ')';
  text.innerHTML = '';
  for (var j4 = 0; j4 < T; j4++) { var s = el('span', 'padding:1px 0;margin-right:1px;border-radius:3px;background:rgba(220,60,30,' +
      row[j4] + ');' + (j4 === q ? 'border-bottom:2px solid #000' : ''), D.tokens[j4]); s.title = row[j4].toFixed(3);
    text.appendChild(s); }
  root.setAttribute('data-state', l + ',' + h + ',' + q);
}
for (var k2 in sl) { sl[k2].addEventListener('input', draw); }
draw();
root.setAttribute('data-ready', '1');
"""

_SAMPLING_JS = _COMMON_JS + r"""
var D = DATA, C = D.contexts;
var controls = el('div', 'margin-bottom:6px'); root.appendChild(controls);
var pick = null;
if (C.length > 1) { pick = el('select', 'margin:0 14px 6px 0;max-width:700px'); pick.className = 'gpt2-control gpt2-context';
  for (var c = 0; c < C.length; c++) { var o = el('option', '', C[c].prompt); o.value = c; pick.appendChild(o); }
  controls.appendChild(pick); controls.appendChild(el('br')); }
var sl = {
  temperature: slider(controls, 'temperature', 'temperature', 0.05, 2.5, 0.05, D.temperature, function (v) { return v.toFixed(2); }),
  top_k: slider(controls, 'top_k', 'top-k', 0, D.max_k, 1, D.top_k, function (v) { return v === 0 ? 'off' : String(v); }),
  top_p: slider(controls, 'top_p', 'top-p', 0.05, 1, 0.01, D.top_p, function (v) { return v >= 1 ? 'off' : v.toFixed(2); })
};
var promptBox = el('div', 'font-family:monospace;margin:2px 0 6px;color:#333'); root.appendChild(promptBox);
var bars = el('div', ''); bars.className = 'gpt2-bars'; root.appendChild(bars);
var summary = el('div', 'margin-top:6px;color:#444'); summary.className = 'gpt2-summary'; root.appendChild(summary);
var btn = el('button', 'margin-top:6px', 'draw 20 samples'); btn.className = 'gpt2-sample-button'; root.appendChild(btn);
var drawn = el('div', 'font-family:monospace;margin-top:4px;white-space:pre-wrap'); drawn.className = 'gpt2-samples';
root.appendChild(drawn);
var current = null;
function filtered(ctx, t, k, p) {
  var z = ctx.logits.map(function (x) { return x / t; }), n = z.length, keep = z.map(function () { return true; });
  if (k > 0 && k < n) { var s = z.slice().sort(function (a, b) { return b - a; }); var kth = s[k - 1];
    keep = z.map(function (x) { return x >= kth; }); }
  var top = -Infinity; for (var i = 0; i < n; i++) { if (keep[i] && z[i] > top) { top = z[i]; } }
  var e = z.map(function (x, i) { return keep[i] ? Math.exp(x - top) : 0; });
  var tot = e.reduce(function (a, b) { return a + b; }, 0); var q = e.map(function (x) { return x / tot; });
  if (p < 1) { var order = q.map(function (x, i) { return i; }).sort(function (a, b) { return q[b] - q[a]; });
    var before = 0; for (var r = 0; r < n; r++) { var id = order[r]; if (before >= p) { q[id] = 0; } before += q[id]; }
    tot = q.reduce(function (a, b) { return a + b; }, 0); q = q.map(function (x) { return x / tot; }); }
  return q;
}
function draw() {
  for (var k in sl) { sl[k]._out.textContent = sl[k]._fmt(+sl[k].value); }
  var ctx = C[pick ? +pick.value : 0];
  var t = +sl.temperature.value, kk = +sl.top_k.value, pp = +sl.top_p.value;
  var base = filtered(ctx, 1, 0, 1), q = filtered(ctx, t, kk, pp); current = { ctx: ctx, q: q };
  promptBox.textContent = ctx.prompt ? 'context: "' + ctx.prompt + '" \u2192 next token?' : '';
  var maxp = 0, nShow = Math.min(D.show, q.length);
  for (var i = 0; i < nShow; i++) { maxp = Math.max(maxp, q[i], base[i]); }
  bars.innerHTML = '';
  for (var i2 = 0; i2 < nShow; i2++) {
    var row = el('div', 'display:flex;align-items:center;height:17px;' + (q[i2] === 0 ? 'opacity:0.45' : ''));
    row.className = 'gpt2-bar'; row.setAttribute('data-p', q[i2].toFixed(6)); row.setAttribute('data-id', ctx.ids[i2]);
    row.appendChild(el('span', 'width:120px;font-family:monospace;text-align:right;padding-right:6px;overflow:hidden;white-space:pre;' +
      (q[i2] === 0 ? 'text-decoration:line-through' : ''), show(ctx.labels[i2])));
    var track = el('span', 'position:relative;flex:1;height:13px;background:#f4f4f4');
    track.appendChild(el('span', 'position:absolute;left:0;top:0;height:13px;background:#ccc;width:' + (100 * base[i2] / maxp) + '%'));
    track.appendChild(el('span', 'position:absolute;left:0;top:3px;height:7px;background:#1f5fbf;width:' + (100 * q[i2] / maxp) + '%'));
    row.appendChild(track);
    row.appendChild(el('span', 'width:70px;text-align:right;font-family:monospace', (100 * q[i2]).toFixed(1) + '%'));
    bars.appendChild(row);
  }
  var kept = 0, H = 0; for (var j = 0; j < q.length; j++) { if (q[j] > 0) { kept++; H -= q[j] * Math.log2(q[j]); } }
  summary.textContent = 'kept ' + kept + ' of the ' + q.length + ' most likely tokens (vocabulary ' + ctx.vocab +
    '; the rest held ' + (100 * ctx.tail).toFixed(2) + '% at temperature 1); entropy ' + H.toFixed(2) +
    ' bits; grey = original distribution, blue = after the filters, renormalised';
  summary.setAttribute('data-kept', kept);
  root.setAttribute('data-state', [pick ? pick.value : 0, t, kk, pp].join(','));
}
btn.addEventListener('click', function () { var out = [];
  for (var s = 0; s < 20; s++) { var u = Math.random(), acc = 0, id = 0;
    for (var i = 0; i < current.q.length; i++) { acc += current.q[i]; if (u < acc) { id = i; break; } }
    out.push(show(current.ctx.labels[id])); }
  drawn.textContent = out.join(' | '); });
for (var k2 in sl) { sl[k2].addEventListener('input', draw); }
if (pick) { pick.addEventListener('change', draw); }
draw();
root.setAttribute('data-ready', '1');
"""
