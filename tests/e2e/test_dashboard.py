"""The manager dashboard in headless Chromium shows what the JSON API answers.

One real worker is fed ten minutes of simulated Asterisk traffic ending now; the page at
GET / is then read the way a manager sees it and compared with `/queues/status` and
`/operators`. A second small deployment, fed traffic that ended two minutes ago and told
to call anything over a second behind stale, shows the stale banner.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import sync_playwright

from tests.harness import MANAGER, ROOT, Deployment, Worker, http_get, http_request, wait_until
from tests.integration.expectations import expect
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.e2e
WORKER_ENV = {"WINDOW_GRACE_S": 5, "TICK_INTERVAL_S": 0.5}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}

# data-testid of a queue row's cell -> the same number in one queue of /queues/status
QUEUE_CELLS = {
    "calls-waiting": lambda q: q["calls_waiting"],
    "logged-in": lambda q: q["operators"]["logged_in"],
    "available": lambda q: q["operators"]["available"],
    "on-call": lambda q: q["operators"]["on_call"],
    "paused": lambda q: q["operators"]["paused"],
}

# Everything the page shows, read in one go so the numbers belong to the same render.
READ_PAGE = """() => {
  const rows = {};
  for (const tr of document.querySelectorAll('[data-testid="queue-row"]')) {
    const cells = {};
    for (const td of tr.querySelectorAll('td[data-testid]')) cells[td.dataset.testid] = td.dataset.value;
    rows[tr.dataset.queue] = cells;
  }
  const operators = [...document.querySelectorAll('[data-testid="operator-row"]')].map((tr) => tr.dataset.operator);
  const total = document.querySelector('[data-testid="total-waiting"]').dataset.value;
  return { rows, operators, total };
}"""


def ingest(deployment: Deployment, lines: list[str], directory: Path) -> None:
    path = directory / "queue_log"
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "app", "ingest", "queue-log", str(path)],
        cwd=ROOT, env=deployment.env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def api(worker: Worker, path: str) -> dict:
    status, body = http_get(worker.url + path, MANAGER)
    assert status == 200, (path, status, body)
    return body


def wait_for_every_queue(worker: Worker, queues: set[str], stale: bool, timeout: float = 90) -> dict:
    def shown():
        body = api(worker, "/queues/status")
        return {q["queue"] for q in body["queues"]} == queues and body["stale"] is stale and body

    return wait_until(shown, timeout, 0.5, f"/queues/status to show {sorted(queues)} with stale={stale}")


def wait_until_settled(worker: Worker, lines: list[str], timeout: float = 90) -> None:
    """Every stage has caught up: the live counts equal the reference replay of `lines`.

    The input stage catches up (and stops saying stale) well before the later stages
    have worked through their backlog, so "every queue is listed" is not yet "settled".
    """
    expected = expect(lines)
    want = {q: (len(expected.waiting[q]), expected.operators(q)) for q in expected.queues}

    def settled():
        body = api(worker, "/queues/status")
        return {q["queue"]: (q["calls_waiting"], q["operators"]) for q in body["queues"]} == want

    wait_until(settled, timeout, 0.5, "the live counts to equal the reference replay")


def number(value: str):
    return None if value in ("", None) else float(value)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def traffic(deployment, worker, tmp_path_factory):
    lines = queue_log_lines(minutes=10, rate=3, seed=20261123)
    ingest(deployment, lines, tmp_path_factory.mktemp("qlog"))
    queues = expect(lines).queues
    wait_for_every_queue(worker, queues, stale=False)
    wait_until_settled(worker, lines)  # from here on only longest waits and time in state move
    return queues


@pytest.fixture(scope="module")
def script_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def dashboard(browser, worker, traffic, script_errors):
    """The dashboard signed in with the manager token (a fresh profile), its queue rows on screen."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("pageerror", lambda err: script_errors.append(str(err)))
    page.goto(f"{worker.url}/#token={MANAGER}")
    page.wait_for_selector('[data-testid="queue-row"]', timeout=15_000)
    yield page
    context.close()


def test_every_queue_shows_the_numbers_of_the_api(dashboard, worker):
    last = {}

    def agree():
        shown = dashboard.evaluate(READ_PAGE)
        body = api(worker, "/queues/status")  # right after reading the page
        page_numbers = {queue: {cell: number(cells.get(cell)) for cell in QUEUE_CELLS} for queue, cells in shown["rows"].items()}
        api_numbers = {q["queue"]: {cell: get(q) for cell, get in QUEUE_CELLS.items()} for q in body["queues"]}
        last.update(page=page_numbers, api=api_numbers)
        return page_numbers == api_numbers

    try:
        wait_until(agree, 20, 0.5, "the page's queue numbers to equal /queues/status")
    except AssertionError:
        assert last["page"] == last["api"]
        raise


def test_total_waiting_is_the_sum_over_queues(dashboard, worker):
    last = {}

    def agree():
        shown = dashboard.evaluate(READ_PAGE)
        body = api(worker, "/queues/status")
        last.update(total=number(shown["total"]), want=sum(q["calls_waiting"] for q in body["queues"]))
        return last["total"] == last["want"]

    try:
        wait_until(agree, 20, 0.5, "total waiting to equal the sum of calls_waiting")
    except AssertionError:
        assert last["total"] == last["want"]
        raise


def test_every_operator_has_a_row(dashboard, worker):
    last = {}

    def agree():
        shown = dashboard.evaluate(READ_PAGE)
        body = api(worker, "/operators")
        last.update(page=sorted(shown["operators"]), api=sorted(o["id"] for o in body["operators"]))
        return last["api"] and last["page"] == last["api"]

    try:
        wait_until(agree, 20, 0.5, "an operator row for every operator of /operators")
    except AssertionError:
        assert last["api"], "/operators lists no operator after ten minutes of traffic"
        assert last["page"] == last["api"]
        raise


def test_an_operators_crm_status_shows_on_its_row(dashboard, worker):
    operator = sorted(o["id"] for o in api(worker, "/operators")["operators"])[0]
    status, answer = http_request("POST", f"{worker.url}/operators/{quote(operator, safe='')}/status",
                                  {"status": "TRAINING", "reason": "new tariffs"}, token=MANAGER)
    assert status == 202, answer
    dashboard.wait_for_function(
        """(id) => {
          const tr = document.querySelector(`[data-testid="operator-row"][data-operator="${CSS.escape(id)}"]`);
          return tr && tr.querySelector('[data-testid="op-crm"]').dataset.value === 'TRAINING';
        }""", arg=operator, timeout=20_000)
    row = dashboard.locator(f'[data-testid="operator-row"][data-operator="{operator}"]')
    assert "CRM: training" in row.inner_text()


def test_every_queue_chart_draws_its_windows(dashboard, traffic):
    dashboard.wait_for_function(
        """(want) => {
          const cards = [...document.querySelectorAll('[data-testid="queue-chart"]')];
          return cards.length === want && cards.every((c) => Number(c.dataset.windows) > 0);
        }""",
        arg=len(traffic), timeout=30_000,
    )
    charts = dashboard.evaluate(
        "() => [...document.querySelectorAll('[data-testid=\"queue-chart\"]')]"
        ".map((c) => [c.dataset.queue, c.querySelector('svg.chart') !== null])"
    )
    assert sorted(q for q, _ in charts) == sorted(traffic)
    assert all(drawn for _, drawn in charts), charts


def test_stale_banner_is_hidden_while_data_is_fresh(dashboard, worker):
    body = api(worker, "/queues/status")
    assert body["stale"] is False, body["lag_s"]
    banner = dashboard.locator('[data-testid="stale-banner"]')
    for _ in range(3):  # across several polls, not one lucky moment
        assert banner.get_attribute("hidden") is not None, banner.inner_text()
        assert banner.is_hidden()
        dashboard.wait_for_timeout(1000)


def test_rows_are_updated_in_place_not_redrawn(dashboard):
    requests = []
    def listener(request) -> None:
        if "/queues/status" in request.url:
            requests.append(request.url)
    dashboard.on("request", listener)
    marked = dashboard.evaluate(
        """() => {
          const rows = [...document.querySelectorAll('[data-testid="queue-row"]')];
          for (const tr of rows) {
            tr.__e2eMark = tr.dataset.queue;
            tr.querySelector('[data-testid="calls-waiting"]').__e2eMark = tr.dataset.queue;
          }
          return rows.length;
        }"""
    )
    dashboard.wait_for_timeout(3000)
    dashboard.remove_listener("request", listener)
    survivors = dashboard.evaluate(
        """() => [...document.querySelectorAll('[data-testid="queue-row"]')].map((tr) => ({
          queue: tr.dataset.queue,
          row: tr.__e2eMark === tr.dataset.queue && tr.isConnected,
          cell: tr.querySelector('[data-testid="calls-waiting"]').__e2eMark === tr.dataset.queue,
        }))"""
    )
    assert len(requests) >= 2, f"the page polled /queues/status only {len(requests)} times in 3 s"
    assert marked and len(survivors) == marked
    assert all(s["row"] and s["cell"] for s in survivors), survivors


def test_page_runs_without_script_errors(dashboard, script_errors):
    assert script_errors == []


def test_screenshot_of_the_dashboard(dashboard, traffic, artifacts):
    dashboard.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"queue-chart\"]')].every((c) => Number(c.dataset.windows) > 0)",
        timeout=30_000,
    )
    path = artifacts / "dashboard.png"
    path.unlink(missing_ok=True)
    dashboard.screenshot(path=str(path), full_page=True)
    assert path.exists()
    assert path.stat().st_size > 30_000, path.stat().st_size


def test_without_a_token_the_sign_in_form_is_shown_and_no_data(browser, worker, traffic):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        api_calls = []
        page.on("request", lambda r: api_calls.append(r.url)
                if ("/queues/" in r.url or "/operators" in r.url) and "/static/" not in r.url else None)
        page.goto(worker.url + "/")
        form = page.locator('[data-testid="token-form"]')
        form.wait_for(state="visible", timeout=10_000)
        page.wait_for_timeout(2500)  # a couple of poll intervals: nothing may turn up
        assert form.is_visible()
        assert page.locator('[data-testid="queue-row"]').count() == 0
        assert page.locator('[data-testid="operator-row"]').count() == 0
        assert page.locator('[data-testid="total-waiting"]').get_attribute("data-value") == ""
        assert api_calls == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def stale_worker(broker, tmp_path_factory):
    """A second deployment whose only traffic ended two minutes ago, stale past one second,
    with a service-level threshold of its own (the dashboard must show the server's)."""
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-test_dashboard-stale-"))
    deployment = Deployment(broker=broker, workdir=workdir,
                            extra_env={**WORKER_ENV, "STALE_AFTER_S": 1, "SL_THRESHOLD_S": 25})
    w = Worker(deployment, 1).start().wait_ready()
    try:
        lines = queue_log_lines(minutes=3, rate=3, seed=20261124, end=time.time() - 120)
        ingest(deployment, lines, tmp_path_factory.mktemp("stale-qlog"))
        wait_for_every_queue(w, expect(lines).queues, stale=True)
        yield w
    finally:
        w.stop()


def test_stale_banner_shows_when_the_data_lags(browser, stale_worker):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{stale_worker.url}/#token={MANAGER}")
        page.wait_for_selector('[data-testid="queue-row"]', timeout=15_000)
        banner = page.locator('[data-testid="stale-banner"]')
        banner.wait_for(state="visible", timeout=10_000)
        text = banner.inner_text()
        assert "lag" in text.lower(), text
        assert float(banner.get_attribute("data-lag")) >= 120, text
        assert banner.get_attribute("data-level") == "crit", text  # two minutes behind is past the red line
        assert banner.get_attribute("data-backlog") not in (None, ""), text  # the records still to process, 0 when caught up
        assert page.locator("#tile-sl-sub").inner_text().endswith("in 25 s")  # the server's limit, not one of its own
    finally:
        context.close()
