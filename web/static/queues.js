/* The queues table and the summary tiles. */
import { syncCharts } from './charts.js';
import { ABANDON_CRIT_PCT, ABANDON_WARN_PCT, LONGEST_WAIT_CRIT_S, SL_CRIT_PCT, SL_TARGET_PCT, limits } from './config.js';
import { $, DASH, el, fmtDur, fmtInt, fmtPct, num, setAttr, setHidden, setNum, setText, worst } from './dom.js';
import { opState } from './operators.js';
import { S } from './state.js';

// ---------------------------------------------------------------------------
// Queue classification
// ---------------------------------------------------------------------------
export function queueAlerts(q) {
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
    else if (longest > limits.sl_threshold_s) alerts.push({ level: 'warn', text: `Wait > ${limits.sl_threshold_s} s` });
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

export const lvlWaiting = (q) => ((num(q.calls_waiting) || 0) > 0 && num((q.operators || {}).available) === 0 ? 'crit' : '');
export function lvlLongest(q) {
  const v = num(q.longest_wait_s);
  if (v === null || !(num(q.calls_waiting) > 0)) return '';
  return v > LONGEST_WAIT_CRIT_S ? 'crit' : v > limits.sl_threshold_s ? 'warn' : '';
}
export function lvlSl(v) { return v === null ? '' : v < SL_CRIT_PCT ? 'crit' : v < SL_TARGET_PCT ? 'warn' : 'good'; }
export function lvlAb(v) { return v === null ? '' : v > ABANDON_CRIT_PCT ? 'crit' : v > ABANDON_WARN_PCT ? 'warn' : ''; }

// ---------------------------------------------------------------------------
// Queues table
// ---------------------------------------------------------------------------
export const W15 = (q) => q.last_15m || {};
export const QUEUE_COLS = [
  { id: 'calls-waiting', get: (q) => num(q.calls_waiting), fmt: fmtInt, level: (v, q) => lvlWaiting(q), cls: 'num big' },
  { id: 'longest-wait', get: (q) => num(q.longest_wait_s), fmt: fmtDur, level: (v, q) => lvlLongest(q), cls: 'num big' },
  { id: 'logged-in', get: (q) => num((q.operators || {}).logged_in), fmt: fmtInt, cls: 'num group-start' },
  { id: 'available', get: (q) => num((q.operators || {}).available), fmt: fmtInt, level: (v, q) => lvlWaiting(q), cls: 'num' },
  { id: 'on-call', get: (q) => num((q.operators || {}).on_call), fmt: fmtInt, cls: 'num' },
  { id: 'paused', get: (q) => num((q.operators || {}).paused), fmt: fmtInt, cls: 'num' },
  { id: 'sl-15m', get: (q) => num(W15(q).service_level_pct), fmt: fmtPct, level: lvlSl, cls: 'num group-start' },
  { id: 'abandon-15m', get: (q) => num(W15(q).abandon_rate_pct), fmt: fmtPct, level: lvlAb, cls: 'num' },
  { id: 'asa-15m', get: (q) => num(W15(q).avg_wait_s), fmt: fmtDur, level: (v) => (v !== null && v > limits.sl_threshold_s ? 'warn' : ''), cls: 'num' },
  { id: 'answered-15m', get: (q) => num(W15(q).answered), fmt: fmtInt, cls: 'num' },
  { id: 'abandoned-15m', get: (q) => num(W15(q).abandoned), fmt: fmtInt, cls: 'num' },
];

export function makeQueueRow(name) {
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

export function renderQueues(queues) {
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

export function renderStatus() {
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
export function setTile(testid, raw, text, level, sub, subId) {
  const node = document.querySelector(`[data-testid="${testid}"]`);
  setNum(node, raw, text, level);
  setAttr(node.closest('.tile'), 'data-level', level || '');
  if (subId) setText($(subId), sub || '\u00a0');
}

export function renderSummary() {
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
      longest === null ? '' : longest > LONGEST_WAIT_CRIT_S ? 'crit' : longest > limits.sl_threshold_s ? 'warn' : '',
      longestQ ? `queue ${longestQ}` : `SL threshold ${limits.sl_threshold_s} s`, 'tile-longest-sub');
    const sl = answeredOrLost ? (100 * withSl) / answeredOrLost : null;
    const ab = answeredOrLost ? (100 * abandoned) / answeredOrLost : null;
    setTile('sl-15m-overall', sl, fmtPct(sl), lvlSl(sl), `target ${SL_TARGET_PCT}% in ${limits.sl_threshold_s} s`, 'tile-sl-sub');
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
