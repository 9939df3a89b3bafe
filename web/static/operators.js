/* The operators list: states, timers, sorting and filtering. */
import { PAUSE_LONG_S, SORT_KEY, STATE_LABEL, STATE_ORDER } from './config.js';
import { $, DASH, el, fmtDur, fmtInt, num, setAttr, setHidden, setNum, setText, str } from './dom.js';
import { S, serverNow, storageGet, storageSet } from './state.js';

// ---------------------------------------------------------------------------
// Operators list
// ---------------------------------------------------------------------------
export function opState(o) {
  const s = typeof o.state === 'string' ? o.state.toLowerCase() : '';
  return s in STATE_ORDER ? s : (o.paused ? 'paused' : (s || 'unknown'));
}

export const OP_SORTS = {
  state: (a, b) => (STATE_ORDER[opState(a)] ?? 9) - (STATE_ORDER[opState(b)] ?? 9)
    || (num(a.since) ?? Infinity) - (num(b.since) ?? Infinity),
  name: (a, b) => opName(a).localeCompare(opName(b), undefined, { numeric: true }),
  time: (a, b) => (num(a.since) ?? Infinity) - (num(b.since) ?? Infinity),
  calls: (a, b) => (num(b.calls_today) ?? -1) - (num(a.calls_today) ?? -1),
  talk: (a, b) => (num(b.talk_time_today_s) ?? -1) - (num(a.talk_time_today_s) ?? -1),
  aht: (a, b) => (num(b.aht_s) ?? -1) - (num(a.aht_s) ?? -1),
};

export function opName(o) { return str(o.name) || String(o.id); }

export function makeOpRow(id) {
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

export function renderOperators() {
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

export function updateOpTimer(row) {
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

export function applyOpsOrderAndFilter() {
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

export function setupOperatorsUi() {
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
