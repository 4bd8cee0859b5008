// Shared by the kernel-free figures of gpt2lib.interactive. Plain ES5 DOM code, no library:
// ROOT_ID and DATA are defined by the Python side around it (see interactive._script).
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
