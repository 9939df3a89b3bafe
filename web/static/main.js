/* Switchboard manager dashboard: plain ES modules, no build step, no dependencies.
 *
 * Polls the JSON API once a second (never overlapping), updates the DOM in place with
 * keyed rows, and draws the per-queue charts as inline SVG. Modules by concern: config,
 * dom, state (token, API), poll, queues, operators, charts, health. */
import { TICK_MS } from './config.js';
import { renderHealth, tick } from './health.js';
import { setupOperatorsUi } from './operators.js';
import { restartPolling } from './poll.js';
import { S, readToken, setupAuth, showAuth } from './state.js';

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------
export function boot() {
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
