/* Support chat, shared by the operator console and the client page: plain ES module, no
 * build step, no dependencies.
 *
 * - the token from the page's `?token=`, REST calls with it as a bearer token
 * - `ChatSocket`: the chat WebSocket (/api/v1/chat/ws/chat), JSON frames
 *   {type, payload, request_id}, reconnecting with backoff
 * - `Conversation`: one chat's messages, keyed by their per-chat message id (history and
 *   live never shown twice, shown in order however they arrive), with the messages we
 *   sent and the desk has not confirmed yet (sent again, same client_message_id, after a
 *   reconnect: the desk keeps a retry once)
 *
 * User text only ever reaches the page as text (textContent / text nodes). */

export const API = '/api/v1/chat';
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const PING_MS = 25000;
const REQUEST_TIMEOUT_MS = 10000;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------
export const $ = (id) => document.getElementById(id);

/** An element; string children become text nodes (never parsed as HTML). */
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

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function newId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID().replace(/-/g, '');
  return `${Date.now().toString(16)}${Math.random().toString(16).slice(2)}`;
}

const pad2 = (n) => (n < 10 ? `0${n}` : String(n));
export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Seconds since an ISO time, as "45 s" / "12 min" / "2 h 05 min". */
export function fmtSince(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (!Number.isFinite(s)) return '';
  if (s < 90) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} min`;
}

export function storageGet(key) {
  try { return window.localStorage.getItem(key); } catch (_) { return null; }
}
export function storageSet(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch (_) { /* private mode: memory only */ }
}

// ---------------------------------------------------------------------------
// Token and REST
// ---------------------------------------------------------------------------
export function pageToken() {
  return (new URLSearchParams(window.location.search).get('token') || '').trim();
}

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A JSON call to the chat API: the answer's body, or an ApiFailure. */
export async function api(token, method, path, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiFailure(0, 'network', err && err.name === 'AbortError' ? 'the server did not answer' : 'network error');
  } finally {
    clearTimeout(timer);
  }
  let answer = null;
  try { answer = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    throw new ApiFailure(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
  }
  return answer;
}

/** Every message of a chat after `after` (the answer is paged): {chat, messages}. */
export async function fetchMessages(token, chatId, after) {
  const messages = [];
  let chat = null;
  let from = after;
  for (let page = 0; page < 100; page += 1) {
    const answer = await api(token, 'GET', `/chats/${encodeURIComponent(chatId)}/messages?after=${from}`);
    chat = answer.chat;
    messages.push(...answer.messages);
    if (!answer.more || !answer.messages.length) break;
    from = answer.messages[answer.messages.length - 1].message_id;
  }
  return { chat, messages };
}

// ---------------------------------------------------------------------------
// The WebSocket
// ---------------------------------------------------------------------------
/**
 * One chat WebSocket that keeps itself open.
 *
 * opts: token; params() -> extra query parameters for each (re)connect (chat_id, since);
 * onFrame(frame); onState(state, detail) with state connecting|open|closed|stopped;
 * onOpen(first) after the server's `connected` frame; check() -> Promise<boolean>,
 * asked after a connect that never opened (false: stop retrying).
 */
export class ChatSocket {
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.attempt = 0;
    this.opened = 0;       // `connected` frames seen
    this.stopped = false;
    this.timer = null;
    this.pinger = null;
    this.ready = false;
  }

  url() {
    const params = new URLSearchParams({ token: this.opts.token });
    const extra = this.opts.params ? this.opts.params() : {};
    for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) params.set(k, String(v));
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${window.location.host}${API}/ws/chat?${params}`;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.ready = false;
    this.state('connecting', this.attempt ? `retry ${this.attempt}` : '');
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this.retry(false);
      return;
    }
    this.ws = ws;
    let confirmed = false;
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (_) { return; }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'connected') {
        confirmed = true;
        this.ready = true;
        this.attempt = 0;
        this.opened += 1;
        this.state('open', '');
        this.keepAlive();
        this.opts.onFrame(frame);
        if (this.opts.onOpen) this.opts.onOpen(this.opened === 1);
        return;
      }
      this.opts.onFrame(frame);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      clearInterval(this.pinger);
      this.retry(confirmed);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  async retry(wasOpen) {
    if (this.stopped) return;
    this.attempt += 1;
    if (!wasOpen && this.opts.check) {
      let keepTrying = true;
      try { keepTrying = await this.opts.check(); } catch (_) { keepTrying = true; }
      if (!keepTrying) {
        this.stop();
        return;
      }
    }
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt - 1, 6));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.state('closed', `reconnecting in ${Math.max(1, Math.round(delay / 1000))} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  keepAlive() {
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.send('ping', {}), PING_MS);
  }

  /** Sends a frame if the socket is open; its request_id, or null when not sent. */
  send(type, payload, requestId) {
    if (!this.ws || !this.ready || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = requestId || newId();
    this.ws.send(JSON.stringify({ type, payload: payload || {}, request_id: id }));
    return id;
  }

  get isOpen() {
    return Boolean(this.ws && this.ready && this.ws.readyState === WebSocket.OPEN);
  }

  /** Drop the connection now and reconnect (as after a network failure). */
  reconnect() {
    if (this.ws) this.ws.close();
    else this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
    this.state('stopped', '');
  }

  state(state, detail) {
    if (this.opts.onState) this.opts.onState(state, detail);
  }
}

/** Show a socket's state on a dot + label pair (data-state on both). */
export function showConnection(dot, label, state, detail) {
  const text = { connecting: 'Connecting…', open: 'Connected', closed: 'Disconnected', stopped: 'Stopped' }[state] || state;
  dot.dataset.state = state;
  label.dataset.state = state;
  setText(label, detail ? `${text} (${detail})` : text);
}

// ---------------------------------------------------------------------------
// A conversation
// ---------------------------------------------------------------------------
/**
 * One chat's messages in an <ol>, in message-id order. `describe(payload)` gives
 * {mine, who} for a message (its label and side).
 */
export class Conversation {
  constructor(chatId, describe) {
    this.chatId = chatId;
    this.describe = describe;
    this.list = el('ol', { class: 'messages', 'data-testid': 'messages', 'data-chat': chatId, 'aria-live': 'polite' });
    this.byId = new Map();     // message_id -> li
    this.pending = new Map();  // client_message_id -> {text, li, requestId}
    this.last = 0;             // the highest message id shown
  }

  /** The highest id n with every message 1..n shown: what to ask for after a gap. */
  contiguous() {
    let n = 0;
    while (this.byId.has(n + 1)) n += 1;
    return n;
  }

  /** Adds a message payload; false when it was shown already. */
  add(payload) {
    const id = Number(payload.message_id);
    if (!Number.isInteger(id) || this.byId.has(id)) return false;
    const waiting = payload.client_message_id && this.pending.get(payload.client_message_id);
    if (waiting) {
      waiting.li.remove();
      this.pending.delete(payload.client_message_id);
    }
    const { mine, who } = this.describe(payload);
    const li = el('li', {
      class: `msg ${mine ? 'mine' : 'theirs'} role-${payload.sender_role}`,
      'data-testid': 'message',
      'data-message-id': id,
      'data-sender-role': payload.sender_role,
      'data-sender': payload.sender_id,
    },
    el('div', { class: 'msg-meta' }, el('span', { class: 'msg-who' }, who), el('time', { datetime: payload.timestamp }, fmtTime(payload.timestamp))),
    el('div', { class: 'msg-text', 'data-testid': 'message-text' }, payload.message));
    let before = null;  // the first shown message with a higher id
    for (const [other, node] of this.byId) if (other > id && (!before || other < Number(before.dataset.messageId))) before = node;
    if (before) this.list.insertBefore(li, before);
    else {
      const firstPending = this.list.querySelector('.msg.pending');
      this.list.insertBefore(li, firstPending);
    }
    this.byId.set(id, li);
    this.last = Math.max(this.last, id);
    return true;
  }

  /** A message of ours on its way: shown greyed until the desk confirms it. */
  addPending(text, who) {
    const clientMessageId = newId();
    const li = el('li', { class: 'msg mine pending', 'data-testid': 'message-pending', 'data-client-message-id': clientMessageId },
      el('div', { class: 'msg-meta' }, el('span', { class: 'msg-who' }, who), el('span', { class: 'msg-status' }, 'sending…')),
      el('div', { class: 'msg-text' }, text));
    this.list.append(li);
    this.pending.set(clientMessageId, { text, li, requestId: null });
    return clientMessageId;
  }

  /** A pending message the desk refused (its request id). */
  failed(requestId, reason) {
    for (const [cid, p] of this.pending) {
      if (p.requestId === requestId) {
        p.li.classList.add('failed');
        p.li.dataset.testid = 'message-failed';
        const status = p.li.querySelector('.msg-status');
        if (status) status.textContent = `not sent: ${reason}`;
        this.pending.delete(cid);
        return true;
      }
    }
    return false;
  }

  /** (Re)sends every unconfirmed message on `socket`; the same client_message_id each time. */
  flush(socket, withChatId) {
    for (const [cid, p] of this.pending) {
      const payload = { text: p.text, client_message_id: cid };
      if (withChatId) payload.chat_id = this.chatId;
      const rid = socket.send('message', payload);
      if (rid) p.requestId = rid;
    }
  }

  scrollToEnd() {
    const box = this.list.parentElement;
    if (box) box.scrollTop = box.scrollHeight;
  }
}
