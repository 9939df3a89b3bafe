/* Formatting and DOM helpers. */
// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------
export const $ = (id) => document.getElementById(id);
export const DASH = '—';

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const num = (v) => (isNum(v) ? v : null);
export const str = (v) => (typeof v === 'string' && v !== '' ? v : null);

export function fmtInt(v) { return isNum(v) ? String(Math.round(v)) : DASH; }
export function fmtPct(v) { return isNum(v) ? `${Math.round(v)}%` : DASH; }
export function pad2(n) { return n < 10 ? `0${n}` : String(n); }

/** Seconds as m:ss (or h:mm:ss from one hour). */
export function fmtDur(v) {
  if (!isNum(v)) return DASH;
  let s = Math.max(0, Math.floor(v));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${h}:${pad2(m)}:${pad2(s)}` : `${m}:${pad2(s)}`;
}

/** Long durations in a compact form: 45 s, 12 min, 3 h 05 min. */
export function fmtAgo(v) {
  if (!isNum(v)) return DASH;
  const s = Math.max(0, Math.round(v));
  if (s < 90) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} min`;
}

export function fmtClock(epochS, withSeconds = true) {
  const d = new Date(epochS * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Update text only when it changed (avoids needless layout and selection loss). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
export function setAttr(node, name, value) {
  const v = value === null || value === undefined ? '' : String(value);
  if (node.getAttribute(name) !== v) node.setAttribute(name, v);
}
/** A number cell: formatted text + raw value in data-value + a level (ok/warn/crit). */
export function setNum(node, raw, text, level) {
  setText(node, text);
  setAttr(node, 'data-value', isNum(raw) ? raw : '');
  setAttr(node, 'data-level', level || '');
}
export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

export const worst = (...levels) => (levels.includes('crit') ? 'crit' : levels.includes('warn') ? 'warn' : '');
