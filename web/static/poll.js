/* Polling /queues/status and /operators once a second, never overlapping, backing off while down. */
import { POLL_BACKOFF_MAX_MS, POLL_MS, TOKEN_KEY, learnLimits } from './config.js';
import { $ } from './dom.js';
import { renderHealth } from './health.js';
import { renderOperators } from './operators.js';
import { renderStatus, renderSummary } from './queues.js';
import { AuthError, S, api, showAuth, storageSet } from './state.js';

// ---------------------------------------------------------------------------
// Polling: status + operators once a second, no overlap
// ---------------------------------------------------------------------------
export function restartPolling() {
  S.pollGen += 1;
  clearTimeout(S.pollTimer);
  S.pollTimer = null;
  S.failures = 0;
  if (!S.polling) pollLoop(S.pollGen);
  // else: the running loop notices the new generation and reschedules itself.
  for (const c of S.charts.values()) c.fetchedAt = 0;
}

export async function pollLoop(gen) {
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
      learnLimits(st.value);
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

export function onAuthFailure(err) {
  S.authBlocked = true;
  clearTimeout(S.pollTimer);
  if (err.status === 401) {
    storageSet(TOKEN_KEY, null);
  }
  renderHealth();
  showAuth(err.message, { cancellable: false });
}
