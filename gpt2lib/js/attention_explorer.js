// The attention explorer (gpt2lib.interactive.attention_explorer); runs after common.js.
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
