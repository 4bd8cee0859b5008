// The sampling explorer (gpt2lib.interactive.sampling_explorer); runs after common.js.
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
