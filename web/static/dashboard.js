/* Switchboard manager dashboard.
 *
 * Plain ES2020, no build step, no dependencies. Polls the JSON API once a
 * second (never overlapping), updates the DOM in place with keyed rows, and
 * draws the per-queue charts as inline SVG.
 */
'use strict';

// ---------------------------------------------------------------------------
// Thresholds and timing (tune here)
// ---------------------------------------------------------------------------
const SL_THRESHOLD_S = 20;        // a call waiting longer than this misses the service level
const LONGEST_WAIT_CRIT_S = 60;   // longest wait that turns a queue red
const SL_TARGET_PCT = 80;         // SL% below this: warning
const SL_CRIT_PCT = 60;           // SL% below this: critical
const ABANDON_WARN_PCT = 10;      // abandon% above this: warning
const ABANDON_CRIT_PCT = 20;      // abandon% above this: critical
const PAUSE_LONG_S = 15 * 60;     // operator paused longer than this is highlighted
const STALE_AFTER_S = 5;          // data older than this shows the stale banner
const STALE_CRIT_S = 30;          // stale banner turns red past this lag/age

const POLL_MS = 1000;             // status + operators
const POLL_BACKOFF_MAX_MS = 5000; // slowest retry while the connection is down
const CHART_REFRESH_MS = 15000;   // per-queue /metrics refresh
const CHART_SPAN_S = 3600;        // the charts show the last hour
const REQUEST_TIMEOUT_MS = 8000;
const TICK_MS = 250;              // clock / "N s ago" / time-in-state refresh

const TOKEN_KEY = 'switchboard.token';
const SORT_KEY = 'switchboard.opsSort';

const STATE_ORDER = { ringing: 0, on_call: 1, available: 2, paused: 3, offline: 4 };
const STATE_LABEL = {
  ringing: 'Ringing', on_call: 'On call', available: 'Available', paused: 'Paused', offline: 'Offline',
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const DASH = '—';

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const num = (v) => (isNum(v) ? v : null);
const str = (v) => (typeof v === 'string' && v !== '' ? v : null);

function fmtInt(v) { return isNum(v) ? String(Math.round(v)) : DASH; }
function fmtPct(v) { return isNum(v) ? `${Math.round(v)}%` : DASH; }
function pad2(n) { return n < 10 ? `0${n}` : String(n); }

/** Seconds as m:ss (or h:mm:ss from one hour). */
function fmtDur(v) {
  if (!isNum(v)) return DASH;
  let s = Math.max(0, Math.floor(v));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${h}:${pad2(m)}:${pad2(s)}` : `${m}:${pad2(s)}`;
}

/** Long durations in a compact form: 45 s, 12 min, 3 h 05 min. */
function fmtAgo(v) {
  if (!isNum(v)) return DASH;
  const s = Math.max(0, Math.round(v));
  if (s < 90) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} min`;
}

function fmtClock(epochS, withSeconds = true) {
  const d = new Date(epochS * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

function el(tag, attrs, ...children) {
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

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Update text only when it changed (avoids needless layout and selection loss). */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
function setAttr(node, name, value) {
  const v = value === null || value === undefined ? '' : String(value);
  if (node.getAttribute(name) !== v) node.setAttribute(name, v);
}
/** A number cell: formatted text + raw value in data-value + a level (ok/warn/crit). */
function setNum(node, raw, text, level) {
  setText(node, text);
  setAttr(node, 'data-value', isNum(raw) ? raw : '');
  setAttr(node, 'data-level', level || '');
}
function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

const worst = (...levels) => (levels.includes('crit') ? 'crit' : levels.includes('warn') ? 'warn' : '');

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------
const S = {
  token: null,
  authBlocked: false,       // a 401/403 stopped polling until a new token is entered
  status: null,             // last good /queues/status body
  operators: null,          // last good /operators body
  statusAt: 0,              // local ms when status was last received
  operatorsAt: 0,
  clockSkewS: 0,            // local clock − server clock (from the HTTP Date header)
  connError: null,          // message while the connection is down
  connErrorSince: 0,
  failures: 0,
  pollTimer: null,
  polling: false,
  pollGen: 0,
  charts: new Map(),        // queue → {card, body, meta, fetchedAt, inFlight, data}
  queueRows: new Map(),     // queue → {tr, cells}
  opRows: new Map(),        // id → {tr, cells, op}
  opsFilter: 'all',
  opsSearch: '',
  opsSort: { key: 'state', dir: 1 },
};

/** Our best estimate of the server's clock, in epoch seconds. */
const serverNow = () => Date.now() / 1000 - S.clockSkewS;

// ---------------------------------------------------------------------------
// Token handling
// ---------------------------------------------------------------------------
function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch (_) { return null; }
}
function storageSet(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (_) { /* private mode: keep it in memory only */ }
}

function readToken() {
  const hash = window.location.hash.replace(/^#/, '');
  if (hash) {
    const params = new URLSearchParams(hash);
    const t = params.get('token');
    if (t) {
      storageSet(TOKEN_KEY, t);
      params.delete('token');
      const rest = params.toString();
      const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : '');
      try { window.history.replaceState(null, '', url); } catch (_) { /* ignore */ }
      return t;
    }
  }
  return storageGet(TOKEN_KEY);
}

function showAuth(message, { cancellable = false } = {}) {
  $('auth-msg').textContent = message;
  $('token-cancel').hidden = !cancellable;
  $('auth').hidden = false;
  const input = $('token-input');
  input.value = '';
  setTimeout(() => input.focus(), 0);
}

function hideAuth() { $('auth').hidden = true; }

function setupAuth() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    S.token = t;
    storageSet(TOKEN_KEY, t);
    S.authBlocked = false;
    hideAuth();
    restartPolling();
  });
  $('token-cancel').addEventListener('click', () => { if (S.token && !S.authBlocked) hideAuth(); });
  $('token-button').addEventListener('click', () => {
    showAuth('Enter a new access token. The current one stays in use if you cancel.', { cancellable: !!S.token && !S.authBlocked });
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !$('auth').hidden && !$('token-cancel').hidden) hideAuth();
  });
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------
class AuthError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, {
      headers: { Authorization: `Bearer ${S.token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      signal: ctrl.signal,
    });
  } catch (e) {
    throw new Error(e && e.name === 'AbortError' ? 'request timed out' : 'network error');
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 401 || res.status === 403) {
    let msg = res.status === 401 ? 'The access token was rejected.' : 'This token is not allowed to open the manager dashboard.';
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) msg = `${msg} (${body.error.message})`;
    } catch (_) { /* ignore */ }
    throw new AuthError(res.status, msg);
  }
  if (!res.ok) {
    let msg = `server answered ${res.status}`;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) msg += `: ${body.error.message}`;
    } catch (_) { /* ignore */ }
    throw new HttpError(res.status, msg);
  }
  // The HTTP Date header tells us the server clock (1 s resolution).
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isFinite(date)) {
    const skew = (Date.now() - (date + 500)) / 1000;
    // Ignore sub-second noise; follow real skew.
    if (Math.abs(skew - S.clockSkewS) > 1) S.clockSkewS = skew;
  }
  try {
    return await res.json();
  } catch (_) {
    throw new HttpError(res.status, 'the server sent invalid JSON');
  }
}

// ---------------------------------------------------------------------------
// Polling: status + operators once a second, no overlap
// ---------------------------------------------------------------------------
function restartPolling() {
  S.pollGen += 1;
  clearTimeout(S.pollTimer);
  S.pollTimer = null;
  S.failures = 0;
  if (!S.polling) pollLoop(S.pollGen);
  // else: the running loop notices the new generation and reschedules itself.
  for (const c of S.charts.values()) c.fetchedAt = 0;
}

async function pollLoop(gen) {
  if (S.authBlocked || !S.token) return;
  S.polling = true;
  const started = Date.now();
  try {
    const [st, ops] = await Promise.allSettled([api('/queues/status'), api('/operators')]);
    const authErr = [st, ops].find((r) => r.status === 'rejected' && r.reason instanceof AuthError);
    if (authErr) {
      onAuthFailure(authErr.reason);
      return;
    }
    if (st.status === 'fulfilled') {
      S.status = st.value;
      S.statusAt = Date.now();
      renderStatus();
    }
    if (ops.status === 'fulfilled') {
      S.operators = ops.value;
      S.operatorsAt = Date.now();
      renderOperators();
    }
    const failed = [st, ops].filter((r) => r.status === 'rejected');
    if (failed.length) {
      const which = st.status === 'rejected' ? (ops.status === 'rejected' ? '' : 'queues: ') : 'operators: ';
      if (!S.connError) S.connErrorSince = Date.now();
      S.connError = `${which}${failed[0].reason.message}`;
      S.failures += 1;
    } else {
      S.connError = null;
      S.failures = 0;
    }
    renderSummary();
    renderHealth();
  } catch (e) {
    // A rendering bug must never stop the loop.
    console.error(e); // eslint-disable-line no-console
  } finally {
    S.polling = false;
    if (!S.authBlocked) {
      const gap = S.failures ? Math.min(POLL_BACKOFF_MAX_MS, POLL_MS * 2 ** Math.min(S.failures - 1, 3)) : POLL_MS;
      const wait = gen === S.pollGen ? Math.max(50, gap - (Date.now() - started)) : 0;
      S.pollTimer = setTimeout(() => pollLoop(S.pollGen), wait);
    }
  }
}

function onAuthFailure(err) {
  S.authBlocked = true;
  clearTimeout(S.pollTimer);
  if (err.status === 401) {
    storageSet(TOKEN_KEY, null);
  }
  renderHealth();
  showAuth(err.message, { cancellable: false });
}

// ---------------------------------------------------------------------------
// Queue classification
// ---------------------------------------------------------------------------
function queueAlerts(q) {
  const alerts = [];
  const waiting = num(q.calls_waiting) || 0;
  const ops = q.operators || {};
  const avail = num(ops.available);
  const loggedIn = num(ops.logged_in);
  const longest = num(q.longest_wait_s);
  const w = q.last_15m || {};
  const sl = num(w.service_level_pct);
  const ab = num(w.abandon_rate_pct);

  if (waiting > 0 && avail === 0) {
    alerts.push({ level: 'crit', text: loggedIn === 0 ? 'No one logged in' : 'No one free' });
  }
  if (longest !== null && waiting > 0) {
    if (longest > LONGEST_WAIT_CRIT_S) alerts.push({ level: 'crit', text: `Wait > ${LONGEST_WAIT_CRIT_S} s` });
    else if (longest > SL_THRESHOLD_S) alerts.push({ level: 'warn', text: `Wait > ${SL_THRESHOLD_S} s` });
  }
  if (sl !== null) {
    if (sl < SL_CRIT_PCT) alerts.push({ level: 'crit', text: `SL < ${SL_CRIT_PCT}%` });
    else if (sl < SL_TARGET_PCT) alerts.push({ level: 'warn', text: `SL < ${SL_TARGET_PCT}%` });
  }
  if (ab !== null) {
    if (ab > ABANDON_CRIT_PCT) alerts.push({ level: 'crit', text: `Abandon > ${ABANDON_CRIT_PCT}%` });
    else if (ab > ABANDON_WARN_PCT) alerts.push({ level: 'warn', text: `Abandon > ${ABANDON_WARN_PCT}%` });
  }
  return alerts;
}

const lvlWaiting = (q) => ((num(q.calls_waiting) || 0) > 0 && num((q.operators || {}).available) === 0 ? 'crit' : '');
function lvlLongest(q) {
  const v = num(q.longest_wait_s);
  if (v === null || !(num(q.calls_waiting) > 0)) return '';
  return v > LONGEST_WAIT_CRIT_S ? 'crit' : v > SL_THRESHOLD_S ? 'warn' : '';
}
function lvlSl(v) { return v === null ? '' : v < SL_CRIT_PCT ? 'crit' : v < SL_TARGET_PCT ? 'warn' : 'good'; }
function lvlAb(v) { return v === null ? '' : v > ABANDON_CRIT_PCT ? 'crit' : v > ABANDON_WARN_PCT ? 'warn' : ''; }

// ---------------------------------------------------------------------------
// Queues table
// ---------------------------------------------------------------------------
const W15 = (q) => q.last_15m || {};
const QUEUE_COLS = [
  { id: 'calls-waiting', get: (q) => num(q.calls_waiting), fmt: fmtInt, level: (v, q) => lvlWaiting(q), cls: 'num big' },
  { id: 'longest-wait', get: (q) => num(q.longest_wait_s), fmt: fmtDur, level: (v, q) => lvlLongest(q), cls: 'num big' },
  { id: 'logged-in', get: (q) => num((q.operators || {}).logged_in), fmt: fmtInt, cls: 'num group-start' },
  { id: 'available', get: (q) => num((q.operators || {}).available), fmt: fmtInt, level: (v, q) => lvlWaiting(q), cls: 'num' },
  { id: 'on-call', get: (q) => num((q.operators || {}).on_call), fmt: fmtInt, cls: 'num' },
  { id: 'paused', get: (q) => num((q.operators || {}).paused), fmt: fmtInt, cls: 'num' },
  { id: 'sl-15m', get: (q) => num(W15(q).service_level_pct), fmt: fmtPct, level: lvlSl, cls: 'num group-start' },
  { id: 'abandon-15m', get: (q) => num(W15(q).abandon_rate_pct), fmt: fmtPct, level: lvlAb, cls: 'num' },
  { id: 'asa-15m', get: (q) => num(W15(q).avg_wait_s), fmt: fmtDur, level: (v) => (v !== null && v > SL_THRESHOLD_S ? 'warn' : ''), cls: 'num' },
  { id: 'answered-15m', get: (q) => num(W15(q).answered), fmt: fmtInt, cls: 'num' },
  { id: 'abandoned-15m', get: (q) => num(W15(q).abandoned), fmt: fmtInt, cls: 'num' },
];

function makeQueueRow(name) {
  const tr = el('tr', { 'data-testid': 'queue-row', 'data-queue': name });
  const nameCell = el('th', { scope: 'row', class: 'col-name', 'data-testid': 'queue-name' });
  const nameLink = el('a', { href: `#chart-${encodeURIComponent(name)}`, class: 'qlink', title: 'Show chart' }, name);
  nameLink.addEventListener('click', (ev) => {
    ev.preventDefault();
    const c = S.charts.get(name);
    if (c) {
      c.card.scrollIntoView({ behavior: 'smooth', block: 'center' });
      c.card.classList.remove('flash');
      void c.card.offsetWidth; // restart the animation
      c.card.classList.add('flash');
    }
  });
  nameCell.append(el('span', { class: 'sev-dot', 'aria-hidden': 'true' }), nameLink);
  tr.append(nameCell);
  const cells = {};
  for (const col of QUEUE_COLS) {
    const td = el('td', { class: col.cls, 'data-testid': col.id, 'data-value': '' }, DASH);
    cells[col.id] = td;
    tr.append(td);
  }
  const alerts = el('td', { class: 'col-alerts', 'data-testid': 'queue-alerts' });
  cells.alerts = alerts;
  tr.append(alerts);
  return { tr, cells, alertsKey: null };
}

function renderQueues(queues) {
  const body = $('queues-body');
  const seen = new Set();
  const sorted = [...queues].filter((q) => q && typeof q.queue === 'string')
    .sort((a, b) => a.queue.localeCompare(b.queue));
  let troubled = 0;
  sorted.forEach((q, i) => {
    seen.add(q.queue);
    let row = S.queueRows.get(q.queue);
    if (!row) {
      row = makeQueueRow(q.queue);
      S.queueRows.set(q.queue, row);
    }
    // Keep DOM order = sorted order without detaching rows that are already in place.
    if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    for (const col of QUEUE_COLS) {
      const v = col.get(q);
      setNum(row.cells[col.id], v, col.fmt(v), col.level ? col.level(v, q) : '');
    }
    const alerts = queueAlerts(q);
    const level = worst(...alerts.map((a) => a.level));
    if (level) troubled += 1;
    setAttr(row.tr, 'data-level', level);
    setAttr(row.cells.alerts, 'data-level', level);
    const key = alerts.map((a) => `${a.level}:${a.text}`).join('|');
    if (key !== row.alertsKey) {
      row.alertsKey = key;
      setAttr(row.tr, 'title', alerts.map((a) => a.text).join(' · '));
      const chips = alerts.length
        ? alerts.map((a) => el('span', { class: `chip chip-${a.level}` }, a.text))
        : [el('span', { class: 'chip chip-ok' }, 'OK')];
      row.cells.alerts.replaceChildren(...chips);
    }
  });
  for (const [name, row] of S.queueRows) {
    if (!seen.has(name)) {
      row.tr.remove();
      S.queueRows.delete(name);
    }
  }
  setHidden($('queues-empty'), sorted.length > 0);
  $('queues-empty').textContent = 'No queues yet.';
  setText($('queues-note'), sorted.length
    ? `${sorted.length} queue${sorted.length === 1 ? '' : 's'}${troubled ? ` · ${troubled} need${troubled === 1 ? 's' : ''} attention` : ''}`
    : '');
  $('queues-note').dataset.level = troubled ? 'crit' : '';
  return sorted;
}

function renderStatus() {
  const st = S.status || {};
  const queues = Array.isArray(st.queues) ? st.queues : [];
  const sorted = renderQueues(queues);
  syncCharts(sorted.map((q) => q.queue));
  const total = queues.reduce((a, q) => a + (num(q.calls_waiting) || 0), 0);
  const bang = queues.some((q) => worst(...queueAlerts(q).map((a) => a.level)) === 'crit');
  document.title = `${total > 0 ? `(${total}) ` : ''}${bang ? '⚠ ' : ''}Switchboard · Call center`;
}

// ---------------------------------------------------------------------------
// Summary tiles
// ---------------------------------------------------------------------------
function setTile(testid, raw, text, level, sub, subId) {
  const node = document.querySelector(`[data-testid="${testid}"]`);
  setNum(node, raw, text, level);
  setAttr(node.closest('.tile'), 'data-level', level || '');
  if (subId) setText($(subId), sub || '\u00a0');
}

function renderSummary() {
  const queues = (S.status && Array.isArray(S.status.queues)) ? S.status.queues : null;
  if (queues) {
    let waiting = 0;
    let longest = null;
    let longestQ = null;
    let withSl = 0; let answeredOrLost = 0; let abandoned = 0; let answered = 0; let noAgent = 0;
    for (const q of queues) {
      const w = num(q.calls_waiting) || 0;
      waiting += w;
      const lw = num(q.longest_wait_s);
      if (w > 0 && lw !== null && (longest === null || lw > longest)) { longest = lw; longestQ = q.queue; }
      if (w > 0 && num((q.operators || {}).available) === 0) noAgent += 1;
      const f = W15(q);
      withSl += num(f.answered_within_sl) || 0;
      answeredOrLost += (num(f.answered) || 0) + (num(f.unanswered) || 0);
      abandoned += num(f.abandoned) || 0;
      answered += num(f.answered) || 0;
    }
    const waitingQueues = queues.filter((q) => (num(q.calls_waiting) || 0) > 0).length;
    setTile('total-waiting', waiting, String(waiting), noAgent ? 'crit' : '',
      waiting ? noAgent ? `${noAgent} queue${noAgent === 1 ? '' : 's'}: no one free` : `in ${waitingQueues} queue${waitingQueues === 1 ? '' : 's'}` : 'no calls waiting', 'tile-waiting-sub');
    setTile('longest-wait-overall', longest, longest === null ? '0:00' : fmtDur(longest),
      longest === null ? '' : longest > LONGEST_WAIT_CRIT_S ? 'crit' : longest > SL_THRESHOLD_S ? 'warn' : '',
      longestQ ? `queue ${longestQ}` : `SL threshold ${SL_THRESHOLD_S} s`, 'tile-longest-sub');
    const sl = answeredOrLost ? (100 * withSl) / answeredOrLost : null;
    const ab = answeredOrLost ? (100 * abandoned) / answeredOrLost : null;
    setTile('sl-15m-overall', sl, fmtPct(sl), lvlSl(sl), `target ${SL_TARGET_PCT}% in ${SL_THRESHOLD_S} s`, 'tile-sl-sub');
    setTile('abandon-15m-overall', ab, fmtPct(ab), lvlAb(ab), `${abandoned} calls · limit ${ABANDON_WARN_PCT}%`, 'tile-abandon-sub');
  }

  // Operator counts: from /operators (each person once); fall back to the queue sums.
  const ops = S.operators && Array.isArray(S.operators.operators) ? S.operators.operators : null;
  let avail; let onCall; let paused; let ringing = 0; let online = 0;
  if (ops) {
    avail = 0; onCall = 0; paused = 0;
    for (const o of ops) {
      const st = opState(o);
      if (st === 'available') avail += 1;
      else if (st === 'on_call') onCall += 1;
      else if (st === 'ringing') ringing += 1;
      else if (st === 'paused') paused += 1;
      if (st !== 'offline') online += 1;
    }
  } else if (queues) {
    avail = queues.reduce((a, q) => a + (num((q.operators || {}).available) || 0), 0);
    onCall = queues.reduce((a, q) => a + (num((q.operators || {}).on_call) || 0), 0);
    paused = queues.reduce((a, q) => a + (num((q.operators || {}).paused) || 0), 0);
  }
  if (avail !== undefined) {
    const waiting = queues ? queues.reduce((a, q) => a + (num(q.calls_waiting) || 0), 0) : 0;
    setTile('ops-available', avail, String(avail), avail === 0 && waiting > 0 ? 'crit' : '',
      ops ? `of ${online} online` : 'sum over queues', 'tile-available-sub');
    setTile('ops-on-call', onCall, String(onCall), '', ringing ? `+ ${ringing} ringing` : '\u00a0', 'tile-oncall-sub');
    const share = online ? Math.round((100 * paused) / online) : null;
    setTile('ops-paused', paused, String(paused), '', share !== null ? `${share}% of online` : '\u00a0', 'tile-paused-sub');
  }
}

// ---------------------------------------------------------------------------
// Operators list
// ---------------------------------------------------------------------------
function opState(o) {
  const s = typeof o.state === 'string' ? o.state.toLowerCase() : '';
  return s in STATE_ORDER ? s : (o.paused ? 'paused' : (s || 'unknown'));
}

const OP_SORTS = {
  state: (a, b) => (STATE_ORDER[opState(a)] ?? 9) - (STATE_ORDER[opState(b)] ?? 9)
    || (num(a.since) ?? Infinity) - (num(b.since) ?? Infinity),
  name: (a, b) => opName(a).localeCompare(opName(b), undefined, { numeric: true }),
  time: (a, b) => (num(a.since) ?? Infinity) - (num(b.since) ?? Infinity),
  calls: (a, b) => (num(b.calls_today) ?? -1) - (num(a.calls_today) ?? -1),
  talk: (a, b) => (num(b.talk_time_today_s) ?? -1) - (num(a.talk_time_today_s) ?? -1),
  aht: (a, b) => (num(b.aht_s) ?? -1) - (num(a.aht_s) ?? -1),
};

function opName(o) { return str(o.name) || String(o.id); }

function makeOpRow(id) {
  const tr = el('tr', { 'data-testid': 'operator-row', 'data-operator': id });
  const name = el('span', { class: 'op-name' });
  const idLine = el('span', { class: 'op-id' });
  const badge = el('span', { class: 'badge', 'data-testid': 'op-state' });
  const reason = el('span', { class: 'op-reason', 'data-testid': 'op-crm' });
  const cells = {
    who: el('th', { scope: 'row', class: 'op-who' }, name, idLine),
    state: el('td', { class: 'op-state' }, badge, reason),
    time: el('td', { class: 'num mono', 'data-testid': 'op-time-in-state', 'data-value': '' }),
    call: el('td', { class: 'op-call', 'data-testid': 'op-call' }),
    calls: el('td', { class: 'num', 'data-testid': 'op-calls-today', 'data-value': '' }),
    talk: el('td', { class: 'num mono', 'data-testid': 'op-talk-today', 'data-value': '' }),
    aht: el('td', { class: 'num mono', 'data-testid': 'op-aht', 'data-value': '' }),
  };
  tr.append(cells.who, cells.state, cells.time, cells.call, cells.calls, cells.talk, cells.aht);
  return { tr, cells, name, idLine, badge, reason, op: null };
}

function renderOperators() {
  const body = $('ops-body');
  const list = S.operators && Array.isArray(S.operators.operators) ? S.operators.operators : [];
  const ops = list.filter((o) => o && (typeof o.id === 'string' || typeof o.id === 'number'));
  const seen = new Set();
  const counts = { all: ops.length, available: 0, on_call: 0, paused: 0, offline: 0 };

  for (const o of ops) {
    const id = String(o.id);
    seen.add(id);
    let row = S.opRows.get(id);
    if (!row) {
      row = makeOpRow(id);
      S.opRows.set(id, row);
    }
    row.op = o;
    const st = opState(o);
    if (st === 'ringing') counts.on_call += 1; else if (st in counts) counts[st] += 1;

    setText(row.name, opName(o));
    setText(row.idLine, str(o.name) ? id : '');
    setAttr(row.tr, 'data-state', st);
    setText(row.badge, STATE_LABEL[st] || (str(o.state) || DASH));
    setAttr(row.badge, 'data-state', st);
    setAttr(row.badge, 'data-value', str(o.state) || '');
    // CRM status (+ pause reason) as a second line under the badge.
    const crm = str(o.crm_status);
    const reasonTxt = st === 'paused' || o.paused ? str(o.pause_reason) : null;
    const crmTxt = crm ? crm.replace(/_/g, ' ').toLowerCase() : null;
    const sub = [crmTxt && `CRM: ${crmTxt}`, reasonTxt].filter(Boolean).join(' · ');
    setText(row.reason, sub);
    setAttr(row.reason, 'data-value', crm || '');
    setAttr(row.reason, 'data-pause-reason', reasonTxt || '');
    const crmAway = !!crm && !['ONLINE', 'ON_CALL', 'OFFLINE'].includes(crm.toUpperCase());
    setAttr(row.reason, 'data-level', reasonTxt || crmAway ? 'warn' : '');
    setAttr(row.tr, 'title', Array.isArray(o.queues) && o.queues.length ? `Queues: ${o.queues.join(', ')}` : '');

    const cc = o.current_call && typeof o.current_call === 'object' ? o.current_call : null;
    const callText = cc ? (str(cc.queue) || DASH) : DASH;
    setText(row.cells.call, callText);
    setAttr(row.cells.call, 'title', cc && cc.callid ? `call ${cc.callid}` : '');
    setAttr(row.cells.call, 'data-value', cc ? (str(cc.queue) || '') : '');

    const calls = num(o.calls_today);
    setNum(row.cells.calls, calls, fmtInt(calls), '');
    const talk = num(o.talk_time_today_s);
    setNum(row.cells.talk, talk, fmtDur(talk), '');
    const aht = num(o.aht_s);
    setNum(row.cells.aht, aht, fmtDur(aht), '');
    updateOpTimer(row);
  }
  for (const [id, row] of S.opRows) {
    if (!seen.has(id)) {
      row.tr.remove();
      S.opRows.delete(id);
    }
  }
  for (const [k, v] of Object.entries(counts)) {
    const node = document.querySelector(`#ops-filter [data-count="${k}"]`);
    if (node) setText(node, String(v));
  }
  applyOpsOrderAndFilter();
  setHidden($('ops-empty'), ops.length > 0);
  $('ops-empty').textContent = 'No operators.';
}

function updateOpTimer(row) {
  const o = row.op;
  if (!o) return;
  const since = num(o.since);
  const cc = o.current_call && typeof o.current_call === 'object' ? o.current_call : null;
  const elapsed = since !== null ? Math.max(0, serverNow() - since) : null;
  const st = opState(o);
  const level = st === 'paused' && elapsed !== null && elapsed > PAUSE_LONG_S ? 'warn' : '';
  setNum(row.cells.time, elapsed === null ? null : Math.floor(elapsed), fmtDur(elapsed), level);
  if (cc && num(cc.since) !== null) {
    const talk = Math.max(0, serverNow() - cc.since);
    const q = str(cc.queue) || 'call';
    setText(row.cells.call, `${q} · ${fmtDur(talk)}`);
  }
}

function applyOpsOrderAndFilter() {
  const body = $('ops-body');
  const rows = [...S.opRows.values()];
  const cmp = OP_SORTS[S.opsSort.key] || OP_SORTS.state;
  const dir = S.opsSort.dir;
  rows.sort((a, b) => dir * cmp(a.op, b.op)
    || OP_SORTS.state(a.op, b.op)
    || opName(a.op).localeCompare(opName(b.op), undefined, { numeric: true }));
  rows.forEach((row, i) => {
    if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
  });
  const q = S.opsSearch.trim().toLowerCase();
  let shown = 0;
  for (const row of rows) {
    const o = row.op;
    const st = opState(o);
    let ok = S.opsFilter === 'all'
      || st === S.opsFilter
      || (S.opsFilter === 'on_call' && st === 'ringing');
    if (ok && q) {
      const hay = [opName(o), String(o.id), ...(Array.isArray(o.queues) ? o.queues : []),
        (o.current_call && o.current_call.queue) || '', o.crm_status || ''].join(' ').toLowerCase();
      ok = hay.includes(q);
    }
    setHidden(row.tr, !ok);
    if (ok) shown += 1;
  }
  for (const th of document.querySelectorAll('.operators th[data-sort]')) {
    const on = th.dataset.sort === S.opsSort.key;
    setAttr(th, 'aria-sort', on ? (dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  if (rows.length && !shown) {
    $('ops-empty').textContent = 'No operators match the filter.';
    setHidden($('ops-empty'), false);
  }
}

function setupOperatorsUi() {
  try {
    const saved = JSON.parse(storageGet(SORT_KEY) || 'null');
    if (saved && OP_SORTS[saved.key] && (saved.dir === 1 || saved.dir === -1)) S.opsSort = saved;
  } catch (_) { /* ignore */ }
  for (const th of document.querySelectorAll('.operators th[data-sort]')) {
    th.tabIndex = 0;
    const act = () => {
      const key = th.dataset.sort;
      S.opsSort = S.opsSort.key === key ? { key, dir: -S.opsSort.dir } : { key, dir: 1 };
      storageSet(SORT_KEY, JSON.stringify(S.opsSort));
      applyOpsOrderAndFilter();
    };
    th.addEventListener('click', act);
    th.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(); } });
  }
  $('ops-filter').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-filter]');
    if (!b) return;
    S.opsFilter = b.dataset.filter;
    for (const x of $('ops-filter').querySelectorAll('button')) x.classList.toggle('on', x === b);
    renderOperators();
  });
  $('ops-search').addEventListener('input', (ev) => {
    S.opsSearch = ev.target.value;
    renderOperators();
  });
}

// ---------------------------------------------------------------------------
// Charts: last hour per minute, refreshed every ~15 s per queue
// ---------------------------------------------------------------------------
function syncCharts(names) {
  const wrap = $('charts');
  const want = new Set(names);
  names.forEach((name, i) => {
    let c = S.charts.get(name);
    if (!c) {
      const title = el('h3', { class: 'chart-title' }, name);
      const meta = el('div', { class: 'chart-meta' });
      const body = el('div', { class: 'chart-body' }, el('div', { class: 'chart-empty' }, 'Loading…'));
      const card = el('div', {
        class: 'chart-card', id: `chart-${encodeURIComponent(name)}`, 'data-testid': 'queue-chart', 'data-queue': name,
      }, el('div', { class: 'chart-head' }, title, meta), body);
      // Stagger first loads so a page with many queues does not fire them all at once.
      c = { card, body, meta, fetchedAt: 0, inFlight: false, data: null, due: Date.now() + i * 150 };
      S.charts.set(name, c);
    }
    if (wrap.children[i] !== c.card) wrap.insertBefore(c.card, wrap.children[i] || null);
  });
  for (const [name, c] of S.charts) {
    if (!want.has(name)) {
      c.card.remove();
      S.charts.delete(name);
    }
  }
  setHidden($('charts-empty'), names.length > 0);
  $('charts-empty').textContent = 'No queues yet.';
}

let chartBusy = 0;
function chartScheduler() {
  if (S.authBlocked || !S.token) return;
  const now = Date.now();
  // At most two /metrics requests in flight; the most overdue queue goes first.
  const due = [...S.charts.entries()]
    .filter(([, c]) => !c.inFlight && now >= Math.max(c.due || 0, c.fetchedAt + CHART_REFRESH_MS))
    .sort((a, b) => a[1].fetchedAt - b[1].fetchedAt);
  for (const [name, c] of due) {
    if (chartBusy >= 2) break;
    loadChart(name, c);
  }
}

async function loadChart(name, c) {
  c.inFlight = true;
  chartBusy += 1;
  const until = Math.ceil(serverNow());
  const since = until - CHART_SPAN_S;
  try {
    const data = await api(`/queues/${encodeURIComponent(name)}/metrics?since=${since}&until=${until}`);
    c.data = data;
    c.range = { since, until };
    c.fetchedAt = Date.now();
    c.error = null;
    drawChart(c);
  } catch (e) {
    if (e instanceof AuthError) {
      onAuthFailure(e);
    } else {
      // Keep the old chart; retry a little sooner than the normal refresh.
      c.error = e.message;
      c.fetchedAt = Date.now() - CHART_REFRESH_MS / 2;
      setAttr(c.card, 'data-error', e.message);
      if (!c.data) c.body.replaceChildren(el('div', { class: 'chart-empty' }, 'Chart unavailable — retrying'));
    }
  } finally {
    c.inFlight = false;
    chartBusy -= 1;
  }
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) {
    const r = Math.round(m * p);
    if (r >= v) return r % 2 ? r + 1 : r; // even, so the middle grid line is a whole number
  }
  return 10 * p;
}

function drawChart(c) {
  const data = c.data || {};
  const ws = num(data.window_s) && data.window_s > 0 ? data.window_s : 60;
  const { since, until } = c.range;
  const t0 = Math.floor(since / ws) * ws;
  const n = Math.max(1, Math.ceil((until - t0) / ws));
  const buckets = new Array(n).fill(null);
  const windows = Array.isArray(data.windows) ? data.windows : [];
  for (const w of windows) {
    if (!w || !isNum(w.start)) continue;
    const i = Math.floor((w.start - t0) / ws);
    if (i >= 0 && i < n) buckets[i] = w;
  }

  // Hour totals for the card header.
  let ent = 0; let ans = 0; let abd = 0; let inSl = 0; let closed = 0;
  let maxCount = 0;
  for (const w of buckets) {
    if (!w) continue;
    ent += num(w.entered) || 0;
    ans += num(w.answered) || 0;
    abd += num(w.abandoned) || 0;
    inSl += num(w.answered_within_sl) || 0;
    closed += (num(w.answered) || 0) + (num(w.unanswered) || 0);
    maxCount = Math.max(maxCount, num(w.entered) || 0, (num(w.answered) || 0) + (num(w.abandoned) || 0));
  }
  const slHour = closed ? (100 * inSl) / closed : null;
  c.meta.replaceChildren(
    el('span', null, 'hour: '), el('b', null, String(ent)), el('span', null, ' in · '),
    el('b', null, String(ans)), el('span', null, ' ans · '),
    el('b', { class: abd ? 'tx-bad' : '' }, String(abd)), el('span', null, ' abd · SL '),
    el('b', { class: `tx-${lvlSl(slHour) || 'none'}` }, fmtPct(slHour)),
  );
  setAttr(c.card, 'data-windows', windows.length);
  setAttr(c.card, 'data-entered-1h', ent);
  setAttr(c.card, 'data-answered-1h', ans);
  setAttr(c.card, 'data-abandoned-1h', abd);
  setAttr(c.card, 'data-error', '');

  const W = 520; const H = 170;
  const L = 30; const R = 34; const T = 10; const B = 22;
  const pw = W - L - R; const ph = H - T - B;
  const yMax = niceMax(maxCount);
  const bw = pw / n;
  const x = (i) => L + i * bw;
  const yC = (v) => T + ph - (v / yMax) * ph;
  const yP = (p) => T + ph - (p / 100) * ph;

  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `Queue ${data.queue || ''}: calls per minute over the last hour`,
  });
  // Grid + left axis (counts)
  const grid = svg('g', { class: 'grid-lines' });
  for (const f of [0, 0.5, 1]) {
    const y = T + ph - f * ph;
    grid.append(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: f === 0 ? 'axis' : 'gl' }));
    grid.append(svg('text', { x: L - 5, y: y + 3.5, class: 'tick', 'text-anchor': 'end' }, String(Math.round(f * yMax))));
  }
  // Right axis (SL %) and target line
  for (const p of [0, 50, 100]) {
    grid.append(svg('text', { x: W - R + 5, y: yP(p) + 3.5, class: 'tick tick-sl' }, `${p}%`));
  }
  grid.append(svg('line', { x1: L, x2: W - R, y1: yP(SL_TARGET_PCT), y2: yP(SL_TARGET_PCT), class: 'sl-target' }));
  // Time labels every 15 min
  const step = 900;
  for (let t = Math.ceil(t0 / step) * step; t <= t0 + n * ws; t += step) {
    const xx = L + ((t - t0) / ws) * bw;
    grid.append(svg('line', { x1: xx, x2: xx, y1: T + ph, y2: T + ph + 4, class: 'axis' }));
    grid.append(svg('text', { x: xx, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, fmtClock(t, false)));
  }
  root.append(grid);

  // Bars: answered (bottom) + abandoned stacked on top
  const bars = svg('g', { class: 'bars' });
  const pad = Math.min(1.5, bw * 0.18);
  const entPts = [];
  buckets.forEach((w, i) => {
    const partial = i === n - 1;
    const e = w ? num(w.entered) || 0 : 0;
    entPts.push([x(i), yC(e)], [x(i + 1), yC(e)]);
    if (!w) return;
    const a = num(w.answered) || 0;
    const b = num(w.abandoned) || 0;
    const bx = x(i) + pad; const bwid = Math.max(0.5, bw - 2 * pad);
    if (a > 0) bars.append(svg('rect', { x: bx, y: yC(a), width: bwid, height: yC(0) - yC(a), class: `bar-ans${partial ? ' partial' : ''}` }));
    if (b > 0) bars.append(svg('rect', { x: bx, y: yC(a + b), width: bwid, height: yC(a) - yC(a + b), class: `bar-abd${partial ? ' partial' : ''}` }));
  });
  root.append(bars);
  // Entered as a step line
  root.append(svg('polyline', { points: entPts.map((p) => p.map((v) => v.toFixed(1)).join(',')).join(' '), class: 'line-ent' }));
  // SL% line, broken where there is no value
  const slG = svg('g', { class: 'sl' });
  let seg = [];
  const flush = () => {
    if (seg.length === 1) slG.append(svg('circle', { cx: seg[0][0], cy: seg[0][1], r: 2.2, class: 'dot-sl' }));
    else if (seg.length > 1) slG.append(svg('polyline', { points: seg.map((p) => p.map((v) => v.toFixed(1)).join(',')).join(' '), class: 'line-sl' }));
    seg = [];
  };
  buckets.forEach((w, i) => {
    const p = w ? num(w.service_level_pct) : null;
    if (p === null) { flush(); return; }
    seg.push([x(i) + bw / 2, yP(Math.max(0, Math.min(100, p)))]);
  });
  flush();
  root.append(slG);
  // Hover targets with native tooltips
  const hov = svg('g', { class: 'hover' });
  buckets.forEach((w, i) => {
    const r = svg('rect', { x: x(i), y: T, width: bw, height: ph, class: 'hit' });
    const start = t0 + i * ws;
    const tip = w
      ? `${fmtClock(start, false)}  entered ${num(w.entered) || 0} · answered ${num(w.answered) || 0} · abandoned ${num(w.abandoned) || 0} · SL ${fmtPct(num(w.service_level_pct))} · ASA ${fmtDur(num(w.avg_wait_s))}`
      : `${fmtClock(start, false)}  no calls`;
    r.append(svg('title', null, tip));
    hov.append(r);
  });
  root.append(hov);

  if (!windows.length) {
    root.append(svg('text', { x: L + pw / 2, y: T + ph / 2, class: 'nodata', 'text-anchor': 'middle' }, 'No calls in the last hour'));
  }
  c.body.replaceChildren(root);
}

// ---------------------------------------------------------------------------
// Header, banners, ticking
// ---------------------------------------------------------------------------
function renderHealth() {
  const now = Date.now();
  // Clock
  setText($('clock'), fmtClock(now / 1000));

  // Updated N s ago (from the last good status answer)
  const lastAt = Math.max(S.statusAt, 0);
  const ageS = lastAt ? (now - lastAt) / 1000 : null;
  const dot = $('conn-dot');
  if (S.authBlocked) {
    setText($('updated-text'), 'Sign-in required');
    setAttr(dot, 'data-state', 'down');
  } else if (ageS === null) {
    setText($('updated-text'), S.connError ? 'Cannot reach the server' : 'Connecting…');
    setAttr(dot, 'data-state', S.connError ? 'down' : 'init');
  } else {
    setText($('updated-text'), `Updated ${ageS < 1.5 ? 'just now' : `${fmtAgo(ageS)} ago`}`);
    const srvStale = !!((S.status && S.status.stale) || (S.operators && S.operators.stale));
    setAttr(dot, 'data-state', S.connError ? 'down' : (ageS > STALE_AFTER_S || srvStale) ? 'stale' : 'ok');
  }
  setAttr($('updated-text'), 'data-value', ageS === null ? '' : Math.floor(ageS));

  // Connection banner
  const conn = $('conn-banner');
  if (S.connError && !S.authBlocked) {
    const since = S.connErrorSince ? (now - S.connErrorSince) / 1000 : 0;
    const last = lastAt ? `Showing data from ${fmtClock(lastAt / 1000)}` : 'No data yet';
    setText($('conn-banner-text'), `${last} · ${S.connError} · retrying (down ${fmtAgo(since)})`);
    setHidden(conn, false);
  } else {
    setHidden(conn, true);
  }

  // Stale banner: the server says so, or our data is older than STALE_AFTER_S
  const st = S.status;
  const opsBody = S.operators;
  const serverStale = !!((st && st.stale) || (opsBody && opsBody.stale));
  const lag = st ? num(st.lag_s) : null;
  const backlog = st ? num(st.backlog_records) : null;
  // How old the answer was when generated (server clock), plus how long ago we got it.
  const genAge = st && isNum(st.generated_at) ? Math.max(0, serverNow() - st.generated_at) : ageS;
  const dataAge = genAge === null ? null : Math.max(genAge, ageS || 0);
  const tooOld = dataAge !== null && dataAge > STALE_AFTER_S;
  const banner = $('stale-banner');
  if (lastAt && (serverStale || tooOld)) {
    const parts = [];
    if (serverStale) {
      parts.push(lag !== null
        ? `The service is ${fmtAgo(lag)} behind live events (lag ${lag.toFixed(1)} s).`
        : 'The service is behind live events (lag unknown).');
      if (backlog !== null && backlog > 0) parts.push(`${Math.round(backlog).toLocaleString('en-US')} records still to process.`);
    }
    if (tooOld) parts.push(`Last update ${fmtAgo(dataAge)} ago.`);
    parts.push('Figures may not reflect the current situation.');
    setText($('stale-banner-text'), parts.join(' '));
    const crit = (lag !== null && lag >= STALE_CRIT_S) || (dataAge !== null && dataAge >= STALE_CRIT_S) || (serverStale && lag === null);
    setAttr(banner, 'data-level', crit ? 'crit' : 'warn');
    setAttr(banner, 'data-lag', lag === null ? '' : lag);
    setAttr(banner, 'data-backlog', backlog === null ? '' : backlog);
    setHidden(banner, false);
    document.body.classList.add('is-stale');
    document.body.classList.toggle('is-stale-crit', crit);
  } else {
    setHidden(banner, true);
    setAttr(banner, 'data-level', '');
    document.body.classList.remove('is-stale', 'is-stale-crit');
  }
  document.body.classList.toggle('is-offline', !!S.connError);
}

function tick() {
  renderHealth();
  for (const row of S.opRows.values()) updateOpTimer(row);
  chartScheduler();
}

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------
function boot() {
  setupAuth();
  setupOperatorsUi();
  S.token = readToken();
  renderHealth();
  setInterval(tick, TICK_MS);
  if (!S.token) {
    S.authBlocked = true;
    showAuth('Enter a manager access token to open the dashboard.');
    return;
  }
  restartPolling();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
