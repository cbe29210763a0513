// Small DOM and formatting helpers shared by the views.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** An element with a class and text. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Sets text only when it changed, so an unchanged row costs no repaint. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** An icon from the sprite in index.html. */
export function icon(id, cls = 'icon') {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', `#i-${id}`);
  svg.append(use);
  return svg;
}

/** A button with a type and an optional class and text. */
export function button(cls, text) {
  const b = el('button', cls, text);
  b.type = 'button';
  return b;
}

/** The words of an engine error (or anything thrown). */
export function errorText(e) {
  if (e && typeof e === 'object' && 'message' in e) return String(e.message);
  return String(e);
}

export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1000; i += 1; } while (v >= 1000 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatAge(iso) {
  const t = Date.parse(iso || '');
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return '< 1 min';
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A form's result line: a message, or an error's words in red. */
export function showResult(node, what, isError) {
  node.textContent = isError ? errorText(what) : what;
  node.className = `result ${isError ? 'error' : 'ok'}`;
}
