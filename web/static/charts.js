/* Per-queue charts of the last hour (per minute), as inline SVG. */
import { CHART_REFRESH_MS, CHART_SPAN_S, SL_TARGET_PCT } from './config.js';
import { $, el, fmtClock, fmtDur, fmtPct, isNum, num, setAttr, setHidden, svg } from './dom.js';
import { onAuthFailure } from './poll.js';
import { lvlSl } from './queues.js';
import { AuthError, S, api, serverNow } from './state.js';

// ---------------------------------------------------------------------------
// Charts: last hour per minute, refreshed every ~15 s per queue
// ---------------------------------------------------------------------------
export function syncCharts(names) {
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

export let chartBusy = 0;
export function chartScheduler() {
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

export async function loadChart(name, c) {
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

export function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) {
    const r = Math.round(m * p);
    if (r >= v) return r % 2 ? r + 1 : r; // even, so the middle grid line is a whole number
  }
  return 10 * p;
}

export function drawChart(c) {
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
