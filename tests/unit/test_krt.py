"""The KRT client against the KRT sandbox, over real localhost sockets (no Kafka, no KRT).

What the driver-status sender and the KRT-ID view rely on: a token obtained once, renewed
before it expires and again when KRT refuses it; every failure a KrtError raised quickly
(never a hang) that says whether the request may be sent again; each outcome counted in
/metrics; and no licence number or KRT ID in a log line, an error or a metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import subprocess
import sys
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import aiohttp
import orjson
import pytest
from prometheus_client import generate_latest

from app.krt import (
    KrtAuthFailed,
    KrtBadAnswer,
    KrtClient,
    KrtError,
    KrtRefused,
    KrtRequest,
    KrtResponse,
    KrtServerError,
    KrtSettings,
    KrtTimeout,
    KrtUnavailable,
    SessionState,
    SessionStatus,
    parse_url,
)
from app.metrics import REGISTRY
from dev.krt_sandbox import KrtSandbox, sandbox_id_for
from tests.harness import ROOT

LICENCE = "77 99 314159"  # the driver's licence number, as a park typed it
DRIVER_ID = sandbox_id_for(LICENCE)  # the KRT ID the sandbox gave them
T0 = 1_700_000_000.0
HOUR = 3600.0


def scenario(test: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async test in its own loop, with a deadline well inside the file's budget."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 10))
    return run


class Clock:
    """Time that moves when the test says so (seconds; client and sandbox may share one)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def calls(outcome: str) -> float:
    return REGISTRY.get_sample_value("switchboard_external_calls_total", {"system": "krt", "outcome": outcome}) or 0.0


def timed(endpoint: str) -> float:
    return REGISTRY.get_sample_value("switchboard_krt_call_seconds_count", {"endpoint": endpoint}) or 0.0


def exchanges(sandbox: KrtSandbox) -> list[tuple[Optional[str], Optional[int]]]:
    return [(r.endpoint, r.status) for r in sandbox.requests]


@contextlib.asynccontextmanager
async def krt(sandbox: Optional[KrtSandbox] = None, secret: str = "switchboard",
              **options: Any) -> AsyncIterator[tuple[KrtSandbox, KrtClient]]:
    """A sandbox on a free port and a started client of it."""
    sandbox = await (sandbox or KrtSandbox()).start()
    client = KrtClient(KrtSettings(sandbox.url, "switchboard", secret), **{"timeout_s": 1.0, **options})
    await client.start()
    try:
        yield sandbox, client
    finally:
        await client.stop()
        await sandbox.stop()


@contextlib.asynccontextmanager
async def scripted(answer: Callable[[KrtRequest], KrtResponse]) -> AsyncIterator[tuple[list[KrtRequest], KrtClient]]:
    """A client whose transport is a function: KRT answers whatever `answer` says."""
    sent: list[KrtRequest] = []

    async def transport(request: KrtRequest) -> KrtResponse:
        sent.append(request)
        return answer(request)

    client = KrtClient(KrtSettings("https://krt.example", "switchboard", "s3cret"), transport=transport)
    await client.start()
    try:
        yield sent, client
    finally:
        await client.stop()


def token_then(call: Callable[[KrtRequest], KrtResponse]) -> Callable[[KrtRequest], KrtResponse]:
    """Token requests get a token; the others `call`."""
    def answer(request: KrtRequest) -> KrtResponse:
        if request.url.endswith("/auth/token"):
            return KrtResponse(200, b'{"access_token": "t", "token_type": "Bearer", "expires_in": 600}')
        return call(request)
    return answer


# --- the token -----------------------------------------------------------------------------------

@scenario
async def test_a_token_is_obtained_on_the_first_call_and_shared_by_the_calls_after_it():
    issued, ok, verify_timed = calls("token_issued"), calls("ok"), timed("verify")
    async with krt() as (sandbox, client):
        assert not client.has_token
        answers = await asyncio.gather(*(client.verify_id(DRIVER_ID, LICENCE) for _ in range(5)))
        await client.report_status(LICENCE, DRIVER_ID, "online", T0)
        assert answers == [True] * 5 and client.has_token
        [token_request] = sandbox.received("token")
        assert token_request.body == {"client_id": "switchboard", "client_secret": "switchboard"}
        assert sandbox.tokens_issued == 1 and [s for _, s in exchanges(sandbox)] == [200] * 7
    assert calls("token_issued") == issued + 1 and calls("ok") == ok + 6 and timed("verify") == verify_timed + 5


@scenario
async def test_the_token_is_renewed_before_it_expires():
    clock = Clock()
    async with krt(KrtSandbox(token_ttl_s=100, clock=clock), clock=clock) as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        clock.now += 79  # under 80 % of its life: kept
        await client.verify_id(DRIVER_ID, LICENCE)
        assert sandbox.tokens_issued == 1
        clock.now += 2  # past 80 %: renewed, though KRT would still take it
        await client.verify_id(DRIVER_ID, LICENCE)
        assert sandbox.tokens_issued == 2
    assert exchanges(sandbox) == [("token", 200), ("verify", 200), ("verify", 200), ("token", 200), ("verify", 200)]


@scenario
async def test_a_token_krt_no_longer_takes_is_renewed_once_and_the_call_repeated():
    rejected = calls("token_rejected")
    async with krt() as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        sandbox.expire_tokens()
        assert await client.report_status(LICENCE, None, "online", T0) == SessionStatus(SessionState.OPEN, T0 + 12 * HOUR)
    assert exchanges(sandbox) == [("token", 200), ("verify", 200), ("status", 401), ("token", 200), ("status", 200)]
    assert calls("token_rejected") == rejected + 1


@scenario
async def test_a_token_that_expired_at_krt_before_the_clients_clock_said_so_is_renewed():
    krt_clock = Clock()
    async with krt(KrtSandbox(token_ttl_s=100, clock=krt_clock), clock=Clock()) as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        krt_clock.now += 101  # KRT's clock runs ahead of ours
        assert await client.verify_id(DRIVER_ID, LICENCE)
    assert [r.status for r in sandbox.received("verify")] == [200, 401, 200]


@scenario
async def test_a_failed_renewal_keeps_the_current_token_while_it_is_valid():
    clock = Clock()
    async with krt(KrtSandbox(token_ttl_s=100, clock=clock), clock=clock) as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        sandbox.fail(503, endpoint="token")
        clock.now += 90
        assert await client.verify_id(DRIVER_ID, LICENCE)  # renewal failed; the old token still serves
        clock.now += 11
        with pytest.raises(KrtServerError):  # now it has expired: nothing to fall back on
            await client.verify_id(DRIVER_ID, LICENCE)
    assert exchanges(sandbox) == [("token", 200), ("verify", 200), ("token", 503), ("verify", 200), ("token", 503)]


@scenario
async def test_wrong_credentials_are_an_auth_failure_and_nothing_else_is_sent(caplog):
    caplog.set_level(logging.DEBUG, logger="app.krt")
    failed = calls("auth_failed")
    async with krt(secret="not-the-secret") as (sandbox, client):
        with pytest.raises(KrtAuthFailed, match="refused the credentials of client 'switchboard' with 401 invalid_credentials"):
            await client.verify_id(DRIVER_ID, LICENCE)
        assert exchanges(sandbox) == [("token", 401)]
    assert calls("auth_failed") == failed + 1
    assert issubclass(KrtAuthFailed, KrtUnavailable)  # not the record's fault: it waits for the fix
    assert "not-the-secret" not in caplog.text


@scenario
async def test_a_token_refused_right_after_it_was_issued_is_an_auth_failure_after_one_retry():
    async with scripted(token_then(lambda _: KrtResponse(401, b'{"error": "invalid_token"}'))) as (sent, client):
        with pytest.raises(KrtAuthFailed, match="refused a token it had just issued invalid_token"):
            await client.verify_id(DRIVER_ID, LICENCE)
    assert [r.url.rsplit("/", 1)[1] for r in sent] == ["token", "verify", "token", "verify"]
    assert sent[1].headers["Authorization"] == "Bearer t" and sent[1].url == "https://krt.example/api/v1/drivers/verify"


# --- failures ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, error, outcome", [
    (500, KrtServerError, "server_error"),
    (503, KrtServerError, "server_error"),
    (429, KrtServerError, "throttled"),
    (400, KrtRefused, "refused"),
    (404, KrtRefused, "refused"),
], ids=["500", "503", "429-too-many", "400-bad-request", "404"])
@scenario
async def test_an_error_answer_says_whether_to_send_again(status, error, outcome):
    counted = calls(outcome)
    async with krt() as (sandbox, client):
        sandbox.fail(status, count=1, endpoint="verify")
        with pytest.raises(error) as raised:
            await client.verify_id(DRIVER_ID, LICENCE)
        assert raised.value.status == status and raised.value.code == "injected_failure"
        assert isinstance(raised.value, KrtUnavailable) == (status >= 429)
        assert await client.verify_id(DRIVER_ID, LICENCE)  # only the next one failed
    assert calls(outcome) == counted + 1


@scenario
async def test_a_slow_krt_is_a_timeout_and_the_caller_is_not_kept_waiting():
    timeouts, verify_timed = calls("timeout"), timed("verify")
    async with krt(timeout_s=0.2) as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        sandbox.slow_down(1.0, endpoint="verify")
        started = time.monotonic()
        with pytest.raises(KrtTimeout, match="no answer from KRT within 0.2 s"):
            await client.verify_id(DRIVER_ID, LICENCE)
        assert time.monotonic() - started < 0.6
        sandbox.slow_down(0, endpoint="verify")
        sandbox.slow_down(0.1)  # slower, within the timeout
        assert await client.verify_id(DRIVER_ID, LICENCE)
    assert issubclass(KrtTimeout, KrtUnavailable)
    assert calls("timeout") == timeouts + 1 and timed("verify") == verify_timed + 3


@scenario
async def test_a_krt_that_is_down_is_unavailable_at_once_and_used_again_when_it_is_back():
    unavailable = calls("unavailable")
    async with krt() as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        await sandbox.set_down(True)
        for _ in range(2):  # the kept-alive connection cut, then a new one refused
            started = time.monotonic()
            with pytest.raises(KrtUnavailable, match="no answer from KRT") as raised:
                await client.verify_id(DRIVER_ID, LICENCE)
            assert type(raised.value) is KrtUnavailable and time.monotonic() - started < 0.5
        await sandbox.set_down(False)
        assert await client.verify_id(DRIVER_ID, LICENCE)
    assert calls("unavailable") == unavailable + 2


@scenario
async def test_a_call_waiting_when_krt_goes_down_fails_then_and_there():
    async with krt(timeout_s=5.0) as (sandbox, client):
        await client.verify_id(DRIVER_ID, LICENCE)
        sandbox.slow_down(3.0)
        waiting = asyncio.ensure_future(client.verify_id(DRIVER_ID, LICENCE))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await sandbox.set_down(True)
        with pytest.raises(KrtUnavailable):
            await waiting
        assert time.monotonic() - started < 1.0
    assert sandbox.received("verify")[-1].status is None  # recorded, never answered


@pytest.mark.parametrize("status, body, problem", [
    (200, b'{"match": "yes"}', "cannot read (at match)"),
    (200, b"<html>maintenance</html>", "cannot read"),
    (200, b"{}", "cannot read (at match)"),
    (302, b"", "answered 302"),
], ids=["wrong-type", "not-json", "missing-field", "redirect"])
@scenario
async def test_an_answer_unlike_the_api_is_a_bad_answer(status, body, problem):
    bad = calls("bad_answer")
    async with scripted(token_then(lambda _: KrtResponse(status, body))) as (_, client):
        with pytest.raises(KrtBadAnswer, match=re.escape(problem)):
            await client.verify_id(DRIVER_ID, LICENCE)
    assert calls("bad_answer") == bad + 1


@scenario
async def test_a_token_answer_without_a_usable_bearer_token_is_a_bad_answer():
    answer = KrtResponse(200, b'{"access_token": "t", "token_type": "MAC", "expires_in": 600}')
    async with scripted(lambda _: answer) as (sent, client):
        with pytest.raises(KrtBadAnswer, match="no usable bearer token"):
            await client.verify_id(DRIVER_ID, LICENCE)
    assert len(sent) == 1


# --- the API: IDs and shifts ---------------------------------------------------------------------

@scenario
async def test_verify_matches_the_drivers_own_id_only():
    async with krt() as (sandbox, client):
        sandbox.register("KRT-REGISTERED-1", LICENCE)
        assert await client.verify_id(DRIVER_ID, LICENCE)
        assert await client.verify_id(DRIVER_ID, "7799314159")  # the same licence, typed without spaces
        assert await client.verify_id("KRT-REGISTERED-1", "77 99 314159")
        assert not await client.verify_id(DRIVER_ID, "77 99 271828")  # someone else's licence
        assert not await client.verify_id("KRT0000000000", LICENCE)


@scenario
async def test_status_reports_follow_the_sandboxs_shift_model():
    ends = T0 + 12 * HOUR
    steps = [
        ("offline", T0 - HOUR, SessionStatus(SessionState.NONE, None)),  # never had a shift
        ("online", T0, SessionStatus(SessionState.OPEN, ends)),  # opens one for 12 h
        ("busy", T0 + HOUR, SessionStatus(SessionState.OPEN, ends)),
        ("offline", T0 + 2 * HOUR, SessionStatus(SessionState.OPEN, ends)),  # leaving the line ends no shift
        ("online", T0 + 3 * HOUR, SessionStatus(SessionState.OPEN, ends)),  # nor does coming back start one
        ("busy", ends, SessionStatus(SessionState.CLOSED, ends)),  # over at its end
        ("online", ends + 7 * HOUR, SessionStatus(SessionState.CLOSED, ends)),  # resting: 8 h
        ("online", ends + 8 * HOUR, SessionStatus(SessionState.OPEN, ends + 20 * HOUR)),  # rested: a new one
        ("offline", T0, SessionStatus(SessionState.OPEN, ends + 20 * HOUR)),  # a late report: the clock never goes back
    ]
    async with krt() as (sandbox, client):
        for status, at, expected in steps:
            assert await client.report_status(LICENCE, DRIVER_ID, status, at) == expected, (status, at)
        [shift] = sandbox.state()["shifts"]
        assert shift["started_at"] == ends + 8 * HOUR and shift["last_status"] == "offline"


@scenario
async def test_a_status_with_someone_elses_id_is_refused_and_not_to_be_sent_again():
    refused = calls("refused")
    async with krt() as (sandbox, client):
        with pytest.raises(KrtRefused) as raised:
            await client.report_status(LICENCE, sandbox_id_for("77 99 271828"), "online", T0)
        assert (raised.value.status, raised.value.code) == (422, "id_mismatch")
        assert not isinstance(raised.value, KrtUnavailable)
        assert sandbox.state()["shifts"] == []  # nothing happened
    assert calls("refused") == refused + 1


# --- personal data stays personal ----------------------------------------------------------------

@scenario
async def test_no_licence_number_or_krt_id_reaches_a_log_an_error_or_a_metric(caplog):
    caplog.set_level(logging.DEBUG)
    secrets_of_the_driver = [LICENCE, LICENCE.replace(" ", ""), DRIVER_ID, "KRT-PRIVATE-7"]
    errors: list[KrtError] = []

    async def attempt(call: Awaitable[Any]) -> None:
        try:
            await call
        except KrtError as exc:
            errors.append(exc)

    async with krt(timeout_s=0.2) as (sandbox, client):
        sandbox.register("KRT-PRIVATE-7", LICENCE)
        await attempt(client.verify_id("KRT-PRIVATE-7", LICENCE))
        await attempt(client.report_status(LICENCE, "KRT-PRIVATE-7", "online", T0))
        sandbox.expire_tokens()
        await attempt(client.verify_id(DRIVER_ID, LICENCE))
        sandbox.fail(500, count=1)
        await attempt(client.verify_id(DRIVER_ID, LICENCE))
        await attempt(client.report_status(LICENCE, sandbox_id_for("somebody else"), "busy", T0))
        sandbox.slow_down(0.5)
        await attempt(client.verify_id(DRIVER_ID, LICENCE))
        sandbox.slow_down(0)
        await sandbox.set_down(True)
        await attempt(client.report_status(LICENCE, DRIVER_ID, "offline", T0))
        await attempt(client.report_status(LICENCE, DRIVER_ID, "offline", T0))
    echoing = [  # a KRT that quotes what it was sent, in its errors and its answers
        KrtResponse(400, orjson.dumps({"error": f"licence {LICENCE} unknown", "id": DRIVER_ID})),
        KrtResponse(404, orjson.dumps({"error": {"code": DRIVER_ID.lower()}})),
        KrtResponse(503, LICENCE.encode()),
        KrtResponse(200, orjson.dumps({"match": LICENCE})),
        KrtResponse(200, orjson.dumps({"session_status": DRIVER_ID, "session_ends_at": None})),
    ]
    for response in echoing:
        async with scripted(token_then(lambda _, r=response: r)) as (sent, scripted_client):
            await attempt(scripted_client.verify_id(DRIVER_ID, LICENCE))
            await attempt(scripted_client.report_status(LICENCE, DRIVER_ID, "online", T0))
            assert all(DRIVER_ID not in repr(request) and LICENCE not in repr(request) for request in sent)
    assert len(errors) == 5 + 2 * len(echoing)
    assert {type(e) for e in errors} >= {KrtRefused, KrtServerError, KrtTimeout, KrtUnavailable, KrtBadAnswer}
    exposed = "\n".join([caplog.text, *map(str, errors), *map(repr, errors), generate_latest(REGISTRY).decode()])
    assert "KRT at http://127.0.0.1" in caplog.text and "verify" in caplog.text  # it did tell what happened
    for secret in secrets_of_the_driver:
        assert secret not in exposed and secret.lower() not in exposed.lower()


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, args, expected", [
    ("http://switchboard:pw@127.0.0.1:8088", {}, KrtSettings("http://127.0.0.1:8088", "switchboard", "pw")),
    ("https://krt.mos.example/gw/", {"client_id": "sb", "client_secret": "x"},
     KrtSettings("https://krt.mos.example/gw", "sb", "x")),
    ("https://a%40b:p%3Aw@[::1]:443", {}, KrtSettings("https://[::1]:443", "a@b", "p:w")),
], ids=["credentials-in-url", "credentials-apart-with-prefix", "escaped-ipv6"])
def test_parse_url(url, args, expected):
    assert parse_url(url, **args) == expected


@pytest.mark.parametrize("url, problem", [
    ("ftp://u:p@host", "the scheme must be http:// or https://"),
    ("http://host:8088", "no client id, no client secret"),
    ("http://u:p@host:99999", "out of range"),
    ("http://u:p@host/?q=1", "no query or fragment"),
], ids=["scheme", "no-credentials", "bad-port", "query"])
def test_parse_url_says_what_is_wrong_and_never_shows_the_secret(url, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        parse_url(url)
    assert ":p@" not in str(raised.value)


def test_settings_and_requests_never_show_secrets():
    assert "pw" not in repr(parse_url("http://sb:pw@h"))
    request = KrtRequest("POST", "http://h/x", {"Authorization": "Bearer tok"}, b'{"license_number": "7799"}')
    assert "tok" not in repr(request) and "7799" not in repr(request)


# --- the sandbox's own edges, and the sandbox as a process ---------------------------------------

@scenario
async def test_the_sandbox_answers_errors_in_its_documented_shape():
    sandbox = await KrtSandbox().start()
    try:
        async with aiohttp.ClientSession() as http:
            async def post(path: str, body: Any, token: Optional[str] = None) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with http.post(sandbox.url + path, json=body, headers=headers) as response:
                    return response.status, await response.json()

            assert await post("/api/v1/drivers/verify", {"deptrans_id": "x", "license_number": "y"}) == (
                401, {"error": "invalid_token", "message": "a Bearer token from /api/v1/auth/token is needed"})
            status, token = await post("/api/v1/auth/token", {"client_id": "switchboard", "client_secret": "switchboard"})
            assert status == 200 and token["token_type"] == "Bearer" and token["expires_in"] == 3600
            bearer = token["access_token"]
            status, error = await post("/api/v1/drivers/status", {"license_number": LICENCE, "status": "away", "at": T0,
                                                                  "extra": 1}, bearer)
            assert status == 400 and error["error"] == "bad_request" and "status" in error["message"]
            assert "extra" in error["message"] and LICENCE not in error["message"]
            assert (await post("/api/v1/drivers/nope", {}, bearer))[1]["error"] == "not_found"
            sandbox.expire_tokens()
            assert await post("/api/v1/drivers/verify", {"deptrans_id": "x", "license_number": "y"}, bearer) == (
                401, {"error": "token_expired", "message": "the token has expired; ask for a new one"})
    finally:
        await sandbox.stop()


@scenario
async def test_the_sandbox_as_a_process_with_its_http_control():
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "krt-sandbox", "--port", "0", "--control-port", "0", "--client-id", "sb",
         "--client-secret", "pw", "--token-ttl", "60"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 8)  # type: ignore[union-attr]
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+) \(client sb\), control on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        client = KrtClient(f"{found[1].replace('//', '//sb:pw@')}", timeout_s=0.3)
        control = found[2]
        await client.start()
        async with aiohttp.ClientSession() as http:
            async def call(method: str, path: str, body: Any = None) -> Any:
                async with http.request(method, control + path, json=body) as response:
                    return response.status, await response.json()

            assert (await call("POST", "/registrations", {"deptrans_id": "KRT-P-1", "license_number": LICENCE}))[0] == 200
            assert await client.verify_id("KRT-P-1", LICENCE)
            _, requests = await call("GET", "/requests")
            assert [(r["endpoint"], r["status"]) for r in requests] == [("token", 200), ("verify", 200)]
            assert requests[1]["body"] == {"deptrans_id": "KRT-P-1", "license_number": LICENCE}
            assert (await call("DELETE", "/requests"))[0] == 200 and (await call("GET", "/requests"))[1] == []

            await call("POST", "/fail", {"status": 502, "count": 1, "endpoint": "status"})
            with pytest.raises(KrtServerError, match="502"):
                await client.report_status(LICENCE, None, "online", T0)
            await call("POST", "/delay", {"delay_s": 1})
            with pytest.raises(KrtTimeout):
                await client.verify_id("KRT-P-1", LICENCE)
            await call("POST", "/delay", {"delay_s": 0})
            await call("POST", "/tokens/ttl", {"ttl_s": 5})
            await call("POST", "/tokens/expire")
            assert await client.report_status(LICENCE, "KRT-P-1", "online", T0) == SessionStatus(SessionState.OPEN,
                                                                                               T0 + 12 * HOUR)
            _, state = await call("GET", "/state")
            assert state["token_ttl_s"] == 5 and state["tokens_issued"] == 2 and state["down"] is False
            assert state["registrations"] == [{"deptrans_id": "KRT-P-1", "license_number": "7799314159"}]

            await call("POST", "/down", {"down": True})
            with pytest.raises(KrtUnavailable):
                await client.verify_id("KRT-P-1", LICENCE)
            await call("POST", "/down", {"down": False})
            assert await client.verify_id("KRT-P-1", LICENCE)

            status, error = await call("POST", "/fail", {"status": 200})
            assert status == 400 and error["error"]["code"] == "bad_request" and "status" in error["error"]["message"]
            assert (await call("POST", "/reset"))[0] == 200 and (await call("GET", "/state"))[1]["tokens_issued"] == 0
        await client.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 5) == 0
