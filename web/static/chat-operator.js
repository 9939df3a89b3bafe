/* Support chat, the operator console (GET /chat/operator?token=...): plain ES module.
 *
 * One WebSocket without a chat id hears the queue (new_chat_available / chat_taken /
 * queue_updated), this operator's chats (chat_assigned, chat_transferred, chat_closed,
 * lawyer_assigned) and their messages. On every (re)connect the server greets it with
 * the waiting chats and the chats it holds, so the queue is rebuilt from that; each chat's
 * missed messages come from GET /chats/{id}/messages?after=<last contiguous id>. */
import {
  $, ApiFailure, ChatSocket, Conversation, api, el, fetchMessages, fmtSince, pageToken, setText, showConnection,
} from './chat.js';

const S = {
  token: '',
  me: null,
  role: null,
  socket: null,
  queue: new Map(),      // chat_id -> {li, info, pending: request id | null}
  chats: new Map(),      // chat_id -> {id, clientId, kind, state, detail, conv, li, unread, lawyers, acceptedBy}
  selected: null,
  accepting: new Map(),  // request id -> chat_id (our accept_chat frames)
  catching: new Map(),   // chat_id -> Promise of a running catch-up
  operators: new Map(),  // operator_id -> operator_status payload (the transfer target list)
};

const ROLE_LABEL = { client: 'Client', operator: 'Operator', lawyer: 'Lawyer', admin: 'Admin' };

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
// The queue
// ---------------------------------------------------------------------------
function queueOrder(a, b) {
  return (b.info.priority || 0) - (a.info.priority || 0)
    || String(a.info.waiting_since).localeCompare(String(b.info.waiting_since))
    || a.info.chat_id.localeCompare(b.info.chat_id);
}

function renderQueue() {
  const list = $('queue');
  const rows = [...S.queue.values()].sort(queueOrder);
  rows.forEach((row, i) => {
    if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null);
    row.li.dataset.priority = String(row.info.priority || 0);
  });
  setText($('queue-count'), String(rows.length));
  $('queue-count').dataset.value = String(rows.length);
  $('queue-empty').hidden = rows.length > 0;
}

function upsertQueue(info) {
  if (S.role === 'lawyer') return;
  let row = S.queue.get(info.chat_id);
  if (!row) {
    const accept = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'accept' }, 'Accept');
    const li = el('li', { class: 'queue-item', 'data-testid': 'queue-item', 'data-chat': info.chat_id },
      el('div', { class: 'qi-main' },
        el('div', { class: 'qi-client' }, info.client_id || '?'),
        el('div', { class: 'qi-meta' })),
      accept);
    accept.addEventListener('click', () => acceptChat(info.chat_id));
    row = { li, info, pending: null };
    S.queue.set(info.chat_id, row);
  }
  row.info = { ...row.info, ...info };
  tickQueue(row);
  renderQueue();
}

function tickQueue(row) {
  const meta = row.li.querySelector('.qi-meta');
  const prio = row.info.priority ? ` · priority ${row.info.priority}` : '';
  setText(meta, `${row.info.queue || ''} · waiting ${fmtSince(row.info.waiting_since)}${prio}`);
}

function removeQueue(chatId) {
  const row = S.queue.get(chatId);
  if (!row) return;
  row.li.remove();
  S.queue.delete(chatId);
  renderQueue();
}

function clearQueue() {
  for (const row of S.queue.values()) row.li.remove();
  S.queue.clear();
  renderQueue();
}

function acceptChat(chatId) {
  const row = S.queue.get(chatId);
  if (!row || row.pending) return;
  const rid = S.socket.send('accept_chat', { chat_id: chatId });
  if (!rid) {
    notice('warn', 'not_connected', 'Not connected: try again in a moment.');
    return;
  }
  row.pending = rid;
  row.li.classList.add('pending');
  row.li.querySelector('[data-testid="accept"]').disabled = true;
  S.accepting.set(rid, chatId);
}

// ---------------------------------------------------------------------------
// My chats
// ---------------------------------------------------------------------------
function describe(payload) {
  const mine = payload.sender_id === S.me && payload.sender_role === S.role;
  return { mine, who: mine ? 'You' : `${ROLE_LABEL[payload.sender_role] || payload.sender_role} ${payload.sender_id}` };
}

function ensureChat(chatId, info) {
  let chat = S.chats.get(chatId);
  if (!chat) {
    const li = el('li', { class: 'my-chat', 'data-testid': 'my-chat', 'data-chat': chatId, 'data-state': '' },
      el('button', { type: 'button', class: 'pick' },
        el('span', null, el('div', { class: 'mc-client' }), el('div', { class: 'mc-state' })),
        el('span', { class: 'unread', 'data-testid': 'unread', hidden: true })));
    li.querySelector('button').addEventListener('click', () => select(chatId));
    chat = { id: chatId, clientId: null, kind: 'support', state: 'assigned', detail: '', li, unread: 0, lawyers: [],
      conv: new Conversation(chatId, describe) };
    S.chats.set(chatId, chat);
    $('my-chats').prepend(li);
  }
  if (info) {
    if (info.client_id) chat.clientId = info.client_id;
    if (info.role === 'lawyer') chat.kind = 'lawyer';
  }
  renderChatItem(chat);
  return chat;
}

const STATE_TEXT = { assigned: 'open', closed: 'closed', transferred: 'transferred', gone: 'no longer yours' };

function renderChatItem(chat) {
  const { li } = chat;
  li.dataset.state = chat.state;
  li.setAttribute('aria-current', String(S.selected === chat.id));
  setText(li.querySelector('.mc-client'), `${chat.kind === 'lawyer' ? 'Lawyer chat · ' : ''}${chat.clientId || chat.id}`);
  setText(li.querySelector('.mc-state'), chat.detail || STATE_TEXT[chat.state] || chat.state);
  const badge = li.querySelector('.unread');
  badge.hidden = chat.unread === 0;
  setText(badge, String(chat.unread));
  const count = [...S.chats.values()].filter((c) => c.state === 'assigned').length;
  setText($('mine-count'), String(count));
  $('mine-count').dataset.value = String(count);
  $('mine-empty').hidden = S.chats.size > 0;
  if (S.selected === chat.id) renderConversation();
}

function setChatState(chat, state, detail) {
  chat.state = state;
  chat.detail = detail || '';
  renderChatItem(chat);
}

function select(chatId) {
  const before = S.selected && S.chats.get(S.selected);
  S.selected = chatId;
  if (before) renderChatItem(before);
  const chat = S.chats.get(chatId);
  if (!chat) return;
  chat.unread = 0;
  const scroll = $('conv-scroll');
  for (const child of [...scroll.children]) if (child.id !== 'conv-empty') child.remove();
  scroll.append(chat.conv.list);
  renderChatItem(chat);
  chat.conv.scrollToEnd();
  $('compose').focus();
}

function renderConversation() {
  const chat = S.selected && S.chats.get(S.selected);
  const section = document.querySelector('[data-testid="conversation"]');
  section.dataset.chat = chat ? chat.id : '';
  $('conv-empty').hidden = Boolean(chat);
  const open = Boolean(chat && chat.state === 'assigned');
  const support = Boolean(chat && chat.kind === 'support');
  setText($('conv-title'), chat ? `${chat.kind === 'lawyer' ? 'Lawyer chat with' : 'Chat with'} ${chat.clientId || '?'}` : 'No chat selected');
  setText($('conv-sub'), chat ? chat.id : '');
  const state = $('conv-state');
  state.dataset.state = chat ? chat.state : '';
  setText(state, chat ? (chat.detail || STATE_TEXT[chat.state] || chat.state) : '');
  $('compose').disabled = !open;
  $('send').disabled = !open;
  $('close-chat').disabled = !open;
  $('transfer').disabled = !(open && support);
  $('assign-lawyer').disabled = !(open && support);
  const lawyers = $('conv-lawyers');
  lawyers.hidden = !(chat && chat.lawyers.length);
  if (chat && chat.lawyers.length) {
    setText(lawyers, `Lawyer chats: ${chat.lawyers.map((l) => `${l.lawyer_id} (${l.chat_id})`).join(', ')}`);
  }
}

function addMessage(payload) {
  const chat = ensureChat(payload.chat_id);
  if (!chat.conv.add(payload)) return;
  if (S.selected === chat.id) chat.conv.scrollToEnd();
  else if (!describe(payload).mine) {
    chat.unread += 1;
    renderChatItem(chat);
  }
}

/** What the chat said after the last message shown (from REST; a run at a time per chat). */
function catchUp(chat) {
  const running = S.catching.get(chat.id);
  if (running) {
    running.again = true;
    return;
  }
  const job = { again: false };
  S.catching.set(chat.id, job);
  (async () => {
    try {
      do {
        job.again = false;
        const { messages } = await fetchMessages(S.token, chat.id, chat.conv.contiguous());
        for (const m of messages) addMessage(m);
      } while (job.again);
    } catch (err) {
      if (!(err instanceof ApiFailure && (err.status === 403 || err.status === 404))) {
        notice('warn', err.code || 'error', `Could not load the messages of ${chat.id}: ${err.message}`);
      }
    } finally {
      S.catching.delete(chat.id);
    }
  })();
}

/** After a reconnect: chats that stopped being ours while we were away are marked. */
async function reconcile() {
  try {
    const answer = await api(S.token, 'GET', '/chats');
    const open = new Set(answer.chats.map((c) => c.chat_id));
    for (const chat of S.chats.values()) {
      if (chat.state === 'assigned' && !open.has(chat.id)) setChatState(chat, 'gone', 'closed or handed on while you were away');
      catchUp(chat);
    }
  } catch (err) {
    notice('warn', err.code || 'error', `Could not refresh your chats: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------
// Operators (for the transfer box) and my status
// ---------------------------------------------------------------------------
function renderOperators() {
  const list = $('operators');
  list.replaceChildren(...[...S.operators.values()]
    .filter((o) => o.role === 'operator' && o.operator_id !== S.me && o.status === 'online')
    .sort((a, b) => a.operator_id.localeCompare(b.operator_id))
    .map((o) => el('option', { value: o.operator_id }, `${o.operator_id} · ${o.open_chats}/${o.capacity}`)));
}

function onOperatorStatus(payload, fromRequest) {
  if (payload.operator_id === S.me) {
    const shown = $('status-shown');
    shown.dataset.value = payload.status;
    setText(shown, `${payload.status} · ${payload.open_chats}/${payload.capacity}`);
    $('status').dataset.value = payload.status;
    if (fromRequest || document.activeElement !== $('status')) $('status').value = payload.status;
    $('capacity').placeholder = String(payload.capacity);
  } else {
    S.operators.set(payload.operator_id, payload);
    renderOperators();
  }
}

function sendStatus() {
  const payload = { status: $('status').value };
  const capacity = Number($('capacity').value);
  if ($('capacity').value !== '' && Number.isInteger(capacity) && capacity >= 1 && capacity <= 100) payload.capacity = capacity;
  if (!S.socket.send('set_status', payload)) notice('warn', 'not_connected', 'Not connected: your status is sent when the connection is back.');
}

async function loadOperators() {
  if (S.role !== 'operator') return;
  try {
    const answer = await api(S.token, 'GET', '/chats/operators');
    for (const o of answer.operators) if (o.operator_id !== S.me) S.operators.set(o.operator_id, o);
    renderOperators();
  } catch (_) { /* the list is a convenience */ }
}

// ---------------------------------------------------------------------------
// Frames from the server
// ---------------------------------------------------------------------------
function onFrame(frame) {
  const p = frame.payload || {};
  switch (frame.type) {
    case 'connected':
      S.me = p.user_id;
      S.role = p.role;
      setText($('me'), p.user_id);
      setText($('role'), `(${p.role})`);
      document.body.dataset.role = p.role;
      clearQueue();  // the greeting that follows lists every waiting chat
      break;
    case 'new_chat_available':
      upsertQueue(p);
      break;
    case 'chat_taken':
      removeQueue(p.chat_id);
      break;
    case 'queue_updated': {
      const row = S.queue.get(p.chat_id);
      if (row) upsertQueue({ ...row.info, priority: p.priority });
      break;
    }
    case 'chat_assigned': {
      if (p.operator_id !== S.me) break;
      removeQueue(p.chat_id);
      const mineAlready = S.chats.has(p.chat_id);
      const chat = ensureChat(p.chat_id, p);
      const how = p.how === 'transferred' && p.from_operator_id ? `from ${p.from_operator_id}` : '';
      setChatState(chat, 'assigned', how ? `open · ${how}` : '');
      const accepted = frame.request_id && S.accepting.has(frame.request_id);
      if (accepted) S.accepting.delete(frame.request_id);
      if (accepted || !S.selected) select(chat.id);
      if (!mineAlready && p.how !== 'connected' && !accepted) notice('info', p.how, `Chat with ${p.client_id} is yours (${p.how}).`);
      catchUp(chat);
      break;
    }
    case 'chat_transferred': {
      const chat = S.chats.get(p.chat_id);
      if (chat && p.from_operator_id === S.me && p.to_operator_id !== S.me) {
        setChatState(chat, 'transferred', p.to_operator_id ? `transferred to ${p.to_operator_id}` : 'back in the queue');
      }
      break;
    }
    case 'transfer_done':
      notice('info', 'transferred', p.to_operator_id ? `Chat ${p.chat_id} handed to ${p.to_operator_id}.` : `Chat ${p.chat_id} is back in the queue.`);
      break;
    case 'lawyer_assigned': {
      const chat = S.chats.get(p.support_chat_id);
      if (chat && !chat.lawyers.some((l) => l.chat_id === p.chat_id)) {
        chat.lawyers.push({ chat_id: p.chat_id, lawyer_id: p.lawyer_id });
        renderChatItem(chat);
      }
      if (S.role !== 'lawyer') notice('info', 'lawyer_assigned', `Lawyer ${p.lawyer_id} is with ${p.client_id} (chat ${p.chat_id}).`);
      break;
    }
    case 'message':
      addMessage(p);
      break;
    case 'chat_closed': {
      removeQueue(p.chat_id);
      const chat = S.chats.get(p.chat_id);
      if (chat) setChatState(chat, 'closed', `closed by ${p.by_role}${p.reason ? `: ${p.reason}` : ''}`);
      break;
    }
    case 'operator_status':
      onOperatorStatus(p, Boolean(frame.request_id));
      break;
    case 'error':
      onError(frame);
      break;
    default:
      break;  // pong and anything newer
  }
}

function onError(frame) {
  const p = frame.payload || {};
  const accepted = frame.request_id && S.accepting.get(frame.request_id);
  if (accepted) {
    S.accepting.delete(frame.request_id);
    const row = S.queue.get(accepted);
    if (['already_assigned', 'chat_closed', 'unknown_chat'].includes(p.code)) removeQueue(accepted);
    else if (row) {
      row.pending = null;
      row.li.classList.remove('pending');
      row.li.querySelector('[data-testid="accept"]').disabled = false;
    }
  }
  if (frame.request_id) for (const chat of S.chats.values()) if (chat.conv.failed(frame.request_id, p.message)) break;
  const who = p.code === 'already_assigned' && p.operator_id ? ` (taken by ${p.operator_id})` : '';
  notice('error', p.code || 'error', `${p.message || 'refused'}${who}`);
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------
function selectedOpenChat() {
  const chat = S.selected && S.chats.get(S.selected);
  return chat && chat.state === 'assigned' ? chat : null;
}

function sendMessage() {
  const chat = selectedOpenChat();
  const text = $('compose').value.trim();
  if (!chat || !text) return;
  const cid = chat.conv.addPending(text, 'You');
  const rid = S.socket.send('message', { chat_id: chat.id, text, client_message_id: cid });
  if (rid) chat.conv.pending.get(cid).requestId = rid;
  $('compose').value = '';
  chat.conv.scrollToEnd();
}

function command(type, payload) {
  if (!S.socket.send(type, payload)) notice('warn', 'not_connected', 'Not connected: try again in a moment.');
}

function setupUi() {
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
  $('transfer').addEventListener('click', () => {
    const chat = selectedOpenChat();
    if (!chat) return;
    const target = $('transfer-target').value.trim();
    command('transfer_chat', { chat_id: chat.id, target_operator_id: target || null, reason: $('transfer-reason').value.trim() });
  });
  $('assign-lawyer').addEventListener('click', () => {
    const chat = selectedOpenChat();
    const lawyer = $('lawyer-id').value.trim();
    if (!chat) return;
    if (!lawyer) {
      notice('warn', 'bad_request', 'Enter the lawyer\'s id first.');
      return;
    }
    command('assign_lawyer', { chat_id: chat.id, lawyer_id: lawyer });
  });
  $('close-chat').addEventListener('click', () => {
    const chat = selectedOpenChat();
    if (chat) command('close_chat', { chat_id: chat.id, reason: 'closed by the operator' });
  });
  $('status').addEventListener('change', sendStatus);
  $('capacity').addEventListener('change', sendStatus);
  $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
  setInterval(() => { for (const row of S.queue.values()) tickQueue(row); }, 1000);
}

// ---------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------
export function boot() {
  setupUi();
  renderQueue();
  renderConversation();
  S.token = pageToken();
  if (!S.token) {
    notice('error', 'unauthorized', 'No token: open this page as /chat/operator?token=<your token>.');
    showConnection($('conn-dot'), $('conn-text'), 'stopped', 'no token');
    return;
  }
  S.socket = new ChatSocket({
    token: S.token,
    onFrame,
    onState: (state, detail) => showConnection($('conn-dot'), $('conn-text'), state, detail),
    onOpen: (first) => {
      sendStatus();  // online on load; after a reconnect whatever was chosen
      for (const chat of S.chats.values()) {
        for (const [cid, p] of chat.conv.pending) {
          const rid = S.socket.send('message', { chat_id: chat.id, text: p.text, client_message_id: cid });
          if (rid) p.requestId = rid;
        }
      }
      if (first) loadOperators();
      else reconcile();
    },
    check: async () => {  // a connect that never opened: a bad token stops the retries
      try {
        await api(S.token, 'GET', '/chats');
        return true;
      } catch (err) {
        if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) {
          notice('error', err.code, `${err.message}: this token cannot open the console.`);
          return false;
        }
        return true;
      }
    },
  }).start();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
