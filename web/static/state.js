/* The dashboard's state (`S`), the access token and the JSON API client. */
import { REQUEST_TIMEOUT_MS, TOKEN_KEY } from './config.js';
import { $ } from './dom.js';
import { restartPolling } from './poll.js';

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------
export const S = {
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
export const serverNow = () => Date.now() / 1000 - S.clockSkewS;

// ---------------------------------------------------------------------------
// Token handling
// ---------------------------------------------------------------------------
export function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch (_) { return null; }
}
export function storageSet(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (_) { /* private mode: keep it in memory only */ }
}

export function readToken() {
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

export function showAuth(message, { cancellable = false } = {}) {
  $('auth-msg').textContent = message;
  $('token-cancel').hidden = !cancellable;
  $('auth').hidden = false;
  const input = $('token-input');
  input.value = '';
  setTimeout(() => input.focus(), 0);
}

export function hideAuth() { $('auth').hidden = true; }

export function setupAuth() {
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
export class AuthError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
export class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path) {
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
