/* Support chat, the client page (GET /chat/client?token=...): plain ES module.
 *
 * Without an open chat: a form whose text opens one (POST /chats). With one (its id in
 * the URL hash `#chat=<id>`, and remembered per token in localStorage, so a reload comes
 * back to it): its history from GET /chats/{id}/messages, then a WebSocket of that chat
 * with since=<last id shown>, which reconnects on its own and asks again from the last
 * message shown. A lawyer the operator brings in opens a chat of its own: a tab here. */
import {
  $, ApiFailure, ChatSocket, Conversation, api, el, fetchMessages, pageToken, setText, showConnection, storageGet,
  storageSet,
} from './chat.js';

const S = {
  token: '',
  me: null,
  chatId: null,
  chat: null,          // the chat's view (GET .../messages answer's `chat`), updated by the frames
  conv: null,
  socket: null,
  generation: 0,       // bumped on every switch of chat: late answers of the previous one are dropped
  chats: new Map(),    // chat_id -> {chat_id, kind, staff}: the tabs
};

const ROLE_LABEL = { operator: 'Operator', lawyer: 'Lawyer', admin: 'Support', client: 'You' };
const lastChatKey = () => `switchboard.chat.${S.token}`;

// ---------------------------------------------------------------------------
// Notices
// ---------------------------------------------------------------------------
let noticeTimer = null;
function notice(level, code, text) {
  const box = $('notice');
  box.dataset.level = level;
  box.dataset.code = code || '';
  setText($('notice-code'), code || '');
  setText($('notice-text'), text || '');
  box.hidden = false;
  clearTimeout(noticeTimer);
  if (level === 'info') noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

// ---------------------------------------------------------------------------
// Tabs: the support chat and its lawyer chats
// ---------------------------------------------------------------------------
function tabLabel(c) {
  if (c.kind === 'lawyer') return `Lawyer${c.staff ? ` ${c.staff}` : ''}`;
  const supports = [...S.chats.values()].filter((x) => x.kind !== 'lawyer').length;
  return supports > 1 ? `Support · ${c.chat_id.slice(-6)}` : 'Support';
}

function renderTabs() {
  const tabs = [...S.chats.values()].map((c) => {
    const a = el('a', {
      class: 'tab', href: `#chat=${encodeURIComponent(c.chat_id)}`, 'data-testid': 'chat-tab', 'data-chat': c.chat_id,
      'data-kind': c.kind, 'aria-current': String(c.chat_id === S.chatId),
    }, tabLabel(c));
    return a;
  });
  $('tabs').replaceChildren(...tabs);
  $('tabs').hidden = tabs.length < 2 && !(tabs.length === 1 && tabs[0].dataset.kind === 'lawyer');
}

function knowChat(chatId, kind, staff) {
  const before = S.chats.get(chatId) || {};
  S.chats.set(chatId, { chat_id: chatId, kind: kind || before.kind || 'support', staff: staff || before.staff || null });
  renderTabs();
}

async function loadChats() {
  try {
    const answer = await api(S.token, 'GET', '/chats');
    for (const c of answer.chats) knowChat(c.chat_id, c.kind, c.operator_id);
    return answer.chats;
  } catch (err) {
    if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) {
      notice('error', err.code, `${err.message}: this token cannot open a support chat.`);
      return null;
    }
    notice('warn', err.code || 'error', `Could not list your chats: ${err.message}`);
    return [];
  }
}

// ---------------------------------------------------------------------------
// The chat on screen
// ---------------------------------------------------------------------------
function describe(payload) {
  const mine = payload.sender_role === 'client';
  return { mine, who: mine ? 'You' : `${ROLE_LABEL[payload.sender_role] || payload.sender_role} ${payload.sender_id}` };
}

function renderState() {
  const c = S.chat;
  const state = $('chat-state');
  let key = '';
  let text = '';
  if (c) {
    if (c.state === 'closed') [key, text] = ['closed', 'Chat closed'];
    else if (c.state === 'queued') [key, text] = ['waiting', 'Waiting for an operator…'];
    else if (c.kind === 'lawyer') [key, text] = ['assigned', `With lawyer ${c.operator_id}`];
    else [key, text] = ['assigned', `Assigned to operator ${c.operator_id}`];
  }
  state.dataset.state = key;
  state.dataset.operator = (c && c.state === 'assigned' && c.operator_id) || '';
  setText(state, text);
  setText($('chat-title'), c && c.kind === 'lawyer' ? 'Chat with your lawyer' : 'Support chat');
  setText($('chat-sub'), c ? c.chat_id : '');
  const closed = Boolean(c && c.state === 'closed');
  $('compose-form').hidden = closed;
  $('closed-bar').hidden = !closed;
  $('chat-panel').dataset.chat = S.chatId || '';
}

function setHash(chatId) {
  const url = `${window.location.pathname}${window.location.search}${chatId ? `#chat=${encodeURIComponent(chatId)}` : ''}`;
  try { window.history.replaceState(null, '', url); } catch (_) { /* ignore */ }
}

function hashChat() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  return params.get('chat');
}

function showForm() {
  stopSocket();
  S.generation += 1;
  S.chatId = null;
  S.chat = null;
  S.conv = null;
  setHash(null);
  renderTabs();
  $('chat-panel').hidden = true;
  $('open-panel').hidden = false;
  $('open-chat').disabled = false;
  $('open-text').focus();
}

function stopSocket() {
  if (S.socket) S.socket.stop();
  S.socket = null;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** The chat's history; a chat just created may take the desk a moment (POST answered 202). */
async function loadHistory(chatId, fresh, generation) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fetchMessages(S.token, chatId, 0);
    } catch (err) {
      if (!(fresh && err instanceof ApiFailure && err.status === 404 && attempt < 30 && generation === S.generation)) throw err;
      await sleep(500);
    }
  }
}

async function openChat(chatId, fresh = false) {
  if (S.chatId === chatId && S.conv) return;
  stopSocket();
  const generation = ++S.generation;
  S.chatId = chatId;
  S.chat = null;
  S.conv = new Conversation(chatId, describe);
  setHash(chatId);
  $('open-panel').hidden = true;
  $('chat-panel').hidden = false;
  $('chat-scroll').replaceChildren(S.conv.list);
  renderState();
  setText($('chat-state'), 'Loading…');
  let answer;
  try {
    answer = await loadHistory(chatId, fresh, generation);
  } catch (err) {
    if (generation !== S.generation) return;
    if (err instanceof ApiFailure && [401, 403, 404].includes(err.status)) {
      notice('error', err.code, `Chat ${chatId}: ${err.message}`);
      if (storageGet(lastChatKey()) === chatId) storageSet(lastChatKey(), null);
      S.chats.delete(chatId);
      if (err.status !== 401) showForm();
      return;
    }
    notice('warn', err.code || 'error', `Could not load the chat: ${err.message}; retrying over the connection.`);
    answer = { chat: null, messages: [] };
  }
  if (generation !== S.generation) return;
  if (answer.chat) {
    S.chat = answer.chat;
    knowChat(chatId, answer.chat.kind, answer.chat.operator_id);
    if (answer.chat.kind !== 'lawyer') storageSet(lastChatKey(), chatId);
  } else knowChat(chatId);
  for (const m of answer.messages) S.conv.add(m);
  S.conv.scrollToEnd();
  renderState();
  if (S.chat && S.chat.state === 'closed') return;
  connect(generation);
}

function connect(generation) {
  const conv = S.conv;
  S.socket = new ChatSocket({
    token: S.token,
    params: () => ({ chat_id: conv.chatId, since: conv.contiguous() }),
    onFrame: (frame) => { if (generation === S.generation) onFrame(frame); },
    onState: (state, detail) => showConnection($('conn-dot'), $('conn-text'), state, detail),
    onOpen: () => { conv.flush(S.socket, true); },
    check: async () => {
      try {
        await api(S.token, 'GET', `/chats/${encodeURIComponent(conv.chatId)}/messages?after=0&limit=1`);
        return true;
      } catch (err) {
        if (err instanceof ApiFailure && [401, 403, 404].includes(err.status)) {
          notice('error', err.code, `Chat ${conv.chatId}: ${err.message}`);
          return false;
        }
        return true;
      }
    },
  }).start();
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------
function onFrame(frame) {
  const p = frame.payload || {};
  const here = p.chat_id === S.chatId;
  switch (frame.type) {
    case 'connected':
      S.me = p.user_id;
      setText($('me'), p.user_id);
      break;
    case 'message':
      if (here && S.conv.add(p)) S.conv.scrollToEnd();
      break;
    case 'chat_assigned':
      if (here && S.chat) {
        S.chat = { ...S.chat, state: 'assigned', operator_id: p.operator_id };
        knowChat(S.chatId, null, p.operator_id);
        renderState();
      }
      break;
    case 'chat_transferred':
      if (here && S.chat) {
        S.chat = { ...S.chat, state: p.to_operator_id ? 'assigned' : 'queued', operator_id: p.to_operator_id };
        renderState();
        notice('info', 'transferred', p.to_operator_id ? `Your chat was handed to operator ${p.to_operator_id}.`
          : 'Your chat is back in the queue: the next free operator will answer.');
      }
      break;
    case 'chat_closed':
      if (here && S.chat) {
        S.chat = { ...S.chat, state: 'closed' };
        renderState();
        if (storageGet(lastChatKey()) === S.chatId) storageSet(lastChatKey(), null);
        stopSocket();
        showConnection($('conn-dot'), $('conn-text'), 'stopped', 'chat closed');
      }
      break;
    case 'lawyer_assigned':
      knowChat(p.chat_id, 'lawyer', p.lawyer_id);
      notice('info', 'lawyer_assigned', `Lawyer ${p.lawyer_id} joined: open the "Lawyer ${p.lawyer_id}" tab to talk to them.`);
      break;
    case 'error':
      if (frame.request_id && S.conv) S.conv.failed(frame.request_id, p.message);
      notice('error', p.code || 'error', p.message || 'refused');
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------
function sendMessage() {
  const text = $('compose').value.trim();
  if (!text || !S.conv || (S.chat && S.chat.state === 'closed')) return;
  const cid = S.conv.addPending(text, 'You');
  const rid = S.socket ? S.socket.send('message', { chat_id: S.chatId, text, client_message_id: cid }) : null;
  if (rid) S.conv.pending.get(cid).requestId = rid;
  $('compose').value = '';
  S.conv.scrollToEnd();
}

async function startChat(text) {
  $('open-chat').disabled = true;
  try {
    const answer = await api(S.token, 'POST', '/chats', { text });
    $('open-text').value = '';
    storageSet(lastChatKey(), answer.chat_id);
    knowChat(answer.chat_id, 'support');
    await openChat(answer.chat_id, true);
  } catch (err) {
    notice('error', err.code || 'error', `Could not open a chat: ${err.message}`);
  } finally {
    $('open-chat').disabled = false;
  }
}

function setupUi() {
  $('open-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('open-text').value.trim();
    if (text) startChat(text);
  });
  $('compose-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendMessage();
  });
  $('compose').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  $('close-chat').addEventListener('click', () => {
    if (!S.socket || !S.socket.send('close_chat', { chat_id: S.chatId, reason: 'closed by the client' })) {
      notice('warn', 'not_connected', 'Not connected: try again in a moment.');
    }
  });
  $('new-chat').addEventListener('click', () => showForm());
  $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
  window.addEventListener('hashchange', () => {
    const chatId = hashChat();
    if (chatId && chatId !== S.chatId) openChat(chatId);
  });
}

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------
export async function boot() {
  setupUi();
  S.token = pageToken();
  if (!S.token) {
    notice('error', 'unauthorized', 'No token: open this page as /chat/client?token=<your token>.');
    showConnection($('conn-dot'), $('conn-text'), 'stopped', 'no token');
    return;
  }
  const chats = await loadChats();
  if (chats === null) {
    showConnection($('conn-dot'), $('conn-text'), 'stopped', 'not allowed');
    return;
  }
  const chatId = hashChat() || storageGet(lastChatKey());
  if (chatId) {
    openChat(chatId);
    return;
  }
  showConnection($('conn-dot'), $('conn-text'), 'stopped', 'no chat open');
  showForm();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
