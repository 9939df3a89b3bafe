/* Display thresholds and timing of the dashboard, and the limits the server owns
 * (`limits`, learned from every /queues/status answer: never re-declared here). */
// ---------------------------------------------------------------------------
// Thresholds and timing of the display (tune here)
// ---------------------------------------------------------------------------
export const LONGEST_WAIT_CRIT_S = 60;   // longest wait that turns a queue red
export const SL_TARGET_PCT = 80;         // SL% below this: warning
export const SL_CRIT_PCT = 60;           // SL% below this: critical
export const ABANDON_WARN_PCT = 10;      // abandon% above this: warning
export const ABANDON_CRIT_PCT = 20;      // abandon% above this: critical
export const PAUSE_LONG_S = 15 * 60;     // operator paused longer than this is highlighted
export const STALE_CRIT_S = 30;          // stale banner turns red past this lag/age

export const POLL_MS = 1000;             // status + operators
export const POLL_BACKOFF_MAX_MS = 5000; // slowest retry while the connection is down
export const CHART_REFRESH_MS = 15000;   // per-queue /metrics refresh
export const CHART_SPAN_S = 3600;        // the charts show the last hour
export const REQUEST_TIMEOUT_MS = 8000;
export const TICK_MS = 250;              // clock / "N s ago" / time-in-state refresh

export const TOKEN_KEY = 'switchboard.token';
export const SORT_KEY = 'switchboard.opsSort';

export const STATE_ORDER = { ringing: 0, on_call: 1, available: 2, paused: 3, offline: 4 };
export const STATE_LABEL = {
  ringing: 'Ringing', on_call: 'On call', available: 'Available', paused: 'Paused', offline: 'Offline',
};

// Limits the server owns (its SL_THRESHOLD_S and STALE_AFTER_S settings), as its last
// /queues/status answer said; null until the first answer.
export const limits = { sl_threshold_s: null, stale_after_s: null, window_s: null };

export function learnLimits(body) {
  const from = (body && body.limits) || {};
  for (const key of Object.keys(limits)) {
    if (typeof from[key] === 'number' && Number.isFinite(from[key])) limits[key] = from[key];
  }
}
