"""The support chat's pages in headless Chromium, on two real workers.

A client opens a chat on /chat/client (worker 1); two operators, each in a browser
context of their own, watch the queue on /chat/operator (one on each worker). Both click
Accept at the same instant: exactly one gets the chat, the other is told it is taken, and
the chat leaves both queues. The winner and the client then talk across the two pages;
the client page reloaded finds its conversation and what was said meanwhile; the operator
brings in a lawyer (a tab on the client page), hands the chat back to the queue, the other
operator takes it, and the client ends it.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.harness import MANAGER, Worker, http_get, wait_until

pytestmark = pytest.mark.e2e
WORKER_ENV = {"CHAT_AUTO_ASSIGN_QUEUES": ""}  # every chat waits for an operator's accept

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
API = "/api/v1/chat"
VIEWPORT = {"width": 1280, "height": 860}
WAIT_MS = 20_000

CLIENT, OPERATORS = "test-client-1", ("test-op-1", "test-op-2")  # users c1, op1, op2

# Both consoles click Accept at one agreed instant (their clocks are this machine's): the
# two accept_chat frames leave within a millisecond of each other, neither page having
# heard of the other's.
CLICK_AT = """({chat, at}) => {
  window.__raceClick = null;
  setTimeout(() => {
    const button = document.querySelector(`[data-testid="queue-item"][data-chat="${CSS.escape(chat)}"] [data-testid="accept"]`);
    const usable = Boolean(button && !button.disabled);
    if (usable) button.click();
    window.__raceClick = { clicked: usable, at: Date.now() };
  }, Math.max(0, at - Date.now()));
}"""

# What a page shows, for a failure's message.
SUMMARY = """() => {
  const attr = (sel, name) => { const n = document.querySelector(sel); return n && n.getAttribute(name); };
  const text = (sel) => { const n = document.querySelector(sel); return n && n.textContent.trim(); };
  return {
    connection: text('[data-testid="connection-state"]'), status: attr('[data-testid="status-shown"]', 'data-value'),
    notice: text('[data-testid="notice"]'), chat_state: text('[data-testid="chat-state"]'),
    queue: [...document.querySelectorAll('[data-testid="queue-item"]')].map((n) => n.dataset.chat),
    mine: [...document.querySelectorAll('[data-testid="my-chat"]')].map((n) => `${n.dataset.chat}:${n.dataset.state}`),
    messages: document.querySelectorAll('[data-testid="message"]').length,
  };
}"""

MESSAGES = """(chat) => [...document.querySelectorAll(
  `[data-testid="messages"][data-chat="${CSS.escape(chat)}"] [data-testid="message"]`)].map((li) => ({
    id: Number(li.dataset.messageId), role: li.dataset.senderRole, sender: li.dataset.sender,
    text: li.querySelector('[data-testid="message-text"]').textContent,
  }))"""


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def script_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def open_page(browser, script_errors):
    """A page in a browser context of its own (a user of their own: own storage, own sockets)."""
    contexts = []

    def opener(url: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda err: script_errors.append(f"{url}: {err}"))
        page.goto(url)
        return page

    yield opener
    for context in contexts:
        context.close()


def online(console: Page) -> None:
    """The console said set_status online on load and the desk confirmed it."""
    console.wait_for_selector('[data-testid="status-shown"][data-value="online"]', state="attached", timeout=WAIT_MS)


def messages(page: Page, chat_id: str) -> list[dict[str, Any]]:
    return page.evaluate(MESSAGES, chat_id)


def wait_for_message(page: Page, chat_id: str, text: str) -> dict[str, Any]:
    def shown() -> Any:
        return next((m for m in messages(page, chat_id) if m["text"] == text), None)

    return wait_until(shown, WAIT_MS / 1000, 0.1, f"{text!r} on {page.url}")


def say(page: Page, text: str) -> None:
    page.fill('[data-testid="compose"]', text)
    page.click('[data-testid="send"]')


def chat_state(client: Page) -> tuple[str | None, str | None]:
    state = client.locator('[data-testid="chat-state"]')
    return state.get_attribute("data-state"), state.get_attribute("data-operator")


def wait_for(check: Callable[[], Any], what: str) -> Any:
    return wait_until(check, WAIT_MS / 1000, 0.1, what)


def summary(pages: dict[str, Page]) -> str:
    lines = []
    for name, page in pages.items():
        try:
            lines.append(f"{name} ({page.url}): {page.evaluate(SUMMARY)}")
        except Exception as exc:  # a message for a failure already under way
            lines.append(f"{name}: unreadable ({exc})")
    return "\n".join(lines)


def chat_ready(worker: Worker) -> None:
    """The desk answers on this worker (its table is served, wherever its partition is)."""
    wait_until(lambda: http_get(f"{worker.url}{API}/chats/queue", MANAGER)[0] == 200, 60, 0.25,
               f"the chat desk to answer on {worker.url}")


@pytest.fixture(scope="module")
def race(workers, open_page) -> dict[str, Any]:
    """The client's chat opened, both consoles racing to accept it: what each one saw."""
    first, second = workers
    for worker in workers:
        chat_ready(worker)
    client = open_page(f"{first.url}/chat/client?token={CLIENT}")
    consoles = {"op1": open_page(f"{first.url}/chat/operator?token={OPERATORS[0]}"),
                "op2": open_page(f"{second.url}/chat/operator?token={OPERATORS[1]}")}
    try:
        return opened_and_raced(client, consoles)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{summary({'client': client, **consoles})}") from exc


def opened_and_raced(client: Page, consoles: dict[str, Page]) -> dict[str, Any]:
    for console in consoles.values():
        online(console)
    client.fill('[data-testid="open-text"]', "my driver is lost")
    client.click('[data-testid="open-chat"]')
    client.wait_for_selector('[data-testid="chat-state"][data-state="waiting"]', timeout=WAIT_MS)
    chat_id = client.locator('[data-testid="conversation"]').get_attribute("data-chat")
    assert chat_id, "the client page shows no chat after opening one"
    row = f'[data-testid="queue-item"][data-chat="{chat_id}"]'
    for console in consoles.values():  # both see it waiting, on both workers
        console.wait_for_selector(f"{row} [data-testid=accept]", timeout=WAIT_MS)
        assert "c1" in console.locator(row).inner_text()
    at = consoles["op1"].evaluate("() => Date.now()") + 500
    for console in consoles.values():  # scheduled on both pages before either fires
        console.evaluate(CLICK_AT, {"chat": chat_id, "at": at})
    clicks = {name: console.wait_for_function("() => window.__raceClick", timeout=WAIT_MS).json_value()
              for name, console in consoles.items()}
    return {"client": client, "consoles": consoles, "chat_id": chat_id, "row": row, "clicks": clicks}


def test_two_operators_race_for_one_chat_in_two_browsers_and_one_wins(race):
    consoles, chat_id, row = race["consoles"], race["chat_id"], race["row"]
    assert all(c["clicked"] for c in race["clicks"].values()), race["clicks"]
    assert abs(race["clicks"]["op1"]["at"] - race["clicks"]["op2"]["at"]) < 20, race["clicks"]
    mine = f'[data-testid="my-chat"][data-chat="{chat_id}"]'

    def decided() -> Any:
        holders = [name for name, page in consoles.items() if page.locator(mine).count()]
        told = [name for name, page in consoles.items()
                if page.locator('[data-testid="notice"][data-code="already_assigned"]').is_visible()]
        return (holders, told) if holders and told else None

    holders, told = wait_for(decided, "one console to hold the chat and the other to hear it is taken")
    assert len(holders) == 1, f"both consoles got chat {chat_id}"
    winner = holders[0]
    loser = next(name for name in consoles if name != winner)
    assert told == [loser]
    assert winner in consoles[loser].locator('[data-testid="notice"]').inner_text()  # "(taken by opN)"
    for console in consoles.values():  # gone from both queues
        console.wait_for_selector(row, state="detached", timeout=WAIT_MS)
    assert consoles[loser].locator(mine).count() == 0
    assert consoles[winner].locator(mine).get_attribute("data-state") == "assigned"
    race.update(winner=winner, loser=loser)

    client = race["client"]
    wait_for(lambda: chat_state(client) == ("assigned", winner), f"the client page to show {winner}")
    assert f"operator {winner}" in client.locator('[data-testid="chat-state"]').inner_text()

    # they talk: the winner's console was switched to the chat it accepted
    op = consoles[winner]
    assert op.locator('[data-testid="conversation"]').get_attribute("data-chat") == chat_id
    assert [m["text"] for m in messages(op, chat_id)] == ["my driver is lost"]
    say(op, "Hello, I am Anna. Where are you?")
    heard = wait_for_message(client, chat_id, "Hello, I am Anna. Where are you?")
    assert (heard["id"], heard["role"], heard["sender"]) == (2, "operator", winner)
    tricky = '<img src=x onerror="window.__pwned = 1"> at <b>Tverskaya</b> & 7th'
    say(client, tricky)
    back = wait_for_message(op, chat_id, tricky)  # shown as text, never parsed
    assert (back["id"], back["role"], back["sender"]) == (3, "client", "c1")
    for page in (op, client):
        assert page.locator('[data-testid="messages"] img, [data-testid="messages"] b').count() == 0
        assert page.evaluate("() => window.__pwned") is None
        assert [m["id"] for m in messages(page, chat_id)] == [1, 2, 3]
        assert page.locator('[data-testid="message-pending"], [data-testid="message-failed"]').count() == 0
    assert consoles[loser].locator(f'[data-testid="messages"][data-chat="{chat_id}"]').count() == 0


def test_the_client_page_reloaded_shows_the_conversation_and_what_was_said_meanwhile(race, workers):
    first, _ = workers
    client, chat_id = race["client"], race["chat_id"]
    op = race["consoles"][race["winner"]]
    client.goto("about:blank")  # the client is away...
    for text in ("Are you still there?", "I can see your car"):
        say(op, text)
    wait_for(lambda: len(messages(op, chat_id)) == 5, "the operator's two messages to be confirmed")
    client.goto(f"{first.url}/chat/client?token={CLIENT}")  # ...and back: the chat is remembered
    wait_for_message(client, chat_id, "I can see your car")
    assert client.locator('[data-testid="conversation"]').get_attribute("data-chat") == chat_id
    wait_for(lambda: chat_state(client) == ("assigned", race["winner"]), "the reloaded page to show the operator")
    client.wait_for_selector('[data-testid="connection-state"][data-state="open"]', timeout=WAIT_MS)
    say(op, "Stay where you are")  # live again, on the socket opened with since=<last id>
    wait_for_message(client, chat_id, "Stay where you are")
    shown = messages(client, chat_id)
    assert [m["id"] for m in shown] == [1, 2, 3, 4, 5, 6]  # each once, in order
    assert shown[0]["text"] == "my driver is lost" and shown[3]["text"] == "Are you still there?"


def test_an_operator_console_reloaded_has_its_chat_and_its_history_again(race, workers):
    op = race["consoles"][race["winner"]]
    chat_id = race["chat_id"]
    op.reload()
    online(op)
    mine = f'[data-testid="my-chat"][data-chat="{chat_id}"]'
    op.wait_for_selector(mine, timeout=WAIT_MS)  # the greeting: chat_assigned for the chats it holds
    op.click(f"{mine} button")
    wait_for(lambda: [m["id"] for m in messages(op, chat_id)] == [1, 2, 3, 4, 5, 6], "the history on the console")


def test_a_lawyer_is_brought_in_the_chat_goes_back_to_the_queue_the_other_operator_takes_it(race):
    client, chat_id, consoles = race["client"], race["chat_id"], race["consoles"]
    winner, loser = consoles[race["winner"]], consoles[race["loser"]]
    winner.click(f'[data-testid="my-chat"][data-chat="{chat_id}"] button')

    winner.fill('[data-testid="lawyer-id"]', "law1")
    winner.click('[data-testid="assign-lawyer"]')
    tab = client.locator('[data-testid="chat-tab"][data-kind="lawyer"]')
    tab.wait_for(timeout=WAIT_MS)
    assert "law1" in tab.inner_text()
    winner.wait_for_selector('[data-testid="lawyer-chats"]', state="visible", timeout=WAIT_MS)

    winner.fill('[data-testid="transfer-target"]', "")  # empty: back to the queue
    winner.fill('[data-testid="transfer-reason"]', "needs a specialist")
    winner.click('[data-testid="transfer"]')
    winner.wait_for_selector(f'[data-testid="my-chat"][data-chat="{chat_id}"][data-state="transferred"]',
                             timeout=WAIT_MS)
    wait_for(lambda: chat_state(client) == ("waiting", ""), "the client page to say it waits again")
    loser.wait_for_selector(f'{race["row"]} [data-testid="accept"]', timeout=WAIT_MS)
    loser.click(f'{race["row"]} [data-testid="accept"]')
    loser.wait_for_selector(f'[data-testid="my-chat"][data-chat="{chat_id}"][data-state="assigned"]',
                            timeout=WAIT_MS)
    wait_for(lambda: chat_state(client) == ("assigned", race["loser"]), "the client page to show the new operator")
    for console in consoles.values():
        console.wait_for_selector(race["row"], state="detached", timeout=WAIT_MS)
    wait_for(lambda: len(messages(loser, chat_id)) == 6, "the whole history on the new operator's console")

    client.click('[data-testid="close-chat"]')
    client.wait_for_selector('[data-testid="chat-state"][data-state="closed"]', timeout=WAIT_MS)
    client.wait_for_selector('[data-testid="new-chat"]', state="visible", timeout=WAIT_MS)
    loser.wait_for_selector(f'[data-testid="my-chat"][data-chat="{chat_id}"][data-state="closed"]', timeout=WAIT_MS)
    assert loser.locator('[data-testid="compose"]').is_disabled()


def test_screenshots_of_the_chat_pages(race, artifacts):
    pages = {"chat-client.png": race["client"], "chat-operator.png": race["consoles"][race["loser"]]}
    for name, page in pages.items():
        path = artifacts / name
        path.unlink(missing_ok=True)
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, (name, path.stat().st_size)


def test_the_chat_pages_run_without_script_errors(race, script_errors):
    assert script_errors == []
