/* The header clock, the connection and stale banners, and the ticking that keeps them current. */
import { chartScheduler } from './charts.js';
import { STALE_CRIT_S, limits } from './config.js';
import { $, fmtAgo, fmtClock, isNum, num, setAttr, setHidden, setText } from './dom.js';
import { updateOpTimer } from './operators.js';
import { S, serverNow } from './state.js';

// ---------------------------------------------------------------------------
// Header, banners, ticking
// ---------------------------------------------------------------------------
/** An age in seconds past the server's freshness limit (never before the limit is known). */
const olderThanLimit = (ageS) => ageS !== null && limits.stale_after_s !== null && ageS > limits.stale_after_s;

export function renderHealth() {
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
    setAttr(dot, 'data-state', S.connError ? 'down' : (olderThanLimit(ageS) || srvStale) ? 'stale' : 'ok');
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

  // Stale banner: the server says so, or our data is older than the server's STALE_AFTER_S
  const st = S.status;
  const opsBody = S.operators;
  const serverStale = !!((st && st.stale) || (opsBody && opsBody.stale));
  const lag = st ? num(st.lag_s) : null;
  const backlog = st ? num(st.backlog_records) : null;
  // How old the answer was when generated (server clock), plus how long ago we got it.
  const genAge = st && isNum(st.generated_at) ? Math.max(0, serverNow() - st.generated_at) : ageS;
  const dataAge = genAge === null ? null : Math.max(genAge, ageS || 0);
  const tooOld = olderThanLimit(dataAge);
  const banner = $('stale-banner');
  if (lastAt && (serverStale || tooOld)) {
    const parts = [];
    // workers that could not give their share (starting, recovering, down): named, not guessed at
    const missing = new Set([...((st && st.unavailable_workers) || []), ...((opsBody && opsBody.unavailable_workers) || [])]);
    if (missing.size) {
      parts.push(`${missing.size} worker${missing.size > 1 ? 's' : ''} did not answer (starting, recovering or down): `
        + `${[...missing].join(', ')}; their queues and operators are missing.`);
    }
    if (serverStale && (!missing.size || olderThanLimit(lag))) {  // stale for its lag, not only its gaps
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

export function tick() {
  renderHealth();
  for (const row of S.opRows.values()) updateOpTimer(row);
  chartScheduler();
}
